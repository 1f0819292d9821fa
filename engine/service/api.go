// Package service is the Step Functions API as keyflow serves it: the
// operations of AWS Step Functions, with the aws-sdk-go-v2 sfn types as
// their inputs, outputs and errors.
//
// API is the contract between the pieces that speak Step Functions. The
// real *sfn.Client satisfies it (against AWS, or against `keyflow serve`
// through its endpoint), and so does the local service that runs on the
// engine and the durable store, in-process. The CLI, the audit and the
// HTTP server are written once, against API, and work with any of them.
//
// service imports engine and the AWS SDK types; it never imports tasks,
// sandbox or cmd.
package service

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

// API is the subset of Step Functions operations keyflow serves and uses.
// The variadic options exist so that *sfn.Client satisfies API; local
// implementations ignore them.
type API interface {
	CreateStateMachine(context.Context, *sfn.CreateStateMachineInput, ...func(*sfn.Options)) (*sfn.CreateStateMachineOutput, error)
	UpdateStateMachine(context.Context, *sfn.UpdateStateMachineInput, ...func(*sfn.Options)) (*sfn.UpdateStateMachineOutput, error)
	DescribeStateMachine(context.Context, *sfn.DescribeStateMachineInput, ...func(*sfn.Options)) (*sfn.DescribeStateMachineOutput, error)
	DescribeStateMachineForExecution(context.Context, *sfn.DescribeStateMachineForExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeStateMachineForExecutionOutput, error)
	ListStateMachines(context.Context, *sfn.ListStateMachinesInput, ...func(*sfn.Options)) (*sfn.ListStateMachinesOutput, error)
	ListStateMachineVersions(context.Context, *sfn.ListStateMachineVersionsInput, ...func(*sfn.Options)) (*sfn.ListStateMachineVersionsOutput, error)
	DeleteStateMachine(context.Context, *sfn.DeleteStateMachineInput, ...func(*sfn.Options)) (*sfn.DeleteStateMachineOutput, error)
	ValidateStateMachineDefinition(context.Context, *sfn.ValidateStateMachineDefinitionInput, ...func(*sfn.Options)) (*sfn.ValidateStateMachineDefinitionOutput, error)

	StartExecution(context.Context, *sfn.StartExecutionInput, ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	StartSyncExecution(context.Context, *sfn.StartSyncExecutionInput, ...func(*sfn.Options)) (*sfn.StartSyncExecutionOutput, error)
	DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
	ListExecutions(context.Context, *sfn.ListExecutionsInput, ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error)
	GetExecutionHistory(context.Context, *sfn.GetExecutionHistoryInput, ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error)
	StopExecution(context.Context, *sfn.StopExecutionInput, ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error)

	SendTaskSuccess(context.Context, *sfn.SendTaskSuccessInput, ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
	SendTaskFailure(context.Context, *sfn.SendTaskFailureInput, ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
	SendTaskHeartbeat(context.Context, *sfn.SendTaskHeartbeatInput, ...func(*sfn.Options)) (*sfn.SendTaskHeartbeatOutput, error)

	TestState(context.Context, *sfn.TestStateInput, ...func(*sfn.Options)) (*sfn.TestStateOutput, error)
}

// The real client is an API.
var _ API = (*sfn.Client)(nil)
