package api_test

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

// fake is a service.API that records the input of each operation and
// answers with a canned output or error.
type fake struct {
	mu  sync.Mutex
	got map[string]any
	out map[string]any
	err map[string]error
}

func newFake() *fake {
	return &fake{got: map[string]any{}, out: map[string]any{}, err: map[string]error{}}
}

func record[O, I any](f *fake, op string, in *I) (*O, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got[op] = in
	if err := f.err[op]; err != nil {
		return nil, err
	}
	out, _ := f.out[op].(*O)
	return out, nil
}

// answer sets what op answers from now on.
func (f *fake) answer(op string, out any, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out[op], f.err[op] = out, err
}

func (f *fake) received(op string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[op]
}

func (f *fake) CreateStateMachine(_ context.Context, in *sfn.CreateStateMachineInput, _ ...func(*sfn.Options)) (*sfn.CreateStateMachineOutput, error) {
	return record[sfn.CreateStateMachineOutput](f, "CreateStateMachine", in)
}
func (f *fake) UpdateStateMachine(_ context.Context, in *sfn.UpdateStateMachineInput, _ ...func(*sfn.Options)) (*sfn.UpdateStateMachineOutput, error) {
	return record[sfn.UpdateStateMachineOutput](f, "UpdateStateMachine", in)
}
func (f *fake) DescribeStateMachine(_ context.Context, in *sfn.DescribeStateMachineInput, _ ...func(*sfn.Options)) (*sfn.DescribeStateMachineOutput, error) {
	return record[sfn.DescribeStateMachineOutput](f, "DescribeStateMachine", in)
}
func (f *fake) DescribeStateMachineForExecution(_ context.Context, in *sfn.DescribeStateMachineForExecutionInput, _ ...func(*sfn.Options)) (*sfn.DescribeStateMachineForExecutionOutput, error) {
	return record[sfn.DescribeStateMachineForExecutionOutput](f, "DescribeStateMachineForExecution", in)
}
func (f *fake) ListStateMachines(_ context.Context, in *sfn.ListStateMachinesInput, _ ...func(*sfn.Options)) (*sfn.ListStateMachinesOutput, error) {
	return record[sfn.ListStateMachinesOutput](f, "ListStateMachines", in)
}
func (f *fake) ListStateMachineVersions(_ context.Context, in *sfn.ListStateMachineVersionsInput, _ ...func(*sfn.Options)) (*sfn.ListStateMachineVersionsOutput, error) {
	return record[sfn.ListStateMachineVersionsOutput](f, "ListStateMachineVersions", in)
}
func (f *fake) DeleteStateMachine(_ context.Context, in *sfn.DeleteStateMachineInput, _ ...func(*sfn.Options)) (*sfn.DeleteStateMachineOutput, error) {
	return record[sfn.DeleteStateMachineOutput](f, "DeleteStateMachine", in)
}
func (f *fake) ValidateStateMachineDefinition(_ context.Context, in *sfn.ValidateStateMachineDefinitionInput, _ ...func(*sfn.Options)) (*sfn.ValidateStateMachineDefinitionOutput, error) {
	return record[sfn.ValidateStateMachineDefinitionOutput](f, "ValidateStateMachineDefinition", in)
}
func (f *fake) StartExecution(_ context.Context, in *sfn.StartExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	return record[sfn.StartExecutionOutput](f, "StartExecution", in)
}
func (f *fake) StartSyncExecution(_ context.Context, in *sfn.StartSyncExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartSyncExecutionOutput, error) {
	return record[sfn.StartSyncExecutionOutput](f, "StartSyncExecution", in)
}
func (f *fake) DescribeExecution(_ context.Context, in *sfn.DescribeExecutionInput, _ ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	return record[sfn.DescribeExecutionOutput](f, "DescribeExecution", in)
}
func (f *fake) ListExecutions(_ context.Context, in *sfn.ListExecutionsInput, _ ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
	return record[sfn.ListExecutionsOutput](f, "ListExecutions", in)
}
func (f *fake) GetExecutionHistory(_ context.Context, in *sfn.GetExecutionHistoryInput, _ ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	return record[sfn.GetExecutionHistoryOutput](f, "GetExecutionHistory", in)
}
func (f *fake) StopExecution(_ context.Context, in *sfn.StopExecutionInput, _ ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error) {
	return record[sfn.StopExecutionOutput](f, "StopExecution", in)
}
func (f *fake) SendTaskSuccess(_ context.Context, in *sfn.SendTaskSuccessInput, _ ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error) {
	return record[sfn.SendTaskSuccessOutput](f, "SendTaskSuccess", in)
}
func (f *fake) SendTaskFailure(_ context.Context, in *sfn.SendTaskFailureInput, _ ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error) {
	return record[sfn.SendTaskFailureOutput](f, "SendTaskFailure", in)
}
func (f *fake) SendTaskHeartbeat(_ context.Context, in *sfn.SendTaskHeartbeatInput, _ ...func(*sfn.Options)) (*sfn.SendTaskHeartbeatOutput, error) {
	return record[sfn.SendTaskHeartbeatOutput](f, "SendTaskHeartbeat", in)
}
func (f *fake) TestState(_ context.Context, in *sfn.TestStateInput, _ ...func(*sfn.Options)) (*sfn.TestStateOutput, error) {
	return record[sfn.TestStateOutput](f, "TestState", in)
}
