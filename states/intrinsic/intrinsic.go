// Package intrinsic parses and evaluates the States Language intrinsic
// functions (States.Format, States.StringToJson, ..., States.UUID), whose
// arguments are literals, paths or nested calls. A failure at run time is a
// *failure.Error named States.IntrinsicFailure, as on AWS.
//
// It imports only keyflow's states/jsonpath, states/data and states/failure.
package intrinsic

import "github.com/keyflow/keyflow/states/jsonpath"

// Call is a compiled intrinsic call, immutable and safe for concurrent use.
type Call struct{ src string }

// IsCall reports whether s is written as an intrinsic call ("States.X(...)").
func IsCall(s string) bool { panic("intrinsic.IsCall: not implemented yet") }

// Compile parses a call and checks the function name and argument count.
func Compile(src string) (*Call, error) { panic("intrinsic.Compile: not implemented yet") }

// String returns the source text.
func (c *Call) String() string { return c.src }

// Eval runs the call.
func (c *Call) Eval(s *jsonpath.Scope) (any, error) { panic("intrinsic.Eval: not implemented yet") }
