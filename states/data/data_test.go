package data

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		ok     bool
		result any
	}{
		{"null", `null`, true, nil},
		{"true", `true`, true, true},
		{"int", `12`, true, int64(12)},
		{"negative int", `-7`, true, int64(-7)},
		{"max int64", `9223372036854775807`, true, int64(math.MaxInt64)},
		{"min int64", `-9223372036854775808`, true, int64(math.MinInt64)},
		{"beyond int64 is float", `9223372036854775808`, true, float64(9223372036854775808)},
		{"beyond int64 in array", `[18446744073709551616]`, true, []any{float64(18446744073709551616)}},
		{"decimal one stays float", `1.0`, true, float64(1)},
		{"exponent is float", `1e2`, true, float64(100)},
		{"long decimal", `[0.1234567890123456789012]`, true, []any{0.1234567890123456789012}},
		{"string", `"a\u00e9\n"`, true, "aé\n"},
		{"duplicate keys keep last", `{"a":1,"a":2}`, true, map[string]any{"a": int64(2)}},
		{"nested", `{"a":[1,{"b":null}],"c":"d"}`, true, map[string]any{"a": []any{int64(1), map[string]any{"b": nil}}, "c": "d"}},
		{"surrounding space", " [1] \n", true, []any{int64(1)}},
		{"empty", ``, false, nil},
		{"blank", "  \n", false, nil},
		{"trailing text", `[1] x`, false, nil},
		{"two values", `[1] [2]`, false, nil},
		{"out of range", `1e400`, false, nil},
		{"out of range in object", `{"a":-1e999}`, false, nil},
		{"invalid utf-8", "\"\xff\"", false, nil},
		{"invalid utf-8 key", "{\"\xff\":1}", false, nil},
		{"NaN", `NaN`, false, nil},
		{"trailing comma", `[1,]`, false, nil},
		{"leading zero", `01`, false, nil},
		{"raw tab in string", "\"a\tb\"", false, nil},
		{"too deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), false, nil},
		{"deep enough", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.input))
			if (err == nil) != tt.ok {
				t.Fatalf("Parse(%q) error = %v, want ok=%v", tt.input, err, tt.ok)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "data: parse: ") {
					t.Errorf("error %q lacks the package prefix", err)
				}
				return
			}
			if tt.name == "deep enough" {
				return
			}
			if !identical(got, tt.result) {
				t.Errorf("Parse(%q) = %#v, want %#v", tt.input, got, tt.result)
			}
		})
	}
}

// identical compares trees including number types.
func identical(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !identical(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !identical(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestMarshal(t *testing.T) {
	tests := []struct {
		name   string
		input  any
		ok     bool
		result string
	}{
		{"null", nil, true, `null`},
		{"bools", []any{true, false}, true, `[true,false]`},
		{"ints", []any{int64(0), int64(-5), int64(math.MaxInt64), 3}, true, `[0,-5,9223372036854775807,3]`},
		{"integral float keeps .0", 1.0, true, `1.0`},
		{"negative zero", math.Copysign(0, -1), true, `-0.0`},
		{"float", 0.5, true, `0.5`},
		{"small float", 1e-7, true, `1e-7`},
		{"big float", 1e21, true, `1e+21`},
		{"float below e", 1e20, true, `100000000000000000000.0`},
		{"sorted keys", map[string]any{"b": int64(1), "a": int64(2), "é": nil, "A": true}, true, `{"A":true,"a":2,"b":1,"é":null}`},
		{"many keys", map[string]any{"k9": 9, "k1": 1, "k5": 5, "k3": 3, "k7": 7, "k2": 2, "k8": 8, "k4": 4, "k6": 6, "k10": 10, "k11": 11, "k12": 12, "k13": 13, "k14": 14, "k15": 15, "k16": 16, "k17": 17}, true,
			`{"k1":1,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9}`},
		{"escapes", "q\"b\\n\n r\r t\t \b \f \x01 <>&", true, `"q\"b\\n\n r\r t\t \b \f \u0001 <>&"`},
		{"invalid utf-8 replaced", "a\xffb", true, `"a\ufffdb"`},
		{"unicode kept", "日本\u2028", true, "\"日本\u2028\""},
		{"empty containers", map[string]any{"a": []any{}, "o": map[string]any{}}, true, `{"a":[],"o":{}}`},
		{"NaN", math.NaN(), false, ``},
		{"Inf nested", []any{math.Inf(1)}, false, ``},
		{"unsupported type", struct{}{}, false, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Marshal(tt.input)
			if (err == nil) != tt.ok {
				t.Fatalf("Marshal error = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				return
			}
			if string(got) != tt.result {
				t.Errorf("Marshal = %s, want %s", got, tt.result)
			}
			if n := Size(tt.input); n != len(got) {
				t.Errorf("Size = %d, want %d", n, len(got))
			}
			back, err := Parse(got)
			if err != nil {
				t.Fatalf("Parse(Marshal) = %v", err)
			}
			if !Equal(back, tt.input) && tt.name != "invalid utf-8 replaced" {
				t.Errorf("round trip %s gave %#v", got, back)
			}
		})
	}
}

func TestRoundTripKeepsTypes(t *testing.T) {
	for _, in := range []string{`{"a":1.0,"b":1,"c":[2.5,-0.0,1e300,3]}`, `"x"`, `[[],{}]`} {
		v, err := Parse([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := Marshal(v)
		v2, err := Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		if !identical(v, v2) {
			t.Errorf("%s: types changed through %s", in, out)
		}
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b any
		ok   bool
	}{
		{"int float", int64(1), 1.0, true},
		{"float int", 2.0, int64(2), true},
		{"int int", int64(3), 3, true},
		{"int fraction", int64(1), 1.5, false},
		{"big int vs rounded float", int64(math.MaxInt64), float64(math.MaxInt64), false},
		{"nil nil", nil, nil, true},
		{"nil false", nil, false, false},
		{"string", "a", "a", true},
		{"string number", "1", int64(1), false},
		{"arrays", []any{int64(1), "x"}, []any{1.0, "x"}, true},
		{"array order", []any{int64(1), int64(2)}, []any{int64(2), int64(1)}, false},
		{"array length", []any{int64(1)}, []any{int64(1), int64(1)}, false},
		{"maps", map[string]any{"a": int64(1)}, map[string]any{"a": 1.0}, true},
		{"map missing key", map[string]any{"a": nil}, map[string]any{"b": nil}, false},
		{"map vs array", map[string]any{}, []any{}, false},
		{"unknown type", struct{}{}, struct{}{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Equal(tt.a, tt.b); got != tt.ok {
				t.Errorf("Equal = %v, want %v", got, tt.ok)
			}
			if got := Equal(tt.b, tt.a); got != tt.ok {
				t.Errorf("Equal reversed = %v, want %v", got, tt.ok)
			}
		})
	}
}

func TestNumberInt(t *testing.T) {
	if f, ok := Number(int64(3)); !ok || f != 3 {
		t.Error("Number(int64)")
	}
	if f, ok := Number(2.5); !ok || f != 2.5 {
		t.Error("Number(float64)")
	}
	if _, ok := Number("3"); ok {
		t.Error("Number(string)")
	}
	if i, ok := Int(4.0); !ok || i != 4 {
		t.Error("Int(4.0)")
	}
	if _, ok := Int(4.5); ok {
		t.Error("Int(4.5)")
	}
	if _, ok := Int(1e30); ok {
		t.Error("Int(1e30)")
	}
}

type sample struct {
	Name  string            `json:"name"`
	Count int               `json:"count"`
	Tags  []string          `json:"tags,omitempty"`
	Meta  map[string]string `json:"meta"`
	skip  int
}

func TestFromGo(t *testing.T) {
	var decoded any
	if err := json.Unmarshal([]byte(`{"a":1,"b":1.5,"c":[true,null,"x"],"d":1e3}`), &decoded); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		input  any
		ok     bool
		result any
	}{
		{"encoding/json output", decoded, true, map[string]any{"a": int64(1), "b": 1.5, "c": []any{true, nil, "x"}, "d": int64(1000)}},
		{"ints", []any{1, int8(2), int16(3), int32(4), uint8(5), uint16(6), uint32(7), uint(8), uint64(9)}, true,
			[]any{int64(1), int64(2), int64(3), int64(4), int64(5), int64(6), int64(7), int64(8), int64(9)}},
		{"huge uint", uint64(math.MaxUint64), true, float64(math.MaxUint64)},
		{"float32", float32(0.5), true, 0.5},
		{"json.Number int", json.Number("42"), true, int64(42)},
		{"json.Number float", json.Number("4.5"), true, 4.5},
		{"json.RawMessage", json.RawMessage(`{"x":[1]}`), true, map[string]any{"x": []any{int64(1)}}},
		{"struct", sample{Name: "n", Count: 2, Meta: map[string]string{"k": "v"}, skip: 1}, true,
			map[string]any{"name": "n", "count": int64(2), "meta": map[string]any{"k": "v"}}},
		{"pointer to struct", &sample{Name: "p"}, true, map[string]any{"name": "p", "count": int64(0), "meta": nil}},
		{"typed slice", []int{1, 2}, true, []any{int64(1), int64(2)}},
		{"string slice", []string{"a"}, true, []any{"a"}},
		{"string map", map[string]string{"a": "b"}, true, map[string]any{"a": "b"}},
		{"NaN", math.NaN(), false, nil},
		{"channel", make(chan int), false, nil},
		{"bad utf-8", "\xff", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromGo(tt.input)
			if (err == nil) != tt.ok {
				t.Fatalf("FromGo error = %v, want ok=%v", err, tt.ok)
			}
			if err == nil && !identical(got, tt.result) {
				t.Errorf("FromGo = %#v, want %#v", got, tt.result)
			}
		})
	}
}

func TestFromGoDoesNotMutate(t *testing.T) {
	in := map[string]any{"a": 1.0, "b": []any{2.0}}
	if _, err := FromGo(in); err != nil {
		t.Fatal(err)
	}
	if _, ok := in["a"].(float64); !ok {
		t.Error("FromGo changed its argument")
	}
	if _, ok := in["b"].([]any)[0].(float64); !ok {
		t.Error("FromGo changed a nested array of its argument")
	}
}

func TestFromGoCycle(t *testing.T) {
	m := map[string]any{}
	m["self"] = m
	if _, err := FromGo(m); err == nil {
		t.Error("FromGo accepted a cycle")
	}
}

func TestQuotePreview(t *testing.T) {
	if got := Quote("abcdef", 3); got != `"abc"...` {
		t.Errorf("Quote = %s", got)
	}
	if got := Quote("ab", 3); got != `"ab"` {
		t.Errorf("Quote = %s", got)
	}
	if got := Quote("日本", 4); got != `"日"...` {
		t.Errorf("Quote cut a rune: %s", got)
	}
	if got := Preview(map[string]any{"a": "bcdef"}, 6); got != `{"a":"...` {
		t.Errorf("Preview = %s", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x",null,true]}`, `9223372036854775808`, `1.0`, `"\ud800"`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Parse(b)
		if err != nil {
			return
		}
		out, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(Parse(%q)): %v", b, err)
		}
		if Size(v) != len(out) {
			t.Fatalf("Size %d != %d for %q", Size(v), len(out), b)
		}
		v2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal) %q: %v", out, err)
		}
		if !identical(v, v2) {
			t.Fatalf("round trip changed %q -> %q", b, out)
		}
	})
}

func BenchmarkParse1KB(b *testing.B) {
	doc := []byte(benchDoc)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal1KB(b *testing.B) {
	v, _ := Parse([]byte(benchDoc))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSize1KB(b *testing.B) {
	v, _ := Parse([]byte(benchDoc))
	b.ReportAllocs()
	for b.Loop() {
		Size(v)
	}
}

const benchDoc = `{"user":{"name":"alice","arn":"arn:aws:iam::123456789012:user/alice","groups":["dev","ops"],"keys":[{"id":"AKIAEXAMPLE000000001","created":"2026-01-02T03:04:05Z","status":"Active","lastUsed":"2026-03-01T00:00:00Z"},{"id":"AKIAEXAMPLE000000002","created":"2026-02-02T03:04:05Z","status":"Inactive","lastUsed":null}]},"policy":{"rotationDays":45,"inactiveDays":60,"bufferDays":90,"dryRun":false,"exempt":["breakglass","ci-bot"]},"account":{"id":"123456789012","region":"eu-west-1","org":"o-abcdef1234"},"notify":{"topic":"arn:aws:sns:eu-west-1:123456789012:keyflow","subject":"Access key rotation","channels":["email","slack"]},"history":[{"step":"inventory","at":"2026-03-01T00:00:00Z","ok":true},{"step":"create","at":"2026-03-01T00:00:01Z","ok":true},{"step":"store","at":"2026-03-01T00:00:02Z","ok":true}],"counters":{"a":1,"b":2,"c":3.5,"d":-4},"note":"this document is about one kilobyte of typical state data for benchmarks"}`
