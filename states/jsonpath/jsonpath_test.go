package jsonpath

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
)

// load reads a testdata file and converts its numbers into a value tree.
func load(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func tree(t testing.TB, raw json.RawMessage) any {
	t.Helper()
	if raw == nil {
		return nil
	}
	v, err := data.Parse(raw)
	if err != nil {
		t.Fatalf("bad test value %s: %v", raw, err)
	}
	return v
}

func TestGet(t *testing.T) {
	var file struct {
		Input   json.RawMessage
		Context json.RawMessage
		Vars    json.RawMessage
		Cases   []struct {
			Name     string
			Path     string
			OK       bool
			Definite bool
			Result   json.RawMessage
			Cause    string
		}
	}
	load(t, "get.json", &file)
	input := tree(t, file.Input)
	scope := &Scope{Input: input, Context: tree(t, file.Context), Vars: tree(t, file.Vars).(map[string]any)}
	before := data.String(input)
	for _, tt := range file.Cases {
		t.Run(tt.Name, func(t *testing.T) {
			p, err := Compile(tt.Path)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.Path, err)
			}
			if p.String() != tt.Path {
				t.Errorf("String() = %q", p.String())
			}
			got, err := p.Get(scope)
			if (err == nil) != tt.OK {
				t.Fatalf("Get(%q) error = %v, want ok=%v", tt.Path, err, tt.OK)
			}
			if err != nil {
				var fe *failure.Error
				if !errors.As(err, &fe) || fe.Name != failure.Runtime {
					t.Fatalf("error %v is not a States.Runtime failure", err)
				}
				if tt.Cause != "" && fe.Cause != tt.Cause {
					t.Errorf("cause = %q\n want %q", fe.Cause, tt.Cause)
				}
				return
			}
			if p.Definite() != tt.Definite {
				t.Errorf("Definite() = %v, want %v", p.Definite(), tt.Definite)
			}
			want := tree(t, tt.Result)
			if !data.Equal(got, want) {
				t.Errorf("Get(%q) = %s, want %s", tt.Path, data.String(got), data.String(want))
			}
		})
	}
	if after := data.String(input); after != before {
		t.Errorf("Get changed its input:\n%s\n%s", before, after)
	}
}

func TestCompileErrors(t *testing.T) {
	var cases []struct {
		Name   string
		Path   string
		OK     bool
		Error  string
		Prefix string
	}
	load(t, "compile_errors.json", &cases)
	cases = append(cases, struct {
		Name   string
		Path   string
		OK     bool
		Error  string
		Prefix string
	}{Name: "invalid utf-8", Path: "$.\xff", Error: `jsonpath: invalid path "$.\xff": invalid UTF-8`},
		struct {
			Name   string
			Path   string
			OK     bool
			Error  string
			Prefix string
		}{Name: "too long", Path: "$." + strings.Repeat("a", MaxLength), Prefix: "jsonpath: invalid path"})
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			_, err := Compile(tt.Path)
			if tt.OK {
				if err != nil {
					t.Fatalf("Compile(%q): %v", tt.Path, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Compile(%q) succeeded", tt.Path)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("error is %T, not *SyntaxError", err)
			}
			switch {
			case tt.Prefix != "":
				if !strings.HasPrefix(err.Error(), tt.Prefix) {
					t.Errorf("error = %q, want prefix %q", err, tt.Prefix)
				}
			case err.Error() != tt.Error:
				t.Errorf("error = %q\n  want %q", err, tt.Error)
			}
		})
	}
}

func TestSet(t *testing.T) {
	var file struct {
		Input json.RawMessage
		Cases []struct {
			Name   string
			Path   string
			Value  json.RawMessage
			OK     bool
			Result json.RawMessage
			Cause  string
		}
	}
	load(t, "reference.json", &file)
	for _, tt := range file.Cases {
		t.Run(tt.Name, func(t *testing.T) {
			input := tree(t, file.Input)
			before := data.String(input)
			r, err := CompileReference(tt.Path)
			if err != nil {
				t.Fatalf("CompileReference(%q): %v", tt.Path, err)
			}
			got, err := r.Set(input, tree(t, tt.Value))
			if after := data.String(input); after != before {
				t.Fatalf("Set changed its input:\n%s\n%s", before, after)
			}
			if (err == nil) != tt.OK {
				t.Fatalf("Set error = %v, want ok=%v", err, tt.OK)
			}
			if err != nil {
				var fe *failure.Error
				if !errors.As(err, &fe) || fe.Name != failure.ResultPathMatchFailure {
					t.Fatalf("error %v is not States.ResultPathMatchFailure", err)
				}
				if tt.Cause != "" && fe.Cause != tt.Cause {
					t.Errorf("cause = %q\n want %q", fe.Cause, tt.Cause)
				}
				return
			}
			if want := tree(t, tt.Result); !data.Equal(got, want) {
				t.Errorf("Set = %s, want %s", data.String(got), data.String(want))
			}
		})
	}
}

func TestSetSharesStructure(t *testing.T) {
	in := map[string]any{
		"keep":   map[string]any{"big": []any{int64(1), int64(2)}},
		"change": map[string]any{"x": int64(1), "other": map[string]any{}},
	}
	out, err := MustCompileReference("$.change.y").Set(in, "v")
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	if !sameMap(m["keep"], in["keep"]) {
		t.Error("untouched sibling was copied")
	}
	ch := m["change"].(map[string]any)
	if sameMap(ch, in["change"]) {
		t.Error("changed object was not copied")
	}
	if !sameMap(ch["other"], in["change"].(map[string]any)["other"]) {
		t.Error("untouched grandchild was copied")
	}
	if _, ok := in["change"].(map[string]any)["y"]; ok {
		t.Error("input was mutated")
	}
}

func sameMap(a, b any) bool {
	ma, ok1 := a.(map[string]any)
	mb, ok2 := b.(map[string]any)
	if !ok1 || !ok2 {
		return false
	}
	ma["\x00probe"] = true
	_, same := mb["\x00probe"]
	delete(ma, "\x00probe")
	return same
}

func TestCompileReferenceErrors(t *testing.T) {
	tests := []struct {
		name, path, error string
	}{
		{"context", "$$.a", `jsonpath: invalid reference path "$$.a": a reference path cannot write to the context object "$$"`},
		{"variable", "$v.a", `jsonpath: invalid reference path "$v.a": a reference path cannot write to a variable`},
		{"wildcard", "$.a[*]", `jsonpath: invalid reference path "$.a[*]": a reference path selects one node: no wildcard, filter, slice, union or deep scan`},
		{"filter", "$.a[?(@.x)]", `jsonpath: invalid reference path "$.a[?(@.x)]": a reference path selects one node: no wildcard, filter, slice, union or deep scan`},
		{"deep scan", "$..a", `jsonpath: invalid reference path "$..a": a reference path selects one node: no wildcard, filter, slice, union or deep scan`},
		{"slice", "$.a[1:]", `jsonpath: invalid reference path "$.a[1:]": a reference path selects one node: no wildcard, filter, slice, union or deep scan`},
		{"length", "$.a.length()", `jsonpath: invalid reference path "$.a.length()": a reference path cannot call length()`},
		{"syntax", "$.a[", `jsonpath: invalid reference path "$.a[": unclosed bracket`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileReference(tt.path)
			if err == nil || err.Error() != tt.error {
				t.Errorf("error = %v\n  want %s", err, tt.error)
			}
		})
	}
}

func TestNilScopeAndRootInfo(t *testing.T) {
	p := MustCompile("$")
	if v, err := p.Get(nil); err != nil || v != nil {
		t.Errorf("Get(nil) = %v, %v", v, err)
	}
	if p.Root() != "$" || MustCompile("$$.a").Root() != "$$" || MustCompile("$x.y").Root() != "$x" {
		t.Error("Root()")
	}
	if name, ok := MustCompile("$x.y").Var(); !ok || name != "x" {
		t.Error("Var()")
	}
	r := MustCompileReference("$.a[0]")
	if r.IsRoot() || !MustCompileReference("$").IsRoot() {
		t.Error("IsRoot()")
	}
	if v, ok := r.Get(map[string]any{"a": []any{"z"}}); !ok || v != "z" {
		t.Error("ReferencePath.Get")
	}
}

func TestConcurrentGet(t *testing.T) {
	p := MustCompile("$.arr[?(@.x >= $.lim)].x")
	q := MustCompile("$.a.b[1]")
	doc := map[string]any{"lim": int64(2), "arr": []any{map[string]any{"x": int64(1)}, map[string]any{"x": int64(3)}}, "a": map[string]any{"b": []any{"p", "q"}}}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				v, err := p.Get(&Scope{Input: doc})
				if err != nil || !data.Equal(v, []any{int64(3)}) {
					t.Errorf("Get = %v, %v", v, err)
					return
				}
				if v, _ := q.Get(&Scope{Input: doc}); v != "q" {
					t.Errorf("Get = %v", v)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzCompilePath(f *testing.F) {
	for _, s := range []string{"$", "$.a.b[0]", "$..x", "$['a','b']", "$.a[?(@.x > 1)]", "$$.Execution.Id", "$v.f", "$.a[1:2:-1]", "$.a.length()", "$.arr[?(@.y =~ /a.*/)]", "$['q\\'k']"} {
		f.Add(s)
	}
	doc := map[string]any{"a": map[string]any{"b": []any{int64(1), "x", nil, map[string]any{"x": 2.5}}}, "arr": []any{map[string]any{"x": int64(1), "y": "a"}}}
	scope := &Scope{Input: doc, Context: doc, Vars: map[string]any{"v": doc}}
	f.Fuzz(func(t *testing.T, src string) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			fuzzPath(t, src, scope, doc)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("path %q took more than 5s", src)
		}
	})
}

func fuzzPath(t *testing.T, src string, scope *Scope, doc any) {
	{
		p, err := Compile(src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "jsonpath: ") {
				t.Errorf("error without prefix: %v", err)
			}
			return
		}
		v, err := p.Get(scope)
		if err == nil && !p.Definite() {
			if _, ok := v.([]any); !ok {
				t.Errorf("indefinite %q gave %T", src, v)
			}
		}
		if r, err := CompileReference(src); err == nil {
			if _, err := r.Set(doc, "v"); err != nil {
				var fe *failure.Error
				if !errors.As(err, &fe) {
					t.Errorf("Set error %T", err)
				}
			}
		}
	}
}

func benchDoc(b *testing.B) any {
	raw, err := os.ReadFile("../data/testdata/bench1k.json")
	if err != nil {
		b.Fatal(err)
	}
	v, err := data.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

func BenchmarkGetDefinite(b *testing.B) {
	s := &Scope{Input: benchDoc(b)}
	p := MustCompile("$.user.keys[1].status")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Get(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetFilter(b *testing.B) {
	s := &Scope{Input: benchDoc(b)}
	p := MustCompile("$.user.keys[?(@.status == 'Active')].id")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Get(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	doc := benchDoc(b)
	r := MustCompileReference("$.result.value")
	v := map[string]any{"ok": true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Set(doc, v); err != nil {
			b.Fatal(err)
		}
	}
}
