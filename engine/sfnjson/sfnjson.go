// Package sfnjson is the Step Functions JSON 1.0 wire format of the
// aws-sdk-go-v2 sfn shapes (history events, the inputs and outputs of
// every operation). Marshal writes it, so that `keyflow run --history`
// files and the local API server answer exactly what the real service
// answers, and the real sfn client decodes them; Unmarshal reads it, for
// the server's requests and for the history events the local store keeps.
//
// The SDK ships only the client side: it decodes this format but cannot
// write it, and decodes only outputs. The rules are few and uniform across
// the service's shapes — member names are the Go field names with a
// lower-case first letter, timestamps are epoch seconds with fractional
// milliseconds, enums are their string values, nil members are omitted —
// so one reflective encoder and one decoder cover every shape instead of
// sixty hand-written ones.
//
// It imports only the SDK and the standard library.
package sfnjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Marshal encodes v, a value or pointer of an sfn API shape (or a slice or
// map of them), as the service's JSON.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := encode(&buf, reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var timeType = reflect.TypeOf(time.Time{})

func encode(buf *bytes.Buffer, v reflect.Value) error {
	if !v.IsValid() {
		buf.WriteString("null")
		return nil
	}
	if v.Type() == timeType {
		t := v.Interface().(time.Time)
		buf.WriteString(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			buf.WriteString("null")
			return nil
		}
		return encode(buf, v.Elem())
	case reflect.Struct:
		return encodeStruct(buf, v)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			b, _ := json.Marshal(v.Bytes()) // blobs are base64, as encoding/json writes them
			buf.Write(b)
			return nil
		}
		buf.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encode(buf, v.Index(i)); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case reflect.Map:
		b, err := json.Marshal(v.Interface())
		if err != nil {
			return fmt.Errorf("sfnjson: %w", err)
		}
		buf.Write(b)
		return nil
	case reflect.String:
		b, _ := json.Marshal(v.String())
		buf.Write(b)
		return nil
	case reflect.Bool:
		buf.WriteString(strconv.FormatBool(v.Bool()))
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		buf.WriteString(strconv.FormatInt(v.Int(), 10))
		return nil
	case reflect.Float32, reflect.Float64:
		buf.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 64))
		return nil
	}
	return fmt.Errorf("sfnjson: cannot encode %s", v.Type())
}

func encodeStruct(buf *bytes.Buffer, v reflect.Value) error {
	buf.WriteByte('{')
	first := true
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue // the SDK's noSmithyDocumentSerde and result metadata
		}
		fv := v.Field(i)
		if omit(fv) {
			continue
		}
		if f.Type.Name() == "Metadata" && f.Type.PkgPath() == "github.com/aws/smithy-go/middleware" {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.WriteByte('"')
		buf.WriteString(memberName(f.Name))
		buf.WriteString(`":`)
		if err := encode(buf, fv); err != nil {
			return err
		}
	}
	buf.WriteByte('}')
	return nil
}

// omit drops what the service leaves out: nil pointers, slices and maps,
// and the empty string of an unset enum. Required scalars (ids, counts,
// booleans) are always written.
func omit(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return v.IsNil()
	case reflect.String:
		return v.Len() == 0
	}
	return false
}

func memberName(goName string) string {
	r, n := utf8.DecodeRuneInString(goName)
	return string(unicode.ToLower(r)) + goName[n:]
}
