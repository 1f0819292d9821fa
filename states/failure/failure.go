// Package failure holds the one error type a workflow can catch: an error
// that carries the States Language error name that Retry and Catch match
// (States.Runtime, States.TaskFailed, a handler's own error type name, ...).
//
// It is a leaf: it imports nothing of keyflow, so that every phase (paths,
// intrinsics, payload templates, the engine) can return it.
package failure

import "fmt"

// Error names that the States Language predefines. A handler's own error
// names (its Go type name, as on Lambda) are used as they are.
const (
	All                    = "States.ALL"
	DataLimitExceeded      = "States.DataLimitExceeded"
	Runtime                = "States.Runtime"
	Timeout                = "States.Timeout"
	TaskFailed             = "States.TaskFailed"
	Permissions            = "States.Permissions"
	HeartbeatTimeout       = "States.HeartbeatTimeout"
	NoChoiceMatched        = "States.NoChoiceMatched"
	IntrinsicFailure       = "States.IntrinsicFailure"
	ParameterPathFailure   = "States.ParameterPathFailure"
	ResultPathMatchFailure = "States.ResultPathMatchFailure"
	ItemReaderFailed       = "States.ItemReaderFailed"
	ResultWriterFailed     = "States.ResultWriterFailed"
	ExceedToleratedFailure = "States.ExceedToleratedFailureThreshold"
	BranchFailed           = "States.BranchFailed"
	QueryEvaluationError   = "States.QueryEvaluationError"
)

// Error is a failure that a workflow sees by name. Cause is free text that
// must never carry secret material.
type Error struct {
	Name  string
	Cause string
}

func (e *Error) Error() string {
	if e.Cause == "" {
		return e.Name
	}
	return e.Name + ": " + e.Cause
}

// New returns an *Error with a formatted cause.
func New(name, format string, args ...any) *Error {
	return &Error{Name: name, Cause: fmt.Sprintf(format, args...)}
}
