package audit

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// SFN is the part of Step Functions that Collect reads, with the sfn
// client's signatures, so that *sfn.Client (AWS, or `keyflow serve` through
// its endpoint), keyflow's local service and Executions all satisfy it
// without audit importing any of them.
type SFN interface {
	ListStateMachines(context.Context, *sfn.ListStateMachinesInput, ...func(*sfn.Options)) (*sfn.ListStateMachinesOutput, error)
	ListExecutions(context.Context, *sfn.ListExecutionsInput, ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error)
	GetExecutionHistory(context.Context, *sfn.GetExecutionHistoryInput, ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error)
}

// Filter chooses the executions Collect audits.
type Filter struct {
	// Workflows are keyflow workflow names ("lifecycle") or state machine
	// names ("keyflow-lifecycle", or any other). Empty means every keyflow
	// state machine (named keyflow-*): an account's other state machines
	// are not keyflow's to judge unless named.
	Workflows []string
	// Status keeps executions in that status (RUNNING, SUCCEEDED, FAILED,
	// TIMED_OUT, ABORTED, PENDING_REDRIVE); "" keeps all.
	Status string
	// Since and Until keep executions that started in [Since, Until); a
	// zero bound is open.
	Since, Until time.Time
	// Policy is handed to Build for every history.
	Policy Policy
	// MaxExecutions bounds the executions audited (DefaultMaxExecutions
	// when 0): more is an error asking for a narrower filter, never a
	// silently partial audit.
	MaxExecutions int
}

// DefaultMaxExecutions is Filter.MaxExecutions when unset.
const DefaultMaxExecutions = 100000

// maxHistoryPages bounds one history's pages: the 25,000-event quota is 25
// pages of 1,000; a service that keeps answering with tokens beyond that is
// looping.
const maxHistoryPages = 100

// historyPage is the page size asked of GetExecutionHistory (AWS's maximum).
const historyPage = 1000

var statuses = []string{"RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"}

// Statuses are the execution statuses Filter.Status accepts.
func Statuses() []string { return slices.Clone(statuses) }

// Collect walks ListStateMachines → ListExecutions → GetExecutionHistory
// (every page of each) and audits each execution that f keeps. Records come
// back ordered by start time, then ARN, so the same executions always make
// the same chain; they are not chained (Chain does that, after the head the
// caller keeps).
//
// Express state machines are skipped: Step Functions keeps no history of
// them to read.
func Collect(ctx context.Context, api SFN, f Filter) ([]*Record, error) {
	if f.Status != "" && !slices.Contains(statuses, f.Status) {
		return nil, fmt.Errorf("audit: status %q is not one of %s", truncate(f.Status, 40), strings.Join(statuses, ", "))
	}
	if !f.Until.IsZero() && !f.Since.IsZero() && !f.Until.After(f.Since) {
		return nil, fmt.Errorf("audit: the window ends (%s) before it starts (%s)", stamp(f.Until), stamp(f.Since))
	}
	limit := f.MaxExecutions
	if limit <= 0 {
		limit = DefaultMaxExecutions
	}
	machines, err := listMachines(ctx, api, f.Workflows)
	if err != nil {
		return nil, err
	}
	var records []*Record
	for _, m := range machines {
		execs, err := listExecutions(ctx, api, m, f)
		if err != nil {
			return nil, err
		}
		for _, x := range execs {
			if len(records) == limit {
				return nil, fmt.Errorf("audit: more than %d executions match: narrow the filter (workflow, status, time)", limit)
			}
			events, err := history(ctx, api, x)
			if err != nil {
				return nil, err
			}
			if len(events) == 0 {
				continue
			}
			r, err := Build(History{ExecutionArn: x, Workflow: strings.TrimPrefix(m.name, "keyflow-"), Events: events, Policy: f.Policy})
			if err != nil {
				return nil, err
			}
			records = append(records, r)
		}
	}
	sort.SliceStable(records, func(i, j int) bool {
		if !records[i].Start.Equal(records[j].Start) {
			return records[i].Start.Before(records[j].Start)
		}
		return records[i].ExecutionArn < records[j].ExecutionArn
	})
	return records, nil
}

type machine struct{ arn, name string }

// listMachines lists the state machines f names (every keyflow-* one when
// it names none). A named workflow that does not exist is an error: a typo
// would otherwise pass as "no executions, no breaches".
func listMachines(ctx context.Context, api SFN, workflows []string) ([]machine, error) {
	want := map[string]bool{}
	for _, w := range workflows {
		want[w] = false
	}
	var out []machine
	var token *string
	seen := map[string]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("audit: listing state machines: %w", err)
		}
		page, err := api.ListStateMachines(ctx, &sfn.ListStateMachinesInput{NextToken: token})
		if err != nil {
			return nil, fmt.Errorf("audit: listing state machines: %w", err)
		}
		for _, sm := range page.StateMachines {
			name := str(sm.Name)
			if sm.Type == types.StateMachineTypeExpress {
				continue
			}
			ours := strings.HasPrefix(name, "keyflow-")
			keep := len(want) == 0 && ours
			if _, ok := want[name]; ok {
				want[name], keep = true, true
			}
			if short := strings.TrimPrefix(name, "keyflow-"); ours {
				if _, ok := want[short]; ok {
					want[short], keep = true, true
				}
			}
			if keep {
				out = append(out, machine{arn: str(sm.StateMachineArn), name: name})
			}
		}
		if token = page.NextToken; token == nil || *token == "" {
			break
		}
		if seen[*token] {
			return nil, fmt.Errorf("audit: listing state machines: the service repeated page token %q", truncate(*token, 40))
		}
		seen[*token] = true
	}
	for _, w := range workflows {
		if !want[w] {
			return nil, fmt.Errorf("audit: no state machine %q", truncate(w, 80))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func listExecutions(ctx context.Context, api SFN, m machine, f Filter) ([]string, error) {
	in := &sfn.ListExecutionsInput{StateMachineArn: &m.arn, StatusFilter: types.ExecutionStatus(f.Status)}
	var out []string
	seen := map[string]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("audit: listing executions of %q: %w", m.name, err)
		}
		page, err := api.ListExecutions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("audit: listing executions of %q: %w", m.name, err)
		}
		for _, x := range page.Executions {
			// The status is checked again: a service that ignores
			// StatusFilter must not widen the audit.
			if f.Status != "" && string(x.Status) != f.Status {
				continue
			}
			if x.StartDate != nil {
				if !f.Since.IsZero() && x.StartDate.Before(f.Since) {
					continue
				}
				if !f.Until.IsZero() && !x.StartDate.Before(f.Until) {
					continue
				}
			}
			out = append(out, str(x.ExecutionArn))
		}
		if in.NextToken = page.NextToken; in.NextToken == nil || *in.NextToken == "" {
			return out, nil
		}
		if seen[*in.NextToken] {
			return nil, fmt.Errorf("audit: listing executions of %q: the service repeated page token %q", m.name, truncate(*in.NextToken, 40))
		}
		seen[*in.NextToken] = true
	}
}

// history reads every page of one execution's history, in ascending order.
func history(ctx context.Context, api SFN, arn string) ([]types.HistoryEvent, error) {
	in := &sfn.GetExecutionHistoryInput{ExecutionArn: &arn, MaxResults: historyPage}
	var events []types.HistoryEvent
	for range maxHistoryPages {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("audit: history of %q: %w", truncate(arn, 200), err)
		}
		page, err := api.GetExecutionHistory(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("audit: history of %q: %w", truncate(arn, 200), err)
		}
		events = append(events, page.Events...)
		if in.NextToken = page.NextToken; in.NextToken == nil || *in.NextToken == "" {
			return events, nil
		}
	}
	return nil, fmt.Errorf("audit: history of %q: more than %d pages", truncate(arn, 200), maxHistoryPages)
}
