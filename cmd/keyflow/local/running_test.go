package local

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/states"
)

// TestRunningExecutions: an execution is listed from its start to its
// end, by its state machine, and only running ones are asked for.
func TestRunningExecutions(t *testing.T) {
	ctx := t.Context()
	r := newRunningExecutions()
	hold, release := make(chan struct{}), make(chan struct{})
	e := engine.New(engine.Options{
		Clock: engine.NewRealClock(), Region: "us-east-1", AccountID: "123456789012",
		OnExecutionStart: r.started, OnExecutionEnd: r.ended,
		Handlers: map[string]engine.Handler{"hold": engine.HandlerFunc(func(context.Context, []byte) ([]byte, error) {
			close(hold)
			<-release
			return []byte(`{}`), nil
		})},
	})
	def, err := states.NewMachine("").StartAt("Hold").Task("Hold", "arn:aws:lambda:us-east-1:123456789012:function:hold").End().Build()
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Compile(def, "keyflow-mfa")
	if err != nil {
		t.Fatal(err)
	}
	list := func(machine string) []string {
		t.Helper()
		out, err := r.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(machine), StatusFilter: types.ExecutionStatusRunning})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, x := range out.Executions {
			names = append(names, aws.ToString(x.Name))
		}
		return names
	}
	const arn = "arn:aws:states:us-east-1:123456789012:stateMachine:keyflow-mfa"
	x, err := m.Start(ctx, "u-2026-03-01", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-hold
	if got := list(arn); len(got) != 1 || got[0] != "u-2026-03-01" {
		t.Errorf("running %v, want [u-2026-03-01]", got)
	}
	if got := list("arn:aws:states:us-east-1:123456789012:stateMachine:keyflow-other"); len(got) != 0 {
		t.Errorf("another machine lists %v", got)
	}
	close(release)
	x.Wait(ctx)
	if got := list(arn); len(got) != 0 {
		t.Errorf("ended, still running: %v", got)
	}
	if _, err := r.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn)}); err == nil {
		t.Error("every status listed: only running executions are tracked")
	}
}
