package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/api"
	"github.com/keyflow/keyflow/engine/service"
	"github.com/keyflow/keyflow/sandbox"
)

// memAPI is a small in-memory Step Functions for the commands' tests: state
// machines, executions with their histories, one task token each. Every
// listing answers pages of pageSize, so the commands must follow tokens.
type memAPI struct {
	service.API // operations the commands never call
	mu          sync.Mutex
	pageSize    int
	machines    []types.StateMachineListItem
	execs       []*memExec
	answers     []sfn.SendTaskSuccessInput
}

type memExec struct {
	desc   sfn.DescribeExecutionOutput
	events []types.HistoryEvent
	token  string
}

func page[T any](items []T, token *string, size int) ([]T, *string) {
	from, _ := strconv.Atoi(aws.ToString(token))
	from = min(from, len(items))
	to := min(from+size, len(items))
	if to < len(items) {
		return items[from:to], aws.String(strconv.Itoa(to))
	}
	return items[from:to], nil
}

func (m *memAPI) exec(arn *string) (*memExec, error) {
	for _, e := range m.execs {
		if aws.ToString(e.desc.ExecutionArn) == aws.ToString(arn) {
			return e, nil
		}
	}
	return nil, &types.ExecutionDoesNotExist{Message: aws.String("Execution Does Not Exist: '" + aws.ToString(arn) + "'")}
}

func (m *memAPI) ListStateMachines(_ context.Context, in *sfn.ListStateMachinesInput, _ ...func(*sfn.Options)) (*sfn.ListStateMachinesOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	items, next := page(m.machines, in.NextToken, 1)
	return &sfn.ListStateMachinesOutput{StateMachines: items, NextToken: next}, nil
}

func (m *memAPI) ListExecutions(_ context.Context, in *sfn.ListExecutionsInput, _ ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []types.ExecutionListItem
	for _, e := range m.execs {
		d := e.desc
		if aws.ToString(d.StateMachineArn) != aws.ToString(in.StateMachineArn) || (in.StatusFilter != "" && d.Status != in.StatusFilter) {
			continue
		}
		all = append(all, types.ExecutionListItem{ExecutionArn: d.ExecutionArn, Name: d.Name, StateMachineArn: d.StateMachineArn, Status: d.Status, StartDate: d.StartDate, StopDate: d.StopDate})
	}
	items, next := page(all, in.NextToken, m.pageSize)
	return &sfn.ListExecutionsOutput{Executions: items, NextToken: next}, nil
}

func (m *memAPI) DescribeExecution(_ context.Context, in *sfn.DescribeExecutionInput, _ ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.exec(in.ExecutionArn)
	if err != nil {
		return nil, err
	}
	d := e.desc
	return &d, nil
}

func (m *memAPI) GetExecutionHistory(_ context.Context, in *sfn.GetExecutionHistoryInput, _ ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.exec(in.ExecutionArn)
	if err != nil {
		return nil, err
	}
	events := append([]types.HistoryEvent(nil), e.events...)
	if in.ReverseOrder {
		for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
			events[i], events[j] = events[j], events[i]
		}
	}
	items, next := page(events, in.NextToken, m.pageSize)
	return &sfn.GetExecutionHistoryOutput{Events: items, NextToken: next}, nil
}

func (m *memAPI) StopExecution(_ context.Context, in *sfn.StopExecutionInput, _ ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.exec(in.ExecutionArn)
	if err != nil {
		return nil, err
	}
	stop := e.desc.StartDate.Add(time.Hour)
	e.desc.Status, e.desc.StopDate, e.desc.Error, e.desc.Cause = types.ExecutionStatusAborted, &stop, in.Error, in.Cause
	return &sfn.StopExecutionOutput{StopDate: &stop}, nil
}

func (m *memAPI) SendTaskSuccess(_ context.Context, in *sfn.SendTaskSuccessInput, _ ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.execs {
		if e.token != "" && e.token == aws.ToString(in.TaskToken) {
			m.answers = append(m.answers, *in)
			n := int64(len(e.events)) + 1
			e.events = append(e.events, types.HistoryEvent{Id: n, PreviousEventId: n - 1, Timestamp: e.desc.StartDate, Type: types.HistoryEventTypeTaskSucceeded,
				TaskSucceededEventDetails: &types.TaskSucceededEventDetails{Resource: aws.String("invoke.waitForTaskToken"), ResourceType: aws.String("lambda"), Output: in.Output}})
			return &sfn.SendTaskSuccessOutput{}, nil
		}
	}
	// AWS quotes nothing here, but a service might: the command must not echo it.
	return nil, &types.InvalidToken{Message: aws.String("Invalid token: '" + aws.ToString(in.TaskToken) + "'")}
}

const (
	testSM     = "arn:aws:states:us-east-1:111111111111:stateMachine:keyflow-quarantine"
	testOther  = "arn:aws:states:us-east-1:111111111111:stateMachine:keyflow-lifecycle"
	testSecret = "keyflow-cli-test-secret"
)

// waitingExecution is a quarantine parked at AskApproval: its TaskScheduled
// parameters carry the task token in the Lambda payload, as the workflow
// puts it.
func waitingExecution(name, token string, start time.Time) *memExec {
	arn := "arn:aws:states:us-east-1:111111111111:execution:keyflow-quarantine:" + name
	params, _ := json.Marshal(map[string]any{"FunctionName": "keyflow-notify", "Payload": map[string]any{
		"event": "ApprovalRequested", "taskToken": token, "executionArn": arn, "userName": "mallory"}})
	ts := func(i int) *time.Time { t := start.Add(time.Duration(i) * time.Second); return &t }
	return &memExec{
		token: token,
		desc: sfn.DescribeExecutionOutput{ExecutionArn: aws.String(arn), Name: aws.String(name), StateMachineArn: aws.String(testSM),
			Status: types.ExecutionStatusRunning, StartDate: ts(0), Input: aws.String(`{"detail":{"userIdentity":{"userName":"mallory"}}}`)},
		events: []types.HistoryEvent{
			{Id: 1, Timestamp: ts(0), Type: types.HistoryEventTypeExecutionStarted, ExecutionStartedEventDetails: &types.ExecutionStartedEventDetails{Input: aws.String(`{}`)}},
			{Id: 2, PreviousEventId: 1, Timestamp: ts(1), Type: types.HistoryEventTypeTaskStateEntered, StateEnteredEventDetails: &types.StateEnteredEventDetails{Name: aws.String("AskApproval"), Input: aws.String(`{}`)}},
			{Id: 3, PreviousEventId: 2, Timestamp: ts(2), Type: types.HistoryEventTypeTaskScheduled, TaskScheduledEventDetails: &types.TaskScheduledEventDetails{
				Resource: aws.String("invoke.waitForTaskToken"), ResourceType: aws.String("lambda"), Region: aws.String("us-east-1"), Parameters: aws.String(string(params))}},
			{Id: 4, PreviousEventId: 3, Timestamp: ts(3), Type: types.HistoryEventTypeTaskStarted, TaskStartedEventDetails: &types.TaskStartedEventDetails{Resource: aws.String("invoke.waitForTaskToken"), ResourceType: aws.String("lambda")}},
		},
	}
}

func finishedExecution(name string, start time.Time) *memExec {
	e := waitingExecution(name, "", start)
	stop := start.Add(time.Minute)
	e.desc.Status, e.desc.StopDate, e.desc.Output = types.ExecutionStatusSucceeded, &stop, aws.String(`{"approval":{"decision":"reject"}}`)
	e.events = e.events[:2]
	return e
}

// apiServer serves mem through engine/api with the test's credentials in
// the environment, as `keyflow serve` would, and returns its URL.
func apiServer(t *testing.T, mem *memAPI) string {
	t.Helper()
	h, err := api.New(api.Options{Service: mem, Credentials: aws.Credentials{AccessKeyID: "AKIAKEYFLOWCLITEST", SecretAccessKey: testSecret}})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAKEYFLOWCLITEST", "AWS_SECRET_ACCESS_KEY": testSecret, "AWS_SESSION_TOKEN": "", "AWS_REGION": "us-east-1",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"), "AWS_ENDPOINT_URL": "",
	} {
		t.Setenv(k, v)
	}
	return srv.URL
}

func newMem(t *testing.T) *memAPI {
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	m := &memAPI{pageSize: 2, machines: []types.StateMachineListItem{
		{Name: aws.String("keyflow-lifecycle"), StateMachineArn: aws.String(testOther), Type: types.StateMachineTypeStandard, CreationDate: &start},
		{Name: aws.String("keyflow-quarantine"), StateMachineArn: aws.String(testSM), Type: types.StateMachineTypeStandard, CreationDate: &start},
	}}
	for i := 1; i <= 3; i++ {
		m.execs = append(m.execs, waitingExecution(fmt.Sprintf("q%d", i), fmt.Sprintf("KF1-secret-task-token-%d-abcdefghijklmnop", i), start.Add(time.Duration(i)*time.Hour)))
	}
	m.execs = append(m.execs, finishedExecution("q4", start), finishedExecution("q5", start))
	return m
}

func run(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := Run(args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func noToken(t *testing.T, m *memAPI, outputs ...string) {
	t.Helper()
	for _, e := range m.execs {
		if e.token == "" {
			continue
		}
		for _, o := range outputs {
			assert.NotContains(t, o, e.token, "a task token is never printed")
		}
	}
	for _, o := range outputs {
		assert.NotContains(t, o, testSecret)
	}
}

func TestExecutionsListsEveryPage(t *testing.T) {
	mem := newMem(t)
	url := apiServer(t, mem)
	rows := []struct {
		name  string
		args  []string
		names []string
	}{
		{"by workflow name", []string{"executions", "quarantine"}, []string{"q1", "q2", "q3", "q4", "q5"}},
		{"by state machine name", []string{"executions", "keyflow-quarantine"}, []string{"q1", "q2", "q3", "q4", "q5"}},
		{"by ARN, filtered", []string{"executions", testSM, "--status", "succeeded"}, []string{"q4", "q5"}},
		{"another machine has none", []string{"executions", "lifecycle"}, nil},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			code, out, errOut := run(append(r.args, "--endpoint", url)...)
			require.Equal(t, ExitOK, code, errOut)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, lines, 1+len(r.names), out)
			assert.Regexp(t, `^NAME\s+STATUS\s+STARTED\s+STOPPED\s+EXECUTION ARN$`, lines[0])
			for i, n := range r.names {
				assert.Equal(t, n, strings.Fields(lines[i+1])[0])
			}
			assert.Empty(t, errOut, "no progress when stderr is not a terminal")
		})
	}

	code, out, errOut := run("executions", "quarantine", "--status", "RUNNING", "--json", "--endpoint", url)
	require.Equal(t, ExitOK, code, errOut)
	var doc struct {
		Executions []struct{ Name, Status string } `json:"executions"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Len(t, doc.Executions, 3)

	code, _, errOut = run("executions", "nosuch", "--endpoint", url)
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, errOut, `no state machine named "nosuch"`)
}

func TestDescribe(t *testing.T) {
	mem := newMem(t)
	url := apiServer(t, mem)
	arn := aws.ToString(mem.execs[3].desc.ExecutionArn)
	code, out, errOut := run("describe", arn, "--endpoint", url)
	require.Equal(t, ExitOK, code, errOut)
	assert.Regexp(t, `(?m)^status\s+SUCCEEDED$`, out)
	assert.Regexp(t, `(?m)^started\s+2026-03-01T09:00:00Z$`, out)
	assert.Contains(t, out, `{"approval":{"decision":"reject"}}`)

	code, out, errOut = run("describe", arn, "--json", "--endpoint", url)
	require.Equal(t, ExitOK, code, errOut)
	assert.JSONEq(t, `{"executionArn":"`+arn+`","name":"q4","stateMachineArn":"`+testSM+`","status":"SUCCEEDED",
		"startDate":1772355600,"stopDate":1772355660,"input":"{\"detail\":{\"userIdentity\":{\"userName\":\"mallory\"}}}",
		"output":"{\"approval\":{\"decision\":\"reject\"}}"}`, out)

	code, _, errOut = run("describe", arn+"-gone", "--endpoint", url)
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, errOut, "ExecutionDoesNotExist")
}

func TestHistoryEveryPageWithoutTokens(t *testing.T) {
	mem := newMem(t)
	url := apiServer(t, mem)
	arn := aws.ToString(mem.execs[0].desc.ExecutionArn)

	code, table, errOut := run("history", arn, "--endpoint", url)
	require.Equal(t, ExitOK, code, errOut)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	require.Len(t, lines, 5, table)
	assert.Regexp(t, `^2\s+1\s+2026-03-01T10:00:01Z\s+TaskStateEntered\s+AskApproval$`, lines[2])

	ids := func(args ...string) []int64 {
		code, out, errOut := run(append([]string{"history", arn, "--json", "--endpoint", url}, args...)...)
		require.Equal(t, ExitOK, code, errOut)
		var raw struct {
			Events []struct {
				ID                        int64           `json:"id"`
				TaskScheduledEventDetails json.RawMessage `json:"taskScheduledEventDetails"`
			} `json:"events"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &raw))
		var got []int64
		for _, e := range raw.Events {
			got = append(got, e.ID)
			if e.TaskScheduledEventDetails != nil {
				assert.Contains(t, string(e.TaskScheduledEventDetails), redactedToken, "the token's place is marked")
			}
		}
		noToken(t, mem, out)
		return got
	}
	assert.Equal(t, []int64{1, 2, 3, 4}, ids())
	assert.Equal(t, []int64{4, 3, 2, 1}, ids("--reverse"))
	noToken(t, mem, table, errOut)
}

func TestApproveAndRejectAnswerAsTheSTSIdentity(t *testing.T) {
	mem := newMem(t)
	url := apiServer(t, mem)
	db := filepath.Join(t.TempDir(), "keyflow.db")
	// The sandbox's management account says who the caller is; what
	// --approver says is only a display name.
	d, err := openDB(db)
	require.NoError(t, err)
	sb, err := sandbox.New(sandbox.Options{DB: d})
	require.NoError(t, err)
	require.NoError(t, sb.SetCallerIdentity(sb.ManagementAccount(), "arn:aws:iam::111111111111:user/security-oncall"))
	require.NoError(t, d.Close())

	for i, decision := range []string{"approve", "reject"} {
		arn := aws.ToString(mem.execs[i].desc.ExecutionArn)
		code, out, errOut := run(decision, arn, "--approver", "Root Admin", "--reason", "confirmed with the user's manager", "--endpoint", url, "--db", db)
		require.Equal(t, ExitOK, code, errOut)
		noToken(t, mem, out, errOut)

		mem.mu.Lock()
		answers := append([]sfn.SendTaskSuccessInput(nil), mem.answers...)
		mem.mu.Unlock()
		require.Len(t, answers, i+1)
		sent := answers[i]
		assert.Equal(t, mem.execs[i].token, aws.ToString(sent.TaskToken), "the pending token from the history")
		var answer map[string]string
		require.NoError(t, json.Unmarshal([]byte(aws.ToString(sent.Output)), &answer))
		decidedAt, err := time.Parse(time.RFC3339, answer["decidedAt"])
		require.NoError(t, err)
		assert.False(t, decidedAt.IsZero())
		delete(answer, "decidedAt")
		assert.Equal(t, map[string]string{"decision": decision, "approver": "Root Admin",
			"approverArn": "arn:aws:iam::111111111111:user/security-oncall", "reason": "confirmed with the user's manager"}, answer)
		var printed map[string]string
		require.NoError(t, json.Unmarshal([]byte(out), &printed))
		assert.Equal(t, arn, printed["executionArn"])
		assert.Equal(t, decision, printed["decision"])

		code, _, errOut = run(decision, arn, "--approver", "Root Admin", "--reason", "again", "--endpoint", url, "--db", db)
		assert.Equal(t, ExitFailed, code, "answered once: nothing waits any more")
		assert.Contains(t, errOut, "no approval is waiting")
	}

	code, _, errOut := run("approve", aws.ToString(mem.execs[3].desc.ExecutionArn), "--approver", "a", "--reason", "r", "--endpoint", url, "--db", db)
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, errOut, "is SUCCEEDED: no approval is waiting")

	// A token the service refuses, and quotes: the command never echoes it.
	mem.mu.Lock()
	refused := mem.execs[2]
	mem.execs[2].token = "KF1-not-what-the-history-says"
	mem.mu.Unlock()
	code, out, errOut := run("approve", aws.ToString(refused.desc.ExecutionArn), "--approver", "a", "--reason", "r", "--endpoint", url, "--db", db)
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, errOut, "InvalidToken")
	assert.Contains(t, errOut, redactedToken)
	assert.NotContains(t, errOut+out, "KF1-secret-task-token-3")
}

func TestStop(t *testing.T) {
	mem := newMem(t)
	url := apiServer(t, mem)
	arn := aws.ToString(mem.execs[1].desc.ExecutionArn)
	code, out, errOut := run("stop", arn, "--error", "Operator.Stopped", "--cause", "duplicate", "--endpoint", url)
	require.Equal(t, ExitOK, code, errOut)
	assert.JSONEq(t, `{"executionArn":"`+arn+`","stopDate":"2026-03-01T12:00:00Z"}`, out)
	mem.mu.Lock()
	defer mem.mu.Unlock()
	assert.Equal(t, types.ExecutionStatusAborted, mem.execs[1].desc.Status)
	assert.Equal(t, "Operator.Stopped", aws.ToString(mem.execs[1].desc.Error))
	assert.Equal(t, "duplicate", aws.ToString(mem.execs[1].desc.Cause))
}

func TestPendingToken(t *testing.T) {
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	one := waitingExecution("a", "KF1-one", start).events
	two := append(append([]types.HistoryEvent{}, one...), waitingExecution("b", "KF1-two", start).events[2])
	answered := append(append([]types.HistoryEvent{}, one...), types.HistoryEvent{Type: types.HistoryEventTypeTaskTimedOut,
		TaskTimedOutEventDetails: &types.TaskTimedOutEventDetails{Resource: aws.String("invoke.waitForTaskToken"), ResourceType: aws.String("lambda")}})
	plain := []types.HistoryEvent{{Type: types.HistoryEventTypeTaskScheduled, TaskScheduledEventDetails: &types.TaskScheduledEventDetails{
		Resource: aws.String("invoke"), ResourceType: aws.String("lambda"), Parameters: aws.String(`{"Payload":{"taskToken":"not-a-wait"}}`)}}}
	rows := []struct {
		name   string
		events []types.HistoryEvent
		token  string
		err    string
	}{
		{"one waiting", one, "KF1-one", ""},
		{"two waiting", two, "", "2 approvals are waiting"},
		{"timed out", answered, "", "no approval is waiting"},
		{"a task without .waitForTaskToken", plain, "", "no approval is waiting"},
		{"empty history", nil, "", "no approval is waiting"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			tok, err := pendingToken(r.events)
			if r.err != "" {
				assert.ErrorContains(t, err, r.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, r.token, tok)
		})
	}
}

// TestTheLocalStoreIsRead: without --endpoint or --aws the commands read
// the local store (here written by the service as keyflow serve would),
// refuse what would run an execution, and say so when there is no store.
func TestTheLocalStoreIsRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	code, _, errOut := run("executions", "quarantine", "--db", path)
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, errOut, "no local store")

	db, err := openDB(path)
	require.NoError(t, err)
	l, err := service.Open(t.Context(), service.Options{DB: db, Engine: engine.Options{Clock: engine.NewVirtualClock(time.Now())}})
	require.NoError(t, err)
	sm, err := l.CreateStateMachine(t.Context(), &sfn.CreateStateMachineInput{Name: aws.String("Quick"),
		Definition: aws.String(`{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}`), RoleArn: aws.String("arn:aws:iam::123456789012:role/r")})
	require.NoError(t, err)
	_, err = l.StartExecution(t.Context(), &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String("first")})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		d, err := l.DescribeExecution(t.Context(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String("arn:aws:states:us-east-1:123456789012:execution:Quick:first")})
		return err == nil && d.Status == types.ExecutionStatusSucceeded
	}, 10*time.Second, time.Millisecond)
	l.Close()
	db.Close()

	code, out, errOut := run("executions", "Quick", "--db", path)
	assert.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "first")
	assert.Contains(t, out, "SUCCEEDED")
	code, _, errOut = run("stop", "arn:aws:states:us-east-1:123456789012:execution:Quick:first", "--db", path)
	assert.NotEqual(t, ExitOK, code)
	assert.Contains(t, errOut, "keyflow serve")
}
