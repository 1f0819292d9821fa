package local

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/engine"
)

// runningExecutions is what the hygiene inventory asks Step Functions on
// AWS: which executions of a state machine are running. The engine tells
// the backend of every start (and resume, in a durable store) and end, so
// it answers for the executions of this process alone, which on one
// machine are all of them.
type runningExecutions struct {
	mu        sync.Mutex
	byMachine map[string]map[string]bool // state machine ARN -> names
}

func newRunningExecutions() *runningExecutions {
	return &runningExecutions{byMachine: map[string]map[string]bool{}}
}

// splitExecutionArn is an execution ARN's state machine ARN and name; ok is false for
// any other ARN.
func splitExecutionArn(arn string) (machine, name string, ok bool) {
	p := strings.Split(arn, ":")
	if len(p) != 8 || p[5] != "execution" {
		return "", "", false
	}
	p[5] = "stateMachine"
	return strings.Join(p[:7], ":"), p[7], true
}

func (r *runningExecutions) started(x *engine.Execution) {
	m, name, ok := splitExecutionArn(x.Arn())
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byMachine[m] == nil {
		r.byMachine[m] = map[string]bool{}
	}
	r.byMachine[m][name] = true
}

func (r *runningExecutions) ended(res *engine.Result) {
	m, name, ok := splitExecutionArn(res.ExecutionArn)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byMachine[m], name)
}

// ListExecutions implements tasks.ExecutionsAPI for running executions, in
// one page, by name.
func (r *runningExecutions) ListExecutions(_ context.Context, in *sfn.ListExecutionsInput, _ ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
	if in.StatusFilter != types.ExecutionStatusRunning {
		return nil, fmt.Errorf("local: only running executions are listed here, not %q", in.StatusFilter)
	}
	m := aws.ToString(in.StateMachineArn)
	r.mu.Lock()
	names := make([]string, 0, len(r.byMachine[m]))
	for n := range r.byMachine[m] {
		names = append(names, n)
	}
	r.mu.Unlock()
	slices.Sort(names)
	out := &sfn.ListExecutionsOutput{Executions: []types.ExecutionListItem{}}
	prefix := strings.Replace(m, ":stateMachine:", ":execution:", 1) + ":"
	for _, n := range names {
		out.Executions = append(out.Executions, types.ExecutionListItem{Name: aws.String(n), ExecutionArn: aws.String(prefix + n),
			StateMachineArn: aws.String(m), Status: types.ExecutionStatusRunning})
	}
	return out, nil
}

// ExecutionsFunc is a tasks.ExecutionsAPI of one function: how a caller
// hands Options.Executions a service it opens only in Options.OpenEngine.
type ExecutionsFunc func(ctx context.Context, in *sfn.ListExecutionsInput, optFns ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error)

// ListExecutions implements tasks.ExecutionsAPI.
func (f ExecutionsFunc) ListExecutions(ctx context.Context, in *sfn.ListExecutionsInput, optFns ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
	return f(ctx, in, optFns...)
}
