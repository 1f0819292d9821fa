package intrinsic

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/keyflow/keyflow/states/data"
)

// Limits that AWS documents for the intrinsic functions.
const (
	MaxArrayRange   = 1000  // States.ArrayRange: items in the result
	MaxBase64Input  = 10000 // States.Base64Encode / Base64Decode: characters of input
	MaxHashInput    = 10000 // States.Hash: characters of input
	minMathArgument = math.MinInt32
	maxMathArgument = math.MaxInt32
)

// Argument types.
const (
	tAny     = "any"
	tString  = "string"
	tInt     = "integer"
	tNumber  = "number"
	tArray   = "array"
	tObject  = "object"
	tBool    = "boolean"
	tScalar  = "string, number, boolean or null"
	variadic = -1
)

type function struct {
	name             string
	minArgs, maxArgs int      // maxArgs == variadic: no limit
	types            []string // per position; the last one repeats
	run              func(fn *function, args []any) (any, error)
	// impure reports whether a call with these arguments gives a new
	// value on every run (so it cannot be folded at compile time).
	impure func(args []arg) bool
	// check reports a problem with the arguments at compile time.
	check func(args []arg) string
}

func (fn *function) arity() string {
	switch {
	case fn.maxArgs == variadic && fn.minArgs == 0:
		return "any number of arguments"
	case fn.maxArgs == variadic:
		return "at least " + plural(fn.minArgs)
	case fn.minArgs == fn.maxArgs:
		return plural(fn.minArgs)
	}
	return strconv.Itoa(fn.minArgs) + " or " + plural(fn.maxArgs)
}

func plural(n int) string {
	if n == 1 {
		return "1 argument"
	}
	return strconv.Itoa(n) + " arguments"
}

func (fn *function) typeOf(i int) string {
	if len(fn.types) == 0 {
		return tAny
	}
	if i >= len(fn.types) {
		return fn.types[len(fn.types)-1]
	}
	return fn.types[i]
}

// checkType reports whether v is of type t.
func checkType(t string, v any) bool {
	switch t {
	case tAny:
		return true
	case tString:
		_, ok := v.(string)
		return ok
	case tInt:
		_, ok := data.Int(v)
		return ok
	case tNumber:
		_, ok := data.Number(v)
		return ok
	case tArray:
		_, ok := v.([]any)
		return ok
	case tObject:
		_, ok := v.(map[string]any)
		return ok
	case tBool:
		_, ok := v.(bool)
		return ok
	case tScalar:
		switch v.(type) {
		case nil, bool, string, int64, int, float64:
			return true
		}
	}
	return false
}

func (fn *function) typeMsg(i int, v any) string {
	return fmt.Sprintf("argument %d must be %s, not %s %s", i+1, article(fn.typeOf(i)), typeName(v), preview(v))
}

func article(t string) string {
	switch t {
	case tAny:
		return "any value"
	case tInt, tArray, tObject:
		return "an " + t
	}
	return "a " + t
}

var functions = map[string]*function{}

// register adds a function; its check starts with the types of literal
// arguments.
func register(fn *function) {
	check := fn.check
	fn.check = func(args []arg) string {
		for i := range args {
			if args[i].kind == argLiteral && !checkType(fn.typeOf(i), args[i].value) {
				return fn.name + ": " + fn.typeMsg(i, args[i].value)
			}
		}
		if check != nil {
			return check(args)
		}
		return ""
	}
	functions[fn.name] = fn
}

func init() {
	register(&function{name: "States.Format", minArgs: 1, maxArgs: variadic, types: []string{tString, tScalar}, run: runFormat, check: checkFormat})
	register(&function{name: "States.StringToJson", minArgs: 1, maxArgs: 1, types: []string{tString}, run: runStringToJSON})
	register(&function{name: "States.JsonToString", minArgs: 1, maxArgs: 1, types: []string{tAny}, run: runJSONToString})
	register(&function{name: "States.Array", minArgs: 0, maxArgs: variadic, types: []string{tAny}, run: runArray})
	register(&function{name: "States.ArrayPartition", minArgs: 2, maxArgs: 2, types: []string{tArray, tInt}, run: runArrayPartition})
	register(&function{name: "States.ArrayContains", minArgs: 2, maxArgs: 2, types: []string{tArray, tAny}, run: runArrayContains})
	register(&function{name: "States.ArrayRange", minArgs: 3, maxArgs: 3, types: []string{tInt, tInt, tInt}, run: runArrayRange})
	register(&function{name: "States.ArrayGetItem", minArgs: 2, maxArgs: 2, types: []string{tArray, tInt}, run: runArrayGetItem})
	register(&function{name: "States.ArrayLength", minArgs: 1, maxArgs: 1, types: []string{tArray}, run: runArrayLength})
	register(&function{name: "States.ArrayUnique", minArgs: 1, maxArgs: 1, types: []string{tArray}, run: runArrayUnique})
	register(&function{name: "States.Base64Encode", minArgs: 1, maxArgs: 1, types: []string{tString}, run: runBase64Encode})
	register(&function{name: "States.Base64Decode", minArgs: 1, maxArgs: 1, types: []string{tString}, run: runBase64Decode})
	register(&function{name: "States.Hash", minArgs: 2, maxArgs: 2, types: []string{tString, tString}, run: runHash})
	register(&function{name: "States.JsonMerge", minArgs: 3, maxArgs: 3, types: []string{tObject, tObject, tBool}, run: runJSONMerge, check: checkJSONMerge})
	register(&function{name: "States.MathRandom", minArgs: 2, maxArgs: 3, types: []string{tNumber, tNumber, tInt}, run: runMathRandom,
		impure: func(args []arg) bool { return len(args) < 3 }})
	register(&function{name: "States.MathAdd", minArgs: 2, maxArgs: 2, types: []string{tNumber, tNumber}, run: runMathAdd})
	register(&function{name: "States.StringSplit", minArgs: 2, maxArgs: 2, types: []string{tString, tString}, run: runStringSplit})
	register(&function{name: "States.UUID", minArgs: 0, maxArgs: 0, run: runUUID,
		impure: func([]arg) bool { return true }})
}

// formatValue renders a States.Format argument: strings as they are,
// other scalars as JSON.
func formatValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return data.String(v)
}

func checkFormat(args []arg) string {
	if args[0].kind != argLiteral {
		return ""
	}
	if n := len(args[0].format) - 1; n != len(args)-1 {
		return fmt.Sprintf("States.Format has %d placeholders {} but %d values", n, len(args)-1)
	}
	return ""
}

// runFormat is States.Format with a template read from a path: every
// "{}" is a placeholder.
func runFormat(fn *function, args []any) (any, error) {
	return format(fn, strings.Split(args[0].(string), "{}"), args[1:])
}

// format fills the placeholders between segments. A literal template
// comes here already split, so that its escaped braces are not
// placeholders.
func format(fn *function, segments []string, values []any) (any, error) {
	if len(segments)-1 != len(values) {
		return nil, fail(fn, "the template has %d placeholders {} but %d values were given", len(segments)-1, len(values))
	}
	var b strings.Builder
	for i, seg := range segments {
		b.WriteString(seg)
		if i < len(values) {
			b.WriteString(formatValue(values[i]))
		}
	}
	return b.String(), nil
}

func runStringToJSON(fn *function, args []any) (any, error) {
	s := args[0].(string)
	if strings.TrimSpace(s) == "" {
		return nil, fail(fn, "the string is empty")
	}
	v, err := data.Parse([]byte(s))
	if err != nil {
		return nil, fail(fn, "the string %s is not JSON", data.Quote(s, 64))
	}
	return v, nil
}

func runJSONToString(fn *function, args []any) (any, error) {
	b, err := data.Marshal(args[0])
	if err != nil {
		return nil, fail(fn, "the value cannot be written as JSON")
	}
	return string(b), nil
}

func runArray(_ *function, args []any) (any, error) {
	out := make([]any, len(args))
	copy(out, args)
	return out, nil
}

func runArrayPartition(fn *function, args []any) (any, error) {
	a := args[0].([]any)
	size, _ := data.Int(args[1])
	if size <= 0 {
		return nil, fail(fn, "the chunk size must be a positive integer, not %d", size)
	}
	out := make([]any, 0, (int64(len(a))+size-1)/size)
	for i := 0; i < len(a); {
		end := len(a)
		if size < int64(len(a)-i) {
			end = i + int(size)
		}
		out = append(out, a[i:end:end]) // shares a: values are immutable
		i = end
	}
	return out, nil
}

func runArrayContains(_ *function, args []any) (any, error) {
	for _, e := range args[0].([]any) {
		if data.Equal(e, args[1]) {
			return true, nil
		}
	}
	return false, nil
}

func runArrayRange(fn *function, args []any) (any, error) {
	start, _ := data.Int(args[0])
	end, _ := data.Int(args[1])
	step, _ := data.Int(args[2])
	if step == 0 {
		return nil, fail(fn, "the step must not be 0")
	}
	// Count in float64 so that extreme bounds cannot overflow.
	slots := (float64(end) - float64(start)) / float64(step)
	if slots < 0 {
		return []any{}, nil
	}
	n := math.Floor(slots) + 1
	if n > MaxArrayRange {
		return nil, fail(fn, "the range has %.0f items; at most %d are allowed", n, MaxArrayRange)
	}
	out := make([]any, int(n))
	for i := range out {
		out[i] = start + int64(i)*step
	}
	return out, nil
}

func runArrayGetItem(fn *function, args []any) (any, error) {
	a := args[0].([]any)
	i, _ := data.Int(args[1])
	if i < 0 || i >= int64(len(a)) {
		return nil, fail(fn, "index %d is out of bounds of an array of %d items", i, len(a))
	}
	return a[i], nil
}

func runArrayLength(_ *function, args []any) (any, error) {
	return int64(len(args[0].([]any))), nil
}

func runArrayUnique(_ *function, args []any) (any, error) {
	a := args[0].([]any)
	out := make([]any, 0, len(a))
	seen := make(map[string]bool, len(a))
	for _, e := range a {
		key := canonical(e)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, e)
	}
	return out, nil
}

// canonical is a key under which Equal values coincide: integral floats
// are written as integers.
func canonical(v any) string {
	switch x := v.(type) {
	case float64:
		if i, ok := data.Int(x); ok {
			return strconv.FormatInt(i, 10)
		}
	case []any:
		var b strings.Builder
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(canonical(e))
		}
		b.WriteByte(']')
		return b.String()
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = canonical(e)
		}
		return "o" + data.String(m)
	}
	return data.String(v)
}

// length counts characters as Java does (UTF-16 code units).
func length(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

func runBase64Encode(fn *function, args []any) (any, error) {
	s := args[0].(string)
	if length(s) > MaxBase64Input {
		return nil, fail(fn, "the input has more than %d characters", MaxBase64Input)
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}

func runBase64Decode(fn *function, args []any) (any, error) {
	s := args[0].(string)
	if length(s) > MaxBase64Input {
		return nil, fail(fn, "the input has more than %d characters", MaxBase64Input)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fail(fn, "%s is not Base64", data.Quote(s, 64))
	}
	if !utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD"), nil
	}
	return string(b), nil
}

var hashes = map[string]func() hash.Hash{
	"MD5":     md5.New,
	"SHA-1":   sha1.New,
	"SHA-256": sha256.New,
	"SHA-384": sha512.New384,
	"SHA-512": sha512.New,
}

func runHash(fn *function, args []any) (any, error) {
	s, alg := args[0].(string), args[1].(string)
	if length(s) > MaxHashInput {
		return nil, fail(fn, "the input has more than %d characters", MaxHashInput)
	}
	newHash, ok := hashes[alg]
	if !ok {
		return nil, fail(fn, "unsupported algorithm %s; use MD5, SHA-1, SHA-256, SHA-384 or SHA-512", data.Quote(alg, 32))
	}
	h := newHash()
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil)), nil
}

func checkJSONMerge(args []arg) string {
	if args[2].kind == argLiteral && args[2].value == true {
		return "States.JsonMerge supports only a shallow merge: the third argument must be false"
	}
	return ""
}

func runJSONMerge(fn *function, args []any) (any, error) {
	a, b := args[0].(map[string]any), args[1].(map[string]any)
	if args[2].(bool) {
		return nil, fail(fn, "only a shallow merge is supported: the third argument must be false")
	}
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out, nil
}

// roundInt rounds a number to the nearest integer as Java's Math.round
// does (halves up) and checks the range AWS documents for math arguments.
func roundInt(fn *function, i int, v any) (int64, error) {
	var f float64
	if n, ok := v.(int64); ok {
		f = float64(n)
	} else {
		f, _ = data.Number(v)
		f = math.Floor(f + 0.5)
	}
	if f < minMathArgument || f > maxMathArgument {
		return 0, fail(fn, "argument %d (%s) is outside the range %d to %d", i+1, preview(v), minMathArgument, maxMathArgument)
	}
	return int64(f), nil
}

func runMathAdd(fn *function, args []any) (any, error) {
	a, err := roundInt(fn, 0, args[0])
	if err != nil {
		return nil, err
	}
	b, err := roundInt(fn, 1, args[1])
	if err != nil {
		return nil, err
	}
	return a + b, nil
}

func runMathRandom(fn *function, args []any) (any, error) {
	start, err := roundInt(fn, 0, args[0])
	if err != nil {
		return nil, err
	}
	end, err := roundInt(fn, 1, args[1])
	if err != nil {
		return nil, err
	}
	if end <= start {
		return nil, fail(fn, "the end (%d) must be greater than the start (%d)", end, start)
	}
	var r *mrand.Rand
	if len(args) == 3 {
		seed, _ := data.Int(args[2])
		r = mrand.New(mrand.NewPCG(uint64(seed), 0x6b6579666c6f77))
	} else {
		var s [16]byte
		_, _ = rand.Read(s[:])
		r = mrand.New(mrand.NewPCG(binary.BigEndian.Uint64(s[:8]), binary.BigEndian.Uint64(s[8:])))
	}
	return start + r.Int64N(end-start), nil
}

// runStringSplit splits at every character of the delimiter, dropping
// empty strings (as AWS's example "This.is+a,test=string" split by
// ".+,=" shows).
func runStringSplit(_ *function, args []any) (any, error) {
	s, delims := args[0].(string), args[1].(string)
	out := []any{}
	if delims == "" {
		if s != "" {
			out = append(out, s)
		}
		return out, nil
	}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(delims, r) }) {
		out = append(out, f)
	}
	return out, nil
}

func runUUID(_ *function, _ []any) (any, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:]), nil
}
