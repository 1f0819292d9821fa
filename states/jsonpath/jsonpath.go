// Package jsonpath evaluates paths as AWS Step Functions does: JSONPath
// rooted at "$" (the state's input), "$$" (the context object) or "$name"
// (a variable set with Assign), and reference paths, the definite subset
// that ResultPath writes to.
//
// AWS evaluates paths with Jayway JsonPath; this package follows Jayway's
// grammar and semantics (dot names run up to '.', '[', '(' or space, so
// "$.detail-type" is a name; negative indexes count from the end; an
// indefinite path yields the array of its matches) and Jayway's normalized
// form in messages ("$['a'][0]"). Structure is walked here, with object
// keys in sorted order so results are deterministic; filter expressions
// ("[?(@.x > 1)]") are compiled and matched by ojg's jp package.
//
// It imports only keyflow's states/data and states/failure.
package jsonpath

import (
	"fmt"
	"slices"

	"github.com/ohler55/ojg/jp"

	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
)

// Scope is what a path can read.
type Scope struct {
	Input   any            // $
	Context any            // $$
	Vars    map[string]any // $name; nil when no variable is set
}

// Path is a compiled path. It is immutable and safe for concurrent use.
type Path struct {
	src string
	p   *parsed
	// prefixDefinite: the steps before a trailing length() select at most
	// one value.
	prefixDefinite bool
}

// Compile parses a path. The error names the problem, e.g.
// `jsonpath: invalid path "$.a[": unclosed bracket`.
func Compile(src string) (*Path, error) {
	pp, err := parse(src, "path")
	if err != nil {
		return nil, err
	}
	path := &Path{src: src, p: pp, prefixDefinite: true}
	for i := range pp.steps {
		switch pp.steps[i].kind {
		case stepKey, stepIndex:
		default:
			path.prefixDefinite = false
		}
	}
	return path, nil
}

// MustCompile is Compile that panics on error, for paths written in code.
func MustCompile(src string) *Path {
	p, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the source text.
func (p *Path) String() string { return p.src }

// Normalized returns the path in Jayway's normalized form ("$['a'][0]"),
// as AWS prints it in messages.
func (p *Path) Normalized() string { return p.p.norm }

// Definite reports whether the path selects at most one value (no
// wildcard, filter, slice, union or deep scan).
func (p *Path) Definite() bool { return p.p.definite }

// Root reports what the path reads: "$" (the input), "$$" (the context
// object) or "$name" for a variable.
func (p *Path) Root() string {
	switch p.p.root {
	case rootContext:
		return "$$"
	case rootVar:
		return "$" + p.p.varName
	}
	return "$"
}

// Var returns the variable's name when the path reads a variable.
func (p *Path) Var() (string, bool) {
	return p.p.varName, p.p.root == rootVar
}

// Get evaluates the path. A definite path that selects nothing fails with
// a *failure.Error named States.Runtime whose cause reads as AWS's
// ("Invalid path '$.a' : No results for path: $['a']"); an indefinite path
// returns the array of matches (possibly empty).
func (p *Path) Get(s *Scope) (any, error) {
	v, ok, err := p.Lookup(s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, p.noResults()
	}
	return v, nil
}

func (p *Path) noResults() error {
	return failure.New(failure.Runtime, "Invalid path '%s' : No results for path: %s", p.src, p.p.norm)
}

// Lookup evaluates the path like Get, but reports a definite path that
// selects nothing as ok == false instead of an error, so that callers can
// word the failure for their field (Parameters, ItemsPath, ...). err is a
// *failure.Error, for a filter that cannot be evaluated.
func (p *Path) Lookup(s *Scope) (v any, ok bool, err error) {
	if s == nil {
		s = &Scope{}
	}
	var root any
	switch p.p.root {
	case rootInput:
		root = s.Input
	case rootContext:
		root = s.Context
	case rootVar:
		root, ok = s.Vars[p.p.varName]
		if !ok {
			return nil, false, nil
		}
	}
	if p.p.length {
		return p.length(root)
	}
	if p.p.definite {
		v, ok = walk(root, p.p.steps)
		return v, ok, nil
	}
	out, err := collect(root, p.p.steps)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

func (p *Path) length(root any) (any, bool, error) {
	if p.prefixDefinite {
		v, ok := walk(root, p.p.steps)
		if !ok {
			return nil, false, nil
		}
		switch x := v.(type) {
		case []any:
			return int64(len(x)), true, nil
		case map[string]any:
			return int64(len(x)), true, nil
		}
		return nil, false, nil
	}
	out, err := collect(root, p.p.steps)
	if err != nil {
		return nil, false, err
	}
	return int64(len(out)), true, nil
}

// walk follows a definite path; it allocates nothing.
func walk(v any, steps []step) (any, bool) {
	for i := range steps {
		s := &steps[i]
		switch s.kind {
		case stepKey:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[s.key]; !ok {
				return nil, false
			}
		case stepIndex:
			a, ok := v.([]any)
			if !ok {
				return nil, false
			}
			i := s.index
			if i < 0 {
				i += len(a)
			}
			if i < 0 || i >= len(a) {
				return nil, false
			}
			v = a[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// collect evaluates an indefinite path; the result is a new array.
func collect(root any, steps []step) ([]any, error) {
	cur := []any{root}
	var next []any
	ev := &evaluator{root: root}
	for i := range steps {
		next = next[:0:0]
		for _, n := range cur {
			var err error
			if next, err = ev.apply(&steps[i], n, next); err != nil {
				return nil, err
			}
		}
		cur = next
	}
	if cur == nil {
		cur = []any{}
	}
	return cur, nil
}

type evaluator struct {
	root      any
	synthetic map[string]any // the root with the hidden key, for "$" in filters
}

// hiddenKey holds the candidate when a filter that refers to "$" is
// matched through ojg against the document root.
const hiddenKey = "\x00keyflow-candidate"

func (ev *evaluator) apply(s *step, n any, out []any) ([]any, error) {
	switch s.kind {
	case stepKey:
		if m, ok := n.(map[string]any); ok {
			if v, ok := m[s.key]; ok {
				out = append(out, v)
			}
		}
	case stepIndex:
		if a, ok := n.([]any); ok {
			if v, ok := index(a, s.index); ok {
				out = append(out, v)
			}
		}
	case stepKeys:
		if m, ok := n.(map[string]any); ok {
			for _, k := range s.keys {
				if v, ok := m[k]; ok {
					out = append(out, v)
				}
			}
		}
	case stepIndexes:
		if a, ok := n.([]any); ok {
			for _, i := range s.indexes {
				if v, ok := index(a, i); ok {
					out = append(out, v)
				}
			}
		}
	case stepWild:
		switch x := n.(type) {
		case []any:
			out = append(out, x...)
		case map[string]any:
			for _, k := range sortedKeys(x) {
				out = append(out, x[k])
			}
		}
	case stepSlice:
		if a, ok := n.([]any); ok {
			out = appendSlice(out, a, s.slice)
		}
	case stepFilter:
		switch x := n.(type) {
		case []any:
			for _, e := range x {
				ok, err := ev.match(s, e)
				if err != nil {
					return nil, err
				}
				if ok {
					out = append(out, e)
				}
			}
		case map[string]any:
			// Jayway tests an object itself, not its members.
			ok, err := ev.match(s, x)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, x)
			}
		}
	case stepDescent:
		return ev.descend(s.sub, n, out, true)
	}
	return out, nil
}

// descend applies sub at n and every node below it, in document order
// (object keys sorted).
func (ev *evaluator) descend(sub *step, n any, out []any, top bool) ([]any, error) {
	var err error
	if sub.kind == stepFilter {
		// ..[?(...)] selects every node below the start that matches.
		if !top {
			if _, ok := n.(map[string]any); ok {
				ok, err := ev.match(sub, n)
				if err != nil {
					return nil, err
				}
				if ok {
					out = append(out, n)
				}
			} else if _, ok := n.([]any); !ok {
				ok, err := ev.match(sub, n)
				if err != nil {
					return nil, err
				}
				if ok {
					out = append(out, n)
				}
			}
		}
	} else if out, err = ev.apply(sub, n, out); err != nil {
		return nil, err
	}
	switch x := n.(type) {
	case []any:
		for _, e := range x {
			if out, err = ev.descend(sub, e, out, false); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if out, err = ev.descend(sub, x[k], out, false); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (ev *evaluator) match(s *step, item any) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok = false
			err = failure.New(failure.Runtime, "Invalid path: filter %s cannot be evaluated: %v", s.filter.String(), r)
		}
	}()
	if s.rootRef {
		if m, isMap := ev.root.(map[string]any); isMap {
			if ev.synthetic == nil {
				ev.synthetic = make(map[string]any, len(m)+1)
				for k, v := range m {
					ev.synthetic[k] = v
				}
			}
			ev.synthetic[hiddenKey] = []any{item}
			x := jp.Expr{jp.Root('$'), jp.Child(hiddenKey), s.filter}
			return len(x.Get(ev.synthetic)) > 0, nil
		}
	}
	return s.filter.Match(item), nil
}

func index(a []any, i int) (any, bool) {
	if i < 0 {
		i += len(a)
	}
	if i < 0 || i >= len(a) {
		return nil, false
	}
	return a[i], true
}

// appendSlice applies [start:end:step] with Python's (and RFC 9535's)
// bounds rules.
func appendSlice(out, a []any, s [3]int) []any {
	n := len(a)
	stp := 1
	if s[2] != sliceUnset {
		stp = s[2]
	}
	norm := func(i int) int {
		if i < 0 {
			return i + n
		}
		return i
	}
	if stp > 0 {
		lo, hi := 0, n
		if s[0] != sliceUnset {
			lo = min(max(norm(s[0]), 0), n)
		}
		if s[1] != sliceUnset {
			hi = min(max(norm(s[1]), 0), n)
		}
		for i := lo; i < hi; i += stp {
			out = append(out, a[i])
		}
		return out
	}
	lo, hi := -1, n-1
	if s[0] != sliceUnset {
		hi = min(max(norm(s[0]), -1), n-1)
	}
	if s[1] != sliceUnset {
		lo = min(max(norm(s[1]), -1), n-1)
	}
	for i := hi; i > lo; i += stp {
		out = append(out, a[i])
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ReferencePath is a compiled ResultPath: "$", "$.a.b", "$['a'][0]".
type ReferencePath struct {
	src   string
	steps []step
}

// CompileReference parses a reference path; wildcards, filters and "$$"
// are refused.
func CompileReference(src string) (*ReferencePath, error) {
	pp, err := parse(src, "reference path")
	if err != nil {
		return nil, err
	}
	bad := func(msg string) error {
		return &SyntaxError{Kind: "reference path", Path: src, Msg: msg}
	}
	switch pp.root {
	case rootContext:
		return nil, bad("a reference path cannot write to the context object \"$$\"")
	case rootVar:
		return nil, bad("a reference path cannot write to a variable")
	}
	if pp.length {
		return nil, bad("a reference path cannot call length()")
	}
	for i := range pp.steps {
		switch pp.steps[i].kind {
		case stepKey, stepIndex:
		default:
			return nil, bad("a reference path selects one node: no wildcard, filter, slice, union or deep scan")
		}
	}
	return &ReferencePath{src: src, steps: pp.steps}, nil
}

// MustCompileReference is CompileReference that panics on error.
func MustCompileReference(src string) *ReferencePath {
	r, err := CompileReference(src)
	if err != nil {
		panic(err)
	}
	return r
}

// String returns the source text.
func (r *ReferencePath) String() string { return r.src }

// IsRoot reports whether the path is "$" (Set returns the value itself).
func (r *ReferencePath) IsRoot() bool { return len(r.steps) == 0 }

// Get reads the node the reference path names, as a definite Path does.
func (r *ReferencePath) Get(doc any) (any, bool) { return walk(doc, r.steps) }

// Set returns a copy of doc with value placed at the path, sharing every
// part of doc it does not change; missing objects on the way are created.
// A path that runs through a non-object fails with States.ResultPathMatchFailure.
func (r *ReferencePath) Set(doc, value any) (any, error) {
	out, ok := set(doc, true, r.steps, value)
	if !ok {
		return nil, failure.New(failure.ResultPathMatchFailure,
			"Unable to apply ReferencePath %s to input %s", r.src, data.Preview(doc, 1024))
	}
	return out, nil
}

// set copies the spine from doc down to the target; present is false when
// doc is a field that does not exist yet (it is then created as an object).
func set(doc any, present bool, steps []step, value any) (any, bool) {
	if len(steps) == 0 {
		return value, true
	}
	s := &steps[0]
	switch s.kind {
	case stepKey:
		if !present {
			child, ok := set(nil, false, steps[1:], value)
			if !ok {
				return nil, false
			}
			return map[string]any{s.key: child}, true
		}
		m, ok := doc.(map[string]any)
		if !ok {
			return nil, false
		}
		old, exists := m[s.key]
		child, ok := set(old, exists, steps[1:], value)
		if !ok {
			return nil, false
		}
		out := make(map[string]any, len(m)+1)
		for k, v := range m {
			out[k] = v
		}
		out[s.key] = child
		return out, true
	case stepIndex:
		a, ok := doc.([]any)
		if !present || !ok {
			return nil, false
		}
		i := s.index
		if i < 0 {
			i += len(a)
		}
		if i < 0 || i >= len(a) {
			return nil, false
		}
		child, ok := set(a[i], true, steps[1:], value)
		if !ok {
			return nil, false
		}
		out := slices.Clone(a)
		out[i] = child
		return out, true
	}
	return nil, false
}

// String renders a scope for debugging.
func (s *Scope) String() string {
	return fmt.Sprintf("input=%s context=%s vars=%s", data.Preview(s.Input, 200), data.Preview(s.Context, 200), data.Preview(toAny(s.Vars), 200))
}

func toAny(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}
