// Package data is the JSON value tree that flows between states: nil, bool,
// int64 (integers that fit), float64 (other numbers), string, []any and
// map[string]any. Values are immutable once built: every operation that
// changes a document returns a new one that shares the untouched parts, so
// states and branches share structure instead of copying it.
//
// Numbers: a JSON integer literal (no fraction, no exponent) that fits in
// int64 is an int64; every other number (1.0, 1e2, integers beyond int64)
// is a float64. Marshal writes an integral float64 with a ".0" suffix, so
// Parse(Marshal(v)) keeps every number's type.
//
// It imports nothing of keyflow.
package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ohler55/ojg/oj"
)

// MaxDepth is the deepest nesting of arrays and objects that Parse, FromGo
// and Marshal accept. It bounds recursion on hostile input; a 256 KiB
// payload can nest far deeper, but no document we run needs to.
const MaxDepth = 10000

// Error is the error Parse, Marshal and FromGo return.
type Error struct {
	Op  string // "parse", "marshal" or "convert"
	Msg string
	Err error // the underlying error, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "data: " + e.Op + ": " + e.Msg + ": " + e.Err.Error()
	}
	return "data: " + e.Op + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

var errDepth = errors.New("nesting deeper than " + strconv.Itoa(MaxDepth))

// Parse decodes one JSON text into a value tree. Duplicate object keys keep
// the last value (as Jackson does on AWS). Text after the value, invalid
// UTF-8, numbers out of float64 range and nesting beyond MaxDepth are
// refused.
func Parse(doc []byte) (any, error) {
	if isBlank(doc) {
		return nil, &Error{Op: "parse", Msg: "empty document"}
	}
	var p oj.Parser
	v, err := p.Parse(doc)
	if err != nil {
		return nil, &Error{Op: "parse", Msg: "invalid JSON", Err: err}
	}
	v, err = fix(v, 0)
	if err != nil {
		return nil, &Error{Op: "parse", Msg: "invalid JSON", Err: err}
	}
	return v, nil
}

func isBlank(doc []byte) bool {
	for _, c := range doc {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}

// fix walks a freshly parsed tree (which we own) and turns the
// json.Number values ojg produces for long numbers into int64 or float64,
// checking strings for valid UTF-8 on the way.
func fix(v any, depth int) (any, error) {
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) {
			return nil, errors.New("invalid UTF-8 in string " + Quote(x, 40))
		}
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, errors.New("number out of range")
		}
	case json.Number:
		return number(string(x))
	case []any:
		if depth >= MaxDepth {
			return nil, errDepth
		}
		for i, e := range x {
			f, err := fix(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = f
		}
	case map[string]any:
		if depth >= MaxDepth {
			return nil, errDepth
		}
		for k, e := range x {
			if !utf8.ValidString(k) {
				return nil, errors.New("invalid UTF-8 in key " + Quote(k, 40))
			}
			switch e.(type) {
			case nil, bool, int64:
				continue
			}
			f, err := fix(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = f
		}
	}
	return v, nil
}

// number converts the text of a JSON number.
func number(s string) (any, error) {
	isInt := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == 'e' || c == 'E' {
			isInt = false
			break
		}
	}
	if isInt {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, errors.New("number out of range: " + Quote(s, 40))
	}
	return f, nil
}

// Marshal encodes a value tree as compact JSON, object keys sorted.
func Marshal(v any) ([]byte, error) {
	return Append(make([]byte, 0, 64), v)
}

// Append appends the encoding of v (as Marshal) to b.
func Append(b []byte, v any) ([]byte, error) {
	b, err := appendValue(b, v, 0)
	if err != nil {
		return nil, &Error{Op: "marshal", Msg: "cannot encode", Err: err}
	}
	return b, nil
}

// String returns Marshal(v) as a string, or a Go rendering of v when it is
// not a value tree. It is meant for messages.
func String(v any) string {
	b, err := Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		return appendFloat(b, x)
	case string:
		return appendString(b, x), nil
	case []any:
		if depth >= MaxDepth {
			return nil, errDepth
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if depth >= MaxDepth {
			return nil, errDepth
		}
		b = append(b, '{')
		var keys []string
		var buf [16]string
		if len(x) <= len(buf) {
			keys = buf[:0]
		} else {
			keys = make([]string, 0, len(x))
		}
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("unsupported type %T", v)
}

func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("unsupported number %v", f)
	}
	// As encoding/json (ES6 number formatting), plus ".0" on integral values
	// so that the number stays a float64 when parsed back.
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n-start >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b, nil
	}
	for _, c := range b[start:] {
		if c == '.' {
			return b, nil
		}
	}
	return append(b, '.', '0'), nil
}

const hex = "0123456789abcdef"

// safe[c] is true when the ASCII byte c is written as it is in a string.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Size is the length in bytes of Marshal(v), computed without building the
// text where possible; it enforces the 256 KiB payload quota. A value that
// Marshal refuses has the size of its Go rendering.
func Size(v any) int {
	n, ok := size(v, 0)
	if !ok {
		return len(String(v))
	}
	return n
}

func size(v any, depth int) (int, bool) {
	switch x := v.(type) {
	case nil:
		return 4, true
	case bool:
		if x {
			return 4, true
		}
		return 5, true
	case int64:
		return intLen(x), true
	case int:
		return intLen(int64(x)), true
	case float64:
		var buf [32]byte
		b, err := appendFloat(buf[:0], x)
		return len(b), err == nil
	case string:
		return stringSize(x), true
	case []any:
		if depth >= MaxDepth {
			return 0, false
		}
		n := 2
		if len(x) > 1 {
			n += len(x) - 1
		}
		for _, e := range x {
			m, ok := size(e, depth+1)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, true
	case map[string]any:
		if depth >= MaxDepth {
			return 0, false
		}
		n := 2
		if len(x) > 1 {
			n += len(x) - 1
		}
		for k, e := range x {
			m, ok := size(e, depth+1)
			if !ok {
				return 0, false
			}
			n += stringSize(k) + 1 + m
		}
		return n, true
	}
	return 0, false
}

func intLen(i int64) int {
	n := 1
	u := uint64(i)
	if i < 0 {
		n++
		u = uint64(-i)
	}
	for u >= 10 {
		u /= 10
		n++
	}
	return n
}

func stringSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case safe[c]:
				n++
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			default:
				n += 6
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}

// Equal reports whether two trees are the same JSON value (1 and 1.0 are
// equal numbers).
func Equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int64, int, float64:
		return numEqual(a, b)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !Equal(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

func numEqual(a, b any) bool {
	ai, aInt := asInt(a)
	bi, bInt := asInt(b)
	if aInt && bInt {
		return ai == bi
	}
	af, ok1 := Number(a)
	bf, ok2 := Number(b)
	if !ok1 || !ok2 {
		return false
	}
	if aInt || bInt {
		// An int64 equals a float64 only when the float is exactly that
		// integer; converting the int to float64 would round.
		i, f := ai, bf
		if bInt {
			i, f = bi, af
		}
		return f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 && int64(f) == i
	}
	return af == bf
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	}
	return 0, false
}

// Number returns v as a float64 when v is a JSON number.
func Number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// Int returns v as an int64 when v is an integer: an int64, or a float64
// with no fraction that fits.
func Int(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63 {
			return int64(x), true
		}
	}
	return 0, false
}

// FromGo converts a value built by encoding/json or by hand (float64
// numbers, json.Number, typed slices and maps, structs) into a value tree.
// A float64 with no fraction that fits in int64 becomes an int64, since
// encoding/json decodes every number as float64. The argument is never
// modified; containers are rebuilt.
func FromGo(v any) (any, error) {
	out, err := fromGo(v, 0)
	if err != nil {
		return nil, &Error{Op: "convert", Msg: fmt.Sprintf("%T", v), Err: err}
	}
	return out, nil
}

func fromGo(v any, depth int) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64:
		return v, nil
	case string:
		if !utf8.ValidString(x) {
			return nil, errors.New("invalid UTF-8 in string " + Quote(x, 40))
		}
		return v, nil
	case float64:
		return fromFloat(x)
	case float32:
		return fromFloat(float64(x))
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		return fromUint(uint64(x)), nil
	case uint64:
		return fromUint(x), nil
	case json.Number:
		return number(string(x))
	case json.RawMessage:
		return Parse(x)
	case []any:
		if depth >= MaxDepth {
			return nil, errDepth
		}
		out := make([]any, len(x))
		for i, e := range x {
			c, err := fromGo(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		if depth >= MaxDepth {
			return nil, errDepth
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			if !utf8.ValidString(k) {
				return nil, errors.New("invalid UTF-8 in key " + Quote(k, 40))
			}
			c, err := fromGo(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := fromGo(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if !utf8.ValidString(k) || !utf8.ValidString(e) {
				return nil, errors.New("invalid UTF-8 in " + Quote(k, 40))
			}
			out[k] = e
		}
		return out, nil
	}
	// Structs, pointers, typed containers, json.Marshaler: through JSON.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

func fromFloat(f float64) (any, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("unsupported number %v", f)
	}
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return int64(f), nil
	}
	return f, nil
}

func fromUint(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return float64(u)
}

// Quote returns s as a Go-quoted string, cut to at most max bytes of s
// (with "..." after the closing quote when cut), for error messages.
func Quote(s string, max int) string {
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// Preview returns the compact JSON of v cut to at most max bytes, for
// messages ("..." marks a cut).
func Preview(v any, max int) string {
	s := String(v)
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
