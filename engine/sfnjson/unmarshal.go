package sfnjson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// Unmarshal reads the Step Functions JSON 1.0 format into v, a pointer to
// an sfn shape (a request's input, a history event). It is the reverse of
// Marshal and follows the same rules: member names are the Go field names with a
// lower-case first letter, timestamps are epoch seconds, blobs are base64.
//
// encoding/json is not used directly because it matches member names
// case-insensitively (the service does not) and cannot read a timestamp
// from a number. Unknown members are ignored, as the service ignores them,
// so a newer client still works.
func Unmarshal(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil // the SDK sends {} for an empty input; some clients send nothing
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return fmt.Errorf("sfnjson: the body is not JSON: %w", err)
	}
	if d.More() {
		return fmt.Errorf("sfnjson: the body has data after its JSON value")
	}
	if _, ok := doc.(map[string]any); !ok {
		return fmt.Errorf("sfnjson: the body is %s, not an object", kindOf(doc))
	}
	return assign(reflect.ValueOf(v).Elem(), doc, "")
}

func assign(dst reflect.Value, src any, path string) error {
	if src == nil {
		return nil // null is an absent member
	}
	if dst.Type() == timeType {
		t, err := timestamp(src)
		if err != nil {
			return mismatch(path, err.Error(), src)
		}
		dst.Set(reflect.ValueOf(t))
		return nil
	}
	switch dst.Kind() {
	case reflect.Pointer:
		p := reflect.New(dst.Type().Elem())
		if err := assign(p.Elem(), src, path); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	case reflect.Struct:
		m, ok := src.(map[string]any)
		if !ok {
			return mismatch(path, "an object", src)
		}
		t := dst.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := memberName(f.Name)
			if val, ok := m[name]; ok {
				if err := assign(dst.Field(i), val, join(path, name)); err != nil {
					return err
				}
			}
		}
		return nil
	case reflect.Slice:
		if dst.Type().Elem().Kind() == reflect.Uint8 {
			s, ok := src.(string)
			if !ok {
				return mismatch(path, "a base64 string", src)
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return mismatch(path, "a base64 string", src)
			}
			dst.SetBytes(b)
			return nil
		}
		a, ok := src.([]any)
		if !ok {
			return mismatch(path, "a list", src)
		}
		s := reflect.MakeSlice(dst.Type(), len(a), len(a))
		for i, x := range a {
			if err := assign(s.Index(i), x, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		dst.Set(s)
		return nil
	case reflect.Map:
		m, ok := src.(map[string]any)
		if !ok || dst.Type().Key().Kind() != reflect.String {
			return mismatch(path, "an object", src)
		}
		out := reflect.MakeMapWithSize(dst.Type(), len(m))
		for k, x := range m {
			e := reflect.New(dst.Type().Elem()).Elem()
			if err := assign(e, x, join(path, k)); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), e)
		}
		dst.Set(out)
		return nil
	case reflect.String:
		s, ok := src.(string)
		if !ok {
			return mismatch(path, "a string", src)
		}
		dst.SetString(s) // enums are string types: any value passes, the service validates it
		return nil
	case reflect.Bool:
		b, ok := src.(bool)
		if !ok {
			return mismatch(path, "a boolean", src)
		}
		dst.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := src.(json.Number)
		if !ok {
			return mismatch(path, "an integer", src)
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || dst.OverflowInt(i) {
			return mismatch(path, "an integer in range", src)
		}
		dst.SetInt(i)
		return nil
	case reflect.Float32, reflect.Float64:
		n, ok := src.(json.Number)
		if !ok {
			return mismatch(path, "a number", src)
		}
		f, err := n.Float64()
		if err != nil {
			return mismatch(path, "a number", src)
		}
		dst.SetFloat(f)
		return nil
	}
	return fmt.Errorf("sfnjson: member %q: cannot decode into %s", path, dst.Type())
}

// timestamp reads the JSON 1.0 protocol's epoch seconds (with a fraction for
// milliseconds); an RFC 3339 string is accepted too, since some hand-written
// clients send one.
func timestamp(src any) (time.Time, error) {
	switch x := src.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
			return time.Time{}, fmt.Errorf("epoch seconds")
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond)).UTC(), nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, fmt.Errorf("epoch seconds")
		}
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("epoch seconds")
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func mismatch(path, want string, got any) error {
	return fmt.Errorf("sfnjson: member %q: %s expected, got %s", path, want, kindOf(got))
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
