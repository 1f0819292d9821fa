package audit

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// Executions serves histories already in memory as the three read calls of
// SFN, paginated as Step Functions paginates them. It is how an in-process
// run (the demo's executions, a test's) is audited through the same Collect
// that reads AWS, so there is one audit path, not two. It is safe for
// concurrent use.
type Executions struct {
	mu    sync.Mutex
	execs []History
	// PageSize caps every page (1,000 when 0); tests make it small to
	// exercise the pagination of callers.
	PageSize int
}

// Add keeps one execution's history. Its state machine is the one its ARN
// names; its start, status and end are read from its events.
func (e *Executions) Add(h History) error {
	if machineArn(h.ExecutionArn) == "" {
		return fmt.Errorf("audit: %q is not an execution ARN", truncate(h.ExecutionArn, 200))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.execs = append(e.execs, h)
	return nil
}

// machineArn is the state machine ARN of an execution ARN.
func machineArn(execArn string) string {
	parts := strings.Split(execArn, ":")
	if len(parts) != 8 || parts[0] != "arn" || parts[2] != "states" || parts[5] != "execution" || parts[6] == "" || parts[7] == "" {
		return ""
	}
	return strings.Join(append(parts[:5:5], "stateMachine", parts[6]), ":")
}

func (e *Executions) page(n int32) int {
	size := e.PageSize
	if size <= 0 {
		size = 1000
	}
	if n > 0 && int(n) < size {
		size = int(n)
	}
	return size
}

// window is the page [from, to) of n items under token.
func (e *Executions) window(token *string, max int32, n int) (from, to int, next *string, err error) {
	if token != nil && *token != "" {
		from, err = strconv.Atoi(*token)
		if err != nil || from < 0 || from > n {
			return 0, 0, nil, &types.InvalidToken{Message: aws.String("invalid page token")}
		}
	}
	to = min(from+e.page(max), n)
	if to < n {
		next = aws.String(strconv.Itoa(to))
	}
	return from, to, next, nil
}

// ListStateMachines implements SFN: every state machine an execution names,
// by name.
func (e *Executions) ListStateMachines(_ context.Context, in *sfn.ListStateMachinesInput, _ ...func(*sfn.Options)) (*sfn.ListStateMachinesOutput, error) {
	e.mu.Lock()
	seen := map[string]bool{}
	var arns []string
	for _, h := range e.execs {
		if a := machineArn(h.ExecutionArn); !seen[a] {
			seen[a] = true
			arns = append(arns, a)
		}
	}
	e.mu.Unlock()
	sort.Strings(arns)
	from, to, next, err := e.window(in.NextToken, in.MaxResults, len(arns))
	if err != nil {
		return nil, err
	}
	out := &sfn.ListStateMachinesOutput{NextToken: next, StateMachines: []types.StateMachineListItem{}}
	for _, a := range arns[from:to] {
		out.StateMachines = append(out.StateMachines, types.StateMachineListItem{
			StateMachineArn: aws.String(a), Name: aws.String(a[strings.LastIndexByte(a, ':')+1:]), Type: types.StateMachineTypeStandard,
		})
	}
	return out, nil
}

// ListExecutions implements SFN: a machine's executions, newest first, as
// Step Functions lists them.
func (e *Executions) ListExecutions(_ context.Context, in *sfn.ListExecutionsInput, _ ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
	want := aws.ToString(in.StateMachineArn)
	e.mu.Lock()
	var items []types.ExecutionListItem
	for _, h := range e.execs {
		if machineArn(h.ExecutionArn) != want {
			continue
		}
		it := summary(h)
		if in.StatusFilter != "" && it.Status != in.StatusFilter {
			continue
		}
		items = append(items, it)
	}
	e.mu.Unlock()
	sort.SliceStable(items, func(i, j int) bool { return aws.ToTime(items[i].StartDate).After(aws.ToTime(items[j].StartDate)) })
	from, to, next, err := e.window(in.NextToken, in.MaxResults, len(items))
	if err != nil {
		return nil, err
	}
	return &sfn.ListExecutionsOutput{Executions: append([]types.ExecutionListItem{}, items[from:to]...), NextToken: next}, nil
}

// GetExecutionHistory implements SFN.
func (e *Executions) GetExecutionHistory(_ context.Context, in *sfn.GetExecutionHistoryInput, _ ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	arn := aws.ToString(in.ExecutionArn)
	e.mu.Lock()
	var events []types.HistoryEvent
	found := false
	for _, h := range e.execs {
		if h.ExecutionArn == arn {
			events, found = h.Events, true
			break
		}
	}
	e.mu.Unlock()
	if !found {
		return nil, &types.ExecutionDoesNotExist{Message: aws.String("execution does not exist: " + truncate(arn, 200))}
	}
	if in.ReverseOrder {
		events = append([]types.HistoryEvent(nil), events...)
		for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
			events[i], events[j] = events[j], events[i]
		}
	}
	from, to, next, err := e.window(in.NextToken, in.MaxResults, len(events))
	if err != nil {
		return nil, err
	}
	return &sfn.GetExecutionHistoryOutput{Events: append([]types.HistoryEvent{}, events[from:to]...), NextToken: next}, nil
}

// summary is an execution's list item, read from its events.
func summary(h History) types.ExecutionListItem {
	it := types.ExecutionListItem{
		ExecutionArn:    aws.String(h.ExecutionArn),
		StateMachineArn: aws.String(machineArn(h.ExecutionArn)),
		Name:            aws.String(h.ExecutionArn[strings.LastIndexByte(h.ExecutionArn, ':')+1:]),
		Status:          types.ExecutionStatusRunning,
	}
	for i := range h.Events {
		ev := &h.Events[i]
		switch ev.Type {
		case types.HistoryEventTypeExecutionStarted:
			it.StartDate = ev.Timestamp
		case types.HistoryEventTypeExecutionSucceeded:
			it.Status, it.StopDate = types.ExecutionStatusSucceeded, ev.Timestamp
		case types.HistoryEventTypeExecutionFailed:
			it.Status, it.StopDate = types.ExecutionStatusFailed, ev.Timestamp
		case types.HistoryEventTypeExecutionTimedOut:
			it.Status, it.StopDate = types.ExecutionStatusTimedOut, ev.Timestamp
		case types.HistoryEventTypeExecutionAborted:
			it.Status, it.StopDate = types.ExecutionStatusAborted, ev.Timestamp
		}
	}
	return it
}
