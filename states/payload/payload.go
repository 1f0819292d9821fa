// Package payload compiles payload templates (Parameters, ResultSelector,
// ItemSelector, Assign, Credentials): JSON values whose object keys ending in
// ".$" hold a path or an intrinsic call evaluated against a scope.
//
// A template is compiled once into closures: paths and calls are parsed at
// Compile, never at Eval. Parts of the template without a ".$" key are
// shared by every payload built from it (values are immutable), so Eval
// allocates only the objects and arrays that hold a computed value.
//
// It imports only keyflow's states/jsonpath, states/intrinsic, states/data
// and states/failure.
package payload

import (
	"sort"
	"strconv"
	"strings"

	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/intrinsic"
	"github.com/keyflow/keyflow/states/jsonpath"
)

// MaxInputPreview bounds how much of the input a "could not be found"
// cause quotes.
const MaxInputPreview = 4096

// Error is a template that does not compile. Pointer is the offending key
// as a JSON pointer relative to the template ("/Key.$", "/list/0/x.$").
type Error struct {
	Pointer string
	Msg     string
	Err     error // the path's or call's own error, if any
}

func (e *Error) Error() string {
	return "payload: " + e.Pointer + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

type evalFn func(s *jsonpath.Scope) (any, error)

// Template is a compiled template, immutable and safe for concurrent use.
type Template struct {
	eval   evalFn
	static bool
	value  any // the template itself when static
}

// Compile compiles a decoded JSON value. Errors name the offending key as a
// relative JSON pointer ("/Key.$: ...") so callers can prefix the field's.
func Compile(v any) (*Template, error) {
	fn, static, err := compile(v, "", 0)
	if err != nil {
		return nil, err
	}
	if static {
		return &Template{static: true, value: v}, nil
	}
	return &Template{eval: fn}, nil
}

// MustCompile is Compile that panics on error, for templates written in code.
func MustCompile(v any) *Template {
	t, err := Compile(v)
	if err != nil {
		panic(err)
	}
	return t
}

// IsStatic reports whether the template has no ".$" key: Eval then returns
// the template value itself.
func (t *Template) IsStatic() bool { return t.static }

// Eval builds the payload. A path that selects nothing fails with
// States.Runtime, as on AWS.
func (t *Template) Eval(s *jsonpath.Scope) (any, error) {
	if t.static {
		return t.value, nil
	}
	if s == nil {
		s = &jsonpath.Scope{}
	}
	return t.eval(s)
}

func pointerToken(k string) string {
	if strings.ContainsAny(k, "~/") {
		k = strings.ReplaceAll(k, "~", "~0")
		k = strings.ReplaceAll(k, "/", "~1")
	}
	return k
}

// compile returns an evaluator for v, and whether v has no ".$" key (then
// the evaluator is nil and v itself is the value).
func compile(v any, ptr string, depth int) (evalFn, bool, error) {
	if depth > data.MaxDepth {
		return nil, false, &Error{Pointer: ptr, Msg: "nested too deeply"}
	}
	switch x := v.(type) {
	case map[string]any:
		return compileObject(x, ptr, depth)
	case []any:
		return compileArray(x, ptr, depth)
	}
	return nil, true, nil
}

type field struct {
	key string // the output key
	fn  evalFn
}

func compileObject(m map[string]any, ptr string, depth int) (evalFn, bool, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // errors in a stable order
	var static []string
	var dynamic []field
	for _, k := range keys {
		kp := ptr + "/" + pointerToken(k)
		if name, ok := strings.CutSuffix(k, ".$"); ok {
			if _, dup := m[name]; dup {
				return nil, false, &Error{Pointer: kp, Msg: "the field " + data.Quote(name, 64) + " is also given without \".$\""}
			}
			fn, err := compileDynamic(k, m[k], kp)
			if err != nil {
				return nil, false, err
			}
			dynamic = append(dynamic, field{key: name, fn: fn})
			continue
		}
		fn, isStatic, err := compile(m[k], kp, depth+1)
		if err != nil {
			return nil, false, err
		}
		if isStatic {
			static = append(static, k)
		} else {
			dynamic = append(dynamic, field{key: k, fn: fn})
		}
	}
	if len(dynamic) == 0 {
		return nil, true, nil
	}
	size := len(static) + len(dynamic)
	return func(s *jsonpath.Scope) (any, error) {
		out := make(map[string]any, size)
		for _, k := range static {
			out[k] = m[k]
		}
		for i := range dynamic {
			v, err := dynamic[i].fn(s)
			if err != nil {
				return nil, err
			}
			out[dynamic[i].key] = v
		}
		return out, nil
	}, false, nil
}

func compileArray(a []any, ptr string, depth int) (evalFn, bool, error) {
	fns := make([]evalFn, len(a))
	dyn := false
	for i, e := range a {
		fn, isStatic, err := compile(e, ptr+"/"+strconv.Itoa(i), depth+1)
		if err != nil {
			return nil, false, err
		}
		if !isStatic {
			fns[i] = fn
			dyn = true
		}
	}
	if !dyn {
		return nil, true, nil
	}
	return func(s *jsonpath.Scope) (any, error) {
		out := make([]any, len(a))
		for i, fn := range fns {
			if fn == nil {
				out[i] = a[i]
				continue
			}
			v, err := fn(s)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}, false, nil
}

// compileDynamic compiles the value of a key ending in ".$".
func compileDynamic(key string, v any, ptr string) (evalFn, error) {
	src, ok := v.(string)
	if !ok {
		return nil, &Error{Pointer: ptr, Msg: "the value of a key ending in \".$\" must be a string holding a path or an intrinsic call, not " + kind(v) + " " + data.Preview(v, 64)}
	}
	switch {
	case intrinsic.IsCall(src):
		c, err := intrinsic.Compile(src)
		if err != nil {
			return nil, &Error{Pointer: ptr, Msg: err.Error(), Err: err}
		}
		return c.Eval, nil
	case strings.HasPrefix(src, "$"):
		p, err := jsonpath.Compile(src)
		if err != nil {
			return nil, &Error{Pointer: ptr, Msg: err.Error(), Err: err}
		}
		return pathEval(p, key), nil
	}
	return nil, &Error{Pointer: ptr, Msg: "the value of a key ending in \".$\" must be a path or an intrinsic call, not " + data.Quote(src, 64)}
}

// pathEval reads a path; a path that selects nothing fails as on AWS:
// "The JSONPath '$.x' specified for the field 'x.$' could not be found in
// the input '{...}'".
func pathEval(p *jsonpath.Path, key string) evalFn {
	return func(s *jsonpath.Scope) (any, error) {
		v, ok, err := p.Lookup(s)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound(p, key, s)
		}
		return v, nil
	}
}

func notFound(p *jsonpath.Path, key string, s *jsonpath.Scope) error {
	switch p.Root() {
	case "$":
		return failure.New(failure.Runtime, "The JSONPath '%s' specified for the field '%s' could not be found in the input '%s'",
			p.String(), key, data.Preview(s.Input, MaxInputPreview))
	case "$$":
		return failure.New(failure.Runtime, "The JSONPath '%s' specified for the field '%s' could not be found in the context object '%s'",
			p.String(), key, data.Preview(s.Context, MaxInputPreview))
	}
	name, _ := p.Var()
	if _, defined := s.Vars[name]; !defined {
		return failure.New(failure.Runtime, "The variable '$%s' used in the JSONPath '%s' specified for the field '%s' is not defined",
			name, p.String(), key)
	}
	return failure.New(failure.Runtime, "The JSONPath '%s' specified for the field '%s' could not be found in the variable '$%s'",
		p.String(), key, name)
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	if _, ok := data.Number(v); ok {
		return "number"
	}
	return "value"
}
