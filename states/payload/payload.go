// Package payload compiles payload templates (Parameters, ResultSelector,
// ItemSelector, Assign, Credentials): JSON values whose object keys ending in
// ".$" hold a path or an intrinsic call evaluated against a scope.
//
// It imports only keyflow's states/jsonpath, states/intrinsic, states/data
// and states/failure.
package payload

import "github.com/keyflow/keyflow/states/jsonpath"

// Template is a compiled template, immutable and safe for concurrent use.
type Template struct{}

// Compile compiles a decoded JSON value. Errors name the offending key as a
// relative JSON pointer ("/Key.$: ...") so callers can prefix the field's.
func Compile(v any) (*Template, error) { panic("payload.Compile: not implemented yet") }

// Eval builds the payload. A path that selects nothing fails with
// States.Runtime, as on AWS.
func (t *Template) Eval(s *jsonpath.Scope) (any, error) { panic("payload.Eval: not implemented yet") }
