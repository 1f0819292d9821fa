// Package intrinsic parses and evaluates the States Language intrinsic
// functions (States.Format, States.StringToJson, ..., States.UUID), whose
// arguments are literals, paths or nested calls. A failure at run time is a
// *failure.Error named States.IntrinsicFailure, as on AWS; a path argument
// that selects nothing fails with States.Runtime, as a path does anywhere.
//
// A call is compiled once: the function name, the argument count and the
// types of literal arguments are checked then, and a call whose arguments
// are all literals is evaluated then (except States.UUID and
// States.MathRandom without a seed).
//
// It imports only keyflow's states/jsonpath, states/data and states/failure.
package intrinsic

import (
	"strings"

	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/jsonpath"
)

// Call is a compiled intrinsic call, immutable and safe for concurrent use.
type Call struct {
	src  string
	root *node
}

// IsCall reports whether s is written as an intrinsic call ("States.X(...)").
func IsCall(s string) bool {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "States.") || !strings.HasSuffix(s, ")") {
		return false
	}
	i := len("States.")
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i > len("States.") && i < len(s) && s[i] == '('
}

// Compile parses a call and checks the function name and argument count.
func Compile(src string) (*Call, error) {
	p := &parser{src: src}
	if len(src) > MaxLength {
		return nil, p.fail(0, "too long")
	}
	p.skipSpace()
	n, err := p.call(1)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(src) {
		return nil, p.fail(p.pos, "unexpected text after the call")
	}
	if err := fold(n); err != nil {
		return nil, &SyntaxError{Call: src, Msg: err.Error()}
	}
	return &Call{src: src, root: n}, nil
}

// MustCompile is Compile that panics on error, for calls written in code.
func MustCompile(src string) *Call {
	c, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return c
}

// fold evaluates, at compile time, the calls whose arguments are all
// literals (or folded calls) and whose function is pure. An error there is
// a compile error: the call would fail on every run.
func fold(n *node) error {
	all := true
	for i := range n.args {
		a := &n.args[i]
		switch a.kind {
		case argPath:
			all = false
		case argCall:
			if err := fold(a.call); err != nil {
				return err
			}
			if !a.call.constant {
				all = false
			}
		}
	}
	if !all || (n.fn.impure != nil && n.fn.impure(n.args)) {
		return nil
	}
	v, err := n.eval(nil)
	if err != nil {
		if fe, ok := err.(*failure.Error); ok {
			return &compileError{fe.Cause}
		}
		return err
	}
	n.constant, n.constValue = true, v
	return nil
}

type compileError struct{ msg string }

func (e *compileError) Error() string { return e.msg }

// String returns the source text.
func (c *Call) String() string { return c.src }

// Name returns the function's name, "States.Format" for example.
func (c *Call) Name() string { return c.root.fn.name }

// Eval runs the call.
func (c *Call) Eval(s *jsonpath.Scope) (any, error) {
	return c.root.eval(s)
}

func (n *node) eval(s *jsonpath.Scope) (any, error) {
	if n.constant {
		return n.constValue, nil
	}
	var buf [4]any
	vals := buf[:0]
	if len(n.args) > len(buf) {
		vals = make([]any, 0, len(n.args))
	}
	for i := range n.args {
		a := &n.args[i]
		switch a.kind {
		case argLiteral:
			vals = append(vals, a.value)
		case argPath:
			v, ok, err := a.path.Lookup(s)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, missingArgument(a.path, s)
			}
			vals = append(vals, v)
		case argCall:
			v, err := a.call.eval(s)
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
		}
	}
	fn := n.fn
	for i, v := range vals {
		if !checkType(fn.typeOf(i), v) {
			return nil, fail(fn, "%s", fn.typeMsg(i, v))
		}
	}
	if fn.name == "States.Format" && n.args[0].kind == argLiteral {
		return format(fn, n.args[0].format, vals[1:])
	}
	return fn.run(fn, vals)
}

// missingArgument is the States.Runtime failure of a path argument that
// selects nothing, worded as AWS words it: "The JsonPath argument for the
// field '$.missing' could not be found in the input '{...}'".
func missingArgument(p *jsonpath.Path, s *jsonpath.Scope) error {
	if s == nil {
		s = &jsonpath.Scope{}
	}
	where, doc := "input", s.Input
	switch p.Root() {
	case "$":
	case "$$":
		where, doc = "context object", s.Context
	default:
		name, _ := p.Var()
		if v, ok := s.Vars[name]; ok {
			where, doc = "variable '$"+name+"'", v
		} else {
			return failure.New(failure.Runtime, "The JsonPath argument for the field '%s' refers to the variable '$%s', which is not defined", p.String(), name)
		}
	}
	return failure.New(failure.Runtime, "The JsonPath argument for the field '%s' could not be found in the %s '%s'", p.String(), where, data.Preview(doc, 4096))
}

// fail returns the States.IntrinsicFailure of a function.
func fail(fn *function, format string, args ...any) error {
	return failure.New(failure.IntrinsicFailure, "Invalid arguments in "+fn.name+": "+format, args...)
}

// typeName is the JSON type of v, for messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case int64, int, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func preview(v any) string { return data.Preview(v, 100) }
