package service_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	_ "modernc.org/sqlite"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/service"
)

const approvalDef = `{
  "StartAt": "Create",
  "States": {
    "Create": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:create", "ResultPath": "$.created", "Next": "Hold"},
    "Hold": {"Type": "Wait", "Seconds": 86400, "Next": "Ask"},
    "Ask": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
      "Parameters": {"FunctionName": "notify", "Payload": {"token.$": "$$.Task.Token"}}, "TimeoutSeconds": 864000, "ResultPath": "$.answer", "End": true}
  }
}`

type world struct {
	mu      sync.Mutex
	creates atomic.Int64
	tokens  []string
}

func (w *world) lastToken() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.tokens) == 0 {
		return ""
	}
	return w.tokens[len(w.tokens)-1]
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func open(t *testing.T, db *sql.DB, w *world, opts ...func(*service.Options)) *service.Local {
	t.Helper()
	o := service.Options{DB: db, Engine: engine.Options{
		// A real clock, fast: on virtual time an unanswered approval
		// would time out at once, as nothing else can happen first.
		Clock: engine.NewScaledClock(100000),
		Handlers: map[string]engine.Handler{
			"create": engine.HandlerFunc(func(context.Context, []byte) ([]byte, error) {
				w.creates.Add(1)
				return []byte(`{"keyId":"AKIAEXAMPLE"}`), nil
			}),
			"notify": engine.HandlerFunc(func(context.Context, []byte) ([]byte, error) { return []byte(`{}`), nil }),
		},
		OnTaskToken: func(token string, _ any) {
			w.mu.Lock()
			w.tokens = append(w.tokens, token)
			w.mu.Unlock()
		},
	}}
	for _, f := range opts {
		f(&o)
	}
	l, err := service.Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRestartCarriesOn: an execution parked on an approval survives the
// service being closed and opened again on its store. The new service
// holds it dormant; the answer sent to it resumes it, the task whose
// result was committed is not called again, the same token is waited on,
// and it ends with one history, every id once and in order.
func TestRestartCarriesOn(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, filepath.Join(t.TempDir(), "keyflow.db"))
	w := &world{}
	l := open(t, db, w)
	sm, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Approval"), Definition: aws.String(approvalDef),
		RoleArn: aws.String("arn:aws:iam::123456789012:role/keyflow")})
	if err != nil {
		t.Fatal(err)
	}
	start, err := l.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String("a"), Input: aws.String(`{"user":"alice"}`)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the approval request", func() bool { return w.lastToken() != "" })
	token := w.lastToken()
	l.Close()

	w2 := &world{}
	l2 := open(t, db, w2)
	defer l2.Close()
	if n := l2.Loaded(); n != 0 {
		t.Fatalf("the new service loaded %d executions; the approval wait is parked", n)
	}
	d, err := l2.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: start.ExecutionArn})
	if err != nil || d.Status != types.ExecutionStatusRunning {
		t.Fatalf("%v %v", d, err)
	}
	if _, err := l2.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(`{"decision":"approve"}`)}); err != nil {
		t.Fatal(err)
	}
	if w2.lastToken() != token {
		t.Fatalf("the resumed execution waits on token %q, not the one it issued", w2.lastToken())
	}
	if n := w2.creates.Load(); n != 0 {
		t.Fatalf("Create was called %d times again after the restart", n)
	}
	waitFor(t, "the end", func() bool {
		d, err := l2.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: start.ExecutionArn})
		return err == nil && d.Status == types.ExecutionStatusSucceeded
	})
	d, _ = l2.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: start.ExecutionArn})
	if got := aws.ToString(d.Output); got != `{"answer":{"decision":"approve"},"created":{"keyId":"AKIAEXAMPLE"},"user":"alice"}` {
		t.Errorf("output %s", got)
	}

	// The whole history, in pages of 4, every id once and in order.
	var ids []int64
	p := sfn.NewGetExecutionHistoryPaginator(l2, &sfn.GetExecutionHistoryInput{ExecutionArn: start.ExecutionArn, MaxResults: 4})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			ids = append(ids, e.Id)
		}
	}
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("history ids %v", ids)
		}
	}
	if len(ids) < 12 {
		t.Fatalf("history %v", ids)
	}
	rev, err := l2.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: start.ExecutionArn, ReverseOrder: true, MaxResults: 1, IncludeExecutionData: aws.Bool(false)})
	if err != nil || len(rev.Events) != 1 || rev.Events[0].Type != types.HistoryEventTypeExecutionSucceeded || rev.Events[0].ExecutionSucceededEventDetails.Output != nil {
		t.Fatalf("reverse: %+v %v", rev, err)
	}
}

func TestErrorsAreAWSs(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, filepath.Join(t.TempDir(), "keyflow.db"))
	l := open(t, db, &world{})
	defer l.Close()
	role := aws.String("arn:aws:iam::123456789012:role/keyflow")
	sm, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Approval"), Definition: aws.String(approvalDef), RoleArn: role})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String("x"), Input: aws.String(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	same, err := l.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String("x"), Input: aws.String(`{"a":1}`)})
	if err != nil || aws.ToString(same.ExecutionArn) == "" {
		t.Fatalf("a running execution started again with the same input is returned: %v", err)
	}
	cases := []struct {
		name string
		call func() error
		want any
	}{
		{"another input under a used name", func() error {
			_, err := l.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String("x"), Input: aws.String(`{"a":2}`)})
			return err
		}, &types.ExecutionAlreadyExists{}},
		{"unknown state machine", func() error {
			_, err := l.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String("arn:aws:states:us-east-1:123456789012:stateMachine:Nope")})
			return err
		}, &types.StateMachineDoesNotExist{}},
		{"invalid definition", func() error {
			_, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Bad"), Definition: aws.String(`{"StartAt":"A","States":{}}`), RoleArn: role})
			return err
		}, &types.InvalidDefinition{}},
		{"same name, other definition", func() error {
			_, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Approval"), Definition: aws.String(`{"StartAt":"A","States":{"A":{"Type":"Succeed"}}}`), RoleArn: role})
			return err
		}, &types.StateMachineAlreadyExists{}},
		{"invalid name", func() error {
			_, err := l.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String("has space")})
			return err
		}, &types.InvalidName{}},
		{"unknown execution", func() error {
			_, err := l.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String("arn:aws:states:us-east-1:123456789012:execution:Approval:nope")})
			return err
		}, &types.ExecutionDoesNotExist{}},
		{"invalid token", func() error {
			_, err := l.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String("forged"), Output: aws.String(`{}`)})
			return err
		}, &types.InvalidToken{}},
		{"bad pagination token", func() error {
			_, err := l.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: sm.StateMachineArn, NextToken: aws.String("!!")})
			return err
		}, &types.InvalidToken{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			switch c.want.(type) {
			case *types.ExecutionAlreadyExists:
				var e *types.ExecutionAlreadyExists
				ok(t, errors.As(err, &e), err)
			case *types.StateMachineDoesNotExist:
				var e *types.StateMachineDoesNotExist
				ok(t, errors.As(err, &e), err)
			case *types.InvalidDefinition:
				var e *types.InvalidDefinition
				ok(t, errors.As(err, &e), err)
			case *types.StateMachineAlreadyExists:
				var e *types.StateMachineAlreadyExists
				ok(t, errors.As(err, &e), err)
			case *types.InvalidName:
				var e *types.InvalidName
				ok(t, errors.As(err, &e), err)
			case *types.ExecutionDoesNotExist:
				var e *types.ExecutionDoesNotExist
				ok(t, errors.As(err, &e), err)
			case *types.InvalidToken:
				var e *types.InvalidToken
				ok(t, errors.As(err, &e), err)
			}
		})
	}
}

func ok(t *testing.T, cond bool, err error) {
	t.Helper()
	if !cond {
		t.Fatalf("got %T %v", err, err)
	}
}

// TestListExecutionsPages: newest first, every execution once across
// pages, and the status filter.
func TestListExecutionsPages(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, filepath.Join(t.TempDir(), "keyflow.db"))
	l := open(t, db, &world{})
	defer l.Close()
	sm, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Quick"),
		Definition: aws.String(`{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}`), RoleArn: aws.String("arn:aws:iam::123456789012:role/r")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := l.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String(string(rune('a' + i)))}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	p := sfn.NewListExecutionsPaginator(l, &sfn.ListExecutionsInput{StateMachineArn: sm.StateMachineArn, MaxResults: 3})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range page.Executions {
			if seen[*e.Name] {
				t.Fatalf("%s listed twice", *e.Name)
			}
			seen[*e.Name] = true
		}
	}
	if len(seen) != 7 || pages != 3 {
		t.Fatalf("%d executions in %d pages", len(seen), pages)
	}
	waitFor(t, "every execution to end", func() bool {
		r, err := l.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: sm.StateMachineArn, StatusFilter: types.ExecutionStatusSucceeded})
		return err == nil && len(r.Executions) == 7
	})
	running, err := l.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: sm.StateMachineArn, StatusFilter: types.ExecutionStatusRunning})
	if err != nil || len(running.Executions) != 0 {
		t.Fatalf("%v %v", running, err)
	}
}
