package intrinsic

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/jsonpath"
)

func loadScope(t testing.TB) *jsonpath.Scope {
	t.Helper()
	b, err := os.ReadFile("testdata/scope.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := data.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	return &jsonpath.Scope{Input: m["input"], Context: m["context"], Vars: m["vars"].(map[string]any)}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestEval(t *testing.T) {
	var cases []struct {
		Name       string
		Call       string
		OK         bool
		Result     json.RawMessage
		SkipResult bool `json:"skip_result"`
		Count      int
		Range      []int64
		UUID       bool
		Error      string
		Cause      string
	}
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	scope := loadScope(t)
	before := data.String(scope.Input)
	seen := map[string]bool{}
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			c, err := Compile(tt.Call)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.Call, err)
			}
			seen[c.Name()] = true
			got, err := c.Eval(scope)
			if (err == nil) != tt.OK {
				t.Fatalf("Eval(%q) = %v, %v; want ok=%v", tt.Call, data.String(got), err, tt.OK)
			}
			if err != nil {
				var fe *failure.Error
				if !errors.As(err, &fe) {
					t.Fatalf("error %T is not a *failure.Error", err)
				}
				if fe.Name != tt.Error {
					t.Errorf("error name = %s, want %s", fe.Name, tt.Error)
				}
				if tt.Cause != "" && fe.Cause != tt.Cause {
					t.Errorf("cause = %q\n  want %q", fe.Cause, tt.Cause)
				}
				return
			}
			switch {
			case tt.UUID:
				if s, _ := got.(string); !uuidV4.MatchString(s) {
					t.Errorf("UUID = %v", got)
				}
			case tt.Range != nil:
				n, ok := got.(int64)
				if !ok || n < tt.Range[0] || n > tt.Range[1] {
					t.Errorf("got %#v, want an integer in %v", got, tt.Range)
				}
			case tt.Count > 0:
				if a, _ := got.([]any); len(a) != tt.Count {
					t.Errorf("got %d items, want %d", len(a), tt.Count)
				}
			case tt.SkipResult:
			default:
				want, err := data.Parse(tt.Result)
				if err != nil {
					t.Fatal(err)
				}
				if !data.Equal(got, want) {
					t.Errorf("Eval(%q) = %s, want %s", tt.Call, data.String(got), data.String(want))
				}
			}
		})
	}
	if after := data.String(scope.Input); after != before {
		t.Errorf("Eval changed the input")
	}
	for name := range functions {
		if !seen[name] {
			t.Errorf("no case for %s", name)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, call, error string
	}{
		{"unknown function", "States.Nope(1)", `intrinsic: invalid call "States.Nope(1)": unknown function States.Nope`},
		{"not a call", "Format('x')", `intrinsic: invalid call "Format('x')": expected a call to a States. function`},
		{"missing name", "States.()", `intrinsic: invalid call "States.()": missing function name`},
		{"missing paren", "States.UUID", `intrinsic: invalid call "States.UUID": expected '(' after States.UUID`},
		{"unclosed", "States.Array(1, 2", `intrinsic: invalid call "States.Array(1, 2": unclosed call to States.Array`},
		{"trailing text", "States.UUID() x", `intrinsic: invalid call "States.UUID() x": unexpected text after the call`},
		{"too few", "States.ArrayRange(1, 2)", `intrinsic: invalid call "States.ArrayRange(1, 2)": States.ArrayRange takes 3 arguments, not 2`},
		{"too many", "States.UUID(1)", `intrinsic: invalid call "States.UUID(1)": States.UUID takes 0 arguments, not 1`},
		{"random arity", "States.MathRandom(1)", `intrinsic: invalid call "States.MathRandom(1)": States.MathRandom takes 2 or 3 arguments, not 1`},
		{"format arity", "States.Format()", `intrinsic: invalid call "States.Format()": States.Format takes at least 1 argument, not 0`},
		{"format count", "States.Format('{} {}', 1)", `intrinsic: invalid call "States.Format('{} {}', 1)": States.Format has 2 placeholders {} but 1 values`},
		{"format escaped count", "States.Format('\\{} {}', 1, 2)", `intrinsic: invalid call "States.Format('\\{} {}', 1, 2)": States.Format has 1 placeholders {} but 2 values`},
		{"literal type", "States.ArrayLength('x')", `intrinsic: invalid call "States.ArrayLength('x')": States.ArrayLength: argument 1 must be an array, not string "x"`},
		{"deep merge", "States.JsonMerge($.a, $.b, true)", `intrinsic: invalid call "States.JsonMerge($.a, $.b, true)": States.JsonMerge supports only a shallow merge: the third argument must be false`},
		{"folded failure", "States.ArrayRange(1, 2000, 1)", `intrinsic: invalid call "States.ArrayRange(1, 2000, 1)": Invalid arguments in States.ArrayRange: the range has 2000 items; at most 1000 are allowed`},
		{"bad escape", "States.Format('\\n')", `intrinsic: invalid call "States.Format('\\n')": unknown escape \n (use \' \{ \} or \\)`},
		{"unterminated string", "States.Format('abc)", `intrinsic: invalid call "States.Format('abc)": unterminated string`},
		{"bad path", "States.Array($.a[)", `intrinsic: invalid call "States.Array($.a[)": jsonpath: invalid path "$.a[)": unexpected ')' in brackets`},
		{"bad number", "States.Array(1.2.3)", `intrinsic: invalid call "States.Array(1.2.3)": bad number "1.2.3"`},
		{"bare word", "States.Array(abc)", `intrinsic: invalid call "States.Array(abc)": unexpected 'a': an argument is a 'string', a number, true, false, null, a path or a call`},
		{"double quotes", `States.Array("a")`, `intrinsic: invalid call "States.Array(\"a\")": unexpected '"': an argument is a 'string', a number, true, false, null, a path or a call`},
		{"empty argument", "States.Array(1,,2)", `intrinsic: invalid call "States.Array(1,,2)": unexpected ',': an argument is a 'string', a number, true, false, null, a path or a call`},
		{"too deep", strings.Repeat("States.Array(", 11) + strings.Repeat(")", 11), `intrinsic: invalid call "States.Array(States.Array(States.Array(States.Array(States.Array"...: more than 10 nested calls`},
		{"empty", "", `intrinsic: invalid call "": expected a call to a States. function`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.call)
			if err == nil {
				t.Fatalf("Compile(%q) succeeded", tt.call)
			}
			if err.Error() != tt.error {
				t.Errorf("error = %s\n  want %s", err, tt.error)
			}
		})
	}
	if _, err := Compile(strings.Repeat("States.Array(", 10) + strings.Repeat(")", 10)); err != nil {
		t.Errorf("10 nested calls refused: %v", err)
	}
}

func TestIsCall(t *testing.T) {
	for s, want := range map[string]bool{
		"States.Format('x')": true,
		" States.UUID() ":    true,
		"States.Array (1)":   true,
		"$.a":                false,
		"States.":            false,
		"States.Format":      false,
		"States.Format('x'":  false,
		"Format('x')":        false,
		"States.Nope()":      true,
		"States.$x()":        false,
		"":                   false,
	} {
		if got := IsCall(s); got != want {
			t.Errorf("IsCall(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestConstantFolding(t *testing.T) {
	c := MustCompile("States.Array(States.ArrayRange(1, 3, 1), 'x')")
	if !c.root.constant {
		t.Error("an all-literal call was not folded")
	}
	u := MustCompile("States.Array(States.UUID())")
	a, _ := u.Eval(nil)
	b, _ := u.Eval(nil)
	if data.Equal(a, b) {
		t.Error("States.UUID was folded")
	}
	r1, _ := MustCompile("States.MathRandom(1, 1000000, 42)").Eval(nil)
	r2, _ := MustCompile("States.MathRandom(1, 1000000, $.s)").Eval(&jsonpath.Scope{Input: map[string]any{"s": int64(42)}})
	if r1 != r2 {
		t.Errorf("seeded MathRandom differs: %v %v", r1, r2)
	}
}

func TestConcurrentEval(t *testing.T) {
	scope := loadScope(t)
	c := MustCompile("States.Format('{}-{}', States.ArrayGetItem($.list, 2), States.MathAdd($count, 1))")
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 300 {
				v, err := c.Eval(scope)
				if err != nil || v != "3-8" {
					t.Errorf("Eval = %v, %v", v, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzIntrinsic(f *testing.F) {
	for _, s := range []string{
		"States.Format('Hello, {}!', $.name)", "States.ArrayRange(1, 9, 2)", "States.StringToJson($.json)",
		"States.Hash($.name, 'SHA-256')", "States.ArrayPartition($.list, 2)", "States.JsonMerge($.obj, $.obj2, false)",
		"States.MathRandom(1, 10, 3)", "States.StringSplit($.csv, ',')", "States.Base64Decode($.b64)",
		"States.ArrayGetItem($.list[?(@ > 2)], 0)", "States.Format('\\{\\}', $$.Execution.Id, $who)", "States.UUID()",
	} {
		f.Add(s)
	}
	scope := loadScope(f)
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Compile(src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "intrinsic: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		_ = IsCall(src)
		if _, err := c.Eval(scope); err != nil {
			var fe *failure.Error
			if !errors.As(err, &fe) {
				t.Fatalf("Eval error %T: %v", err, err)
			}
		}
	})
}

func BenchmarkMathAdd(b *testing.B) {
	c := MustCompile("States.MathAdd($.n, 1)")
	s := &jsonpath.Scope{Input: map[string]any{"n": int64(41)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Eval(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	c := MustCompile("States.Format('arn:aws:iam::{}:user/{}', $.account, $.user)")
	s := &jsonpath.Scope{Input: map[string]any{"account": "123456789012", "user": "alice"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Eval(s); err != nil {
			b.Fatal(err)
		}
	}
}
