package engine

import (
	"fmt"

	"github.com/keyflow/keyflow/states/failure"
)

// APIError is an error of the engine's API with the name AWS gives it
// (ExecutionAlreadyExists, InvalidName, TaskDoesNotExist, InvalidToken,
// TaskTimedOut, ...), so that a Step Functions API server can answer with it
// unchanged. Compare with errors.Is against the Err* values.
type APIError struct {
	Name    string
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return "engine: " + e.Name
	}
	return "engine: " + e.Name + ": " + e.Message
}

// Is matches any *APIError with the same Name.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	return ok && t.Name == e.Name
}

// Errors of the API, for errors.Is.
var (
	ErrExecutionAlreadyExists   = &APIError{Name: "ExecutionAlreadyExists"}
	ErrInvalidName              = &APIError{Name: "InvalidName"}
	ErrInvalidExecutionInput    = &APIError{Name: "InvalidExecutionInput"}
	ErrTaskDoesNotExist         = &APIError{Name: "TaskDoesNotExist"}
	ErrInvalidToken             = &APIError{Name: "InvalidToken"}
	ErrTaskTimedOut             = &APIError{Name: "TaskTimedOut"}
	ErrStateMachineDoesNotExist = &APIError{Name: "StateMachineDoesNotExist"}
	ErrInvalidDefinition        = &APIError{Name: "InvalidDefinition"}
)

func apiErr(base *APIError, format string, args ...any) *APIError {
	return &APIError{Name: base.Name, Message: fmt.Sprintf(format, args...)}
}

// fail builds the catchable error of a workflow.
func fail(name, format string, args ...any) *failure.Error {
	return failure.New(name, format, args...)
}

// truncate keeps error messages readable when they quote a value.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
