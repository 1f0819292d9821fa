package payload

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/jsonpath"
)

type testFile struct {
	Input   json.RawMessage
	Context json.RawMessage
	Vars    json.RawMessage
	Cases   []struct {
		Name     string
		Template json.RawMessage
		OK       bool
		Result   json.RawMessage
		Error    string
		Cause    string
		Compile  string
	}
}

func parse(t testing.TB, raw json.RawMessage) any {
	t.Helper()
	v, err := data.Parse(raw)
	if err != nil {
		t.Fatalf("bad test value %s: %v", raw, err)
	}
	return v
}

func loadCases(t testing.TB) (*testFile, *jsonpath.Scope) {
	t.Helper()
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var f testFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return &f, &jsonpath.Scope{Input: parse(t, f.Input), Context: parse(t, f.Context), Vars: parse(t, f.Vars).(map[string]any)}
}

func TestEval(t *testing.T) {
	f, scope := loadCases(t)
	before := data.String(scope.Input)
	for _, tt := range f.Cases {
		t.Run(tt.Name, func(t *testing.T) {
			tmpl := parse(t, tt.Template)
			tmplBefore := data.String(tmpl)
			c, err := Compile(tmpl)
			if tt.Compile != "" {
				if err == nil || err.Error() != tt.Compile {
					t.Fatalf("Compile error = %v\n            want %s", err, tt.Compile)
				}
				var pe *Error
				if !errors.As(err, &pe) || !strings.HasPrefix(pe.Pointer, "/") {
					t.Errorf("error %T has no pointer", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, err := c.Eval(scope)
			if (err == nil) != tt.OK {
				t.Fatalf("Eval = %s, %v; want ok=%v", data.String(got), err, tt.OK)
			}
			if data.String(tmpl) != tmplBefore {
				t.Error("Eval changed the template")
			}
			if err != nil {
				var fe *failure.Error
				if !errors.As(err, &fe) || fe.Name != tt.Error {
					t.Fatalf("error = %v, want name %s", err, tt.Error)
				}
				if tt.Cause != "" && fe.Cause != tt.Cause {
					t.Errorf("cause = %s\n want %s", fe.Cause, tt.Cause)
				}
				return
			}
			if want := parse(t, tt.Result); !data.Equal(got, want) {
				t.Errorf("Eval = %s, want %s", data.String(got), data.String(want))
			}
		})
	}
	if data.String(scope.Input) != before {
		t.Error("Eval changed the input")
	}
}

func TestStaticSharing(t *testing.T) {
	inner := map[string]any{"deep": []any{int64(1)}}
	tmpl := map[string]any{"static": inner, "v.$": "$.n"}
	c := MustCompile(tmpl)
	got, err := c.Eval(&jsonpath.Scope{Input: map[string]any{"n": int64(1)}})
	if err != nil {
		t.Fatal(err)
	}
	inner["\x00probe"] = true
	if _, ok := got.(map[string]any)["static"].(map[string]any)["\x00probe"]; !ok {
		t.Error("static part was copied instead of shared")
	}
	delete(inner, "\x00probe")
	s := MustCompile(map[string]any{"a": int64(1)})
	if !s.IsStatic() || c.IsStatic() {
		t.Error("IsStatic")
	}
	if v, _ := s.Eval(nil); !data.Equal(v, map[string]any{"a": int64(1)}) {
		t.Error("static Eval")
	}
}

func TestConcurrentEval(t *testing.T) {
	_, scope := loadCases(t)
	c := MustCompile(map[string]any{
		"name.$":  "$.user.name",
		"next.$":  "States.MathAdd($.n, 1)",
		"ids.$":   "$.user.keys[*].id",
		"token.$": "$$.Task.Token",
		"nested":  map[string]any{"who.$": "$who.name", "k": "v"},
	})
	want := map[string]any{"name": "alice", "next": int64(42), "ids": []any{"K1", "K2"}, "token": "tok", "nested": map[string]any{"who": "bob", "k": "v"}}
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 200 {
				got, err := c.Eval(scope)
				if err != nil || !data.Equal(got, want) {
					t.Errorf("Eval = %s, %v", data.String(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzPayload(f *testing.F) {
	for _, s := range []string{
		`{"a.$":"$.user.name","b":[{"c.$":"States.Format('{}', $.n)"}]}`,
		`{"x.$":3}`, `{"x.$":"$$.Task.Token","y.$":"$who"}`, `[{"v.$":"$.list[0:2]"}]`, `"s"`,
		`{"x.$":"States.ArrayRange(1, $.n, 1)"}`, `{"a":{"b":{"c.$":"$..id"}}}`,
	} {
		f.Add([]byte(s))
	}
	_, scope := loadCases(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := data.Parse(b)
		if err != nil {
			return
		}
		c, err := Compile(v)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "payload: /") {
				t.Fatalf("error without prefix and pointer: %v", err)
			}
			return
		}
		if _, err := c.Eval(scope); err != nil {
			var fe *failure.Error
			if !errors.As(err, &fe) {
				t.Fatalf("Eval error %T: %v", err, err)
			}
		}
	})
}

func BenchmarkEval(b *testing.B) {
	raw, err := os.ReadFile("../data/testdata/bench1k.json")
	if err != nil {
		b.Fatal(err)
	}
	s := &jsonpath.Scope{Input: parse(b, raw), Context: map[string]any{"Execution": map[string]any{"Id": "e"}}}
	c := MustCompile(map[string]any{
		"user.$":    "$.user.name",
		"key.$":     "$.user.keys[0].id",
		"policy.$":  "$.policy",
		"execution": map[string]any{"id.$": "$$.Execution.Id"},
		"fixed":     "value",
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Eval(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvalIntrinsic(b *testing.B) {
	s := &jsonpath.Scope{Input: map[string]any{"n": int64(1)}}
	c := MustCompile(map[string]any{"n.$": "States.MathAdd($.n, 1)"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Eval(s); err != nil {
			b.Fatal(err)
		}
	}
}
