// Package jsonpath evaluates paths as AWS Step Functions does: JSONPath
// rooted at "$" (the state's input), "$$" (the context object) or "$name"
// (a variable set with Assign), and reference paths, the definite subset
// that ResultPath writes to.
//
// It imports only keyflow's states/data and states/failure.
package jsonpath

// Scope is what a path can read.
type Scope struct {
	Input   any            // $
	Context any            // $$
	Vars    map[string]any // $name; nil when no variable is set
}

// Path is a compiled path. It is immutable and safe for concurrent use.
type Path struct{ src string }

// Compile parses a path. The error names the problem, e.g.
// `jsonpath: invalid path "$.a[": unclosed bracket`.
func Compile(src string) (*Path, error) { panic("jsonpath.Compile: not implemented yet") }

// String returns the source text.
func (p *Path) String() string { return p.src }

// Definite reports whether the path selects at most one value (no
// wildcard, filter, slice, union or deep scan).
func (p *Path) Definite() bool { panic("jsonpath.Definite: not implemented yet") }

// Get evaluates the path. A definite path that selects nothing fails with
// a *failure.Error named States.Runtime whose cause reads as AWS's
// ("Invalid path '$.a' : No results for path: $['a']"); an indefinite path
// returns the array of matches (possibly empty).
func (p *Path) Get(s *Scope) (any, error) { panic("jsonpath.Get: not implemented yet") }

// ReferencePath is a compiled ResultPath: "$", "$.a.b", "$['a'][0]".
type ReferencePath struct{ src string }

// CompileReference parses a reference path; wildcards, filters and "$$"
// are refused.
func CompileReference(src string) (*ReferencePath, error) {
	panic("jsonpath.CompileReference: not implemented yet")
}

// String returns the source text.
func (r *ReferencePath) String() string { return r.src }

// Set returns a copy of doc with value placed at the path, sharing every
// part of doc it does not change; missing objects on the way are created.
// A path that runs through a non-object fails with States.ResultPathMatchFailure.
func (r *ReferencePath) Set(doc, value any) (any, error) {
	panic("jsonpath.Set: not implemented yet")
}
