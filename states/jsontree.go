package states

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/keyflow/keyflow/states/data"
)

// member is one field of a JSON object as written. The definition's own
// objects (the machine, states, rules, retriers) are read as ordered member
// lists rather than maps so that state order survives and problems come out
// in the order a reader meets them.
type member struct {
	key string
	val json.RawMessage
}

// readObject splits one JSON object into its members, in written order.
// raw must be valid JSON (it always comes from a decoder that checked it).
func readObject(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not an object")
	}
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		ms = append(ms, member{key: key, val: val})
	}
	return ms, nil
}

// readArray splits one JSON array into its elements.
func readArray(raw json.RawMessage) ([]json.RawMessage, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	return elems, nil
}

// kindOf names the JSON type of a raw value as AWS's messages do.
func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// parseValue decodes a payload field (Parameters, Result, Assign, ...)
// into the value tree the engine works on, states/data's: int64 for
// integer literals that fit, float64 for other numbers, string, bool, nil,
// []any, map[string]any.
func parseValue(raw json.RawMessage) (any, error) {
	return data.Parse(raw)
}

// parseNumber reads a JSON number literal: int64 when it is written as an
// integer that fits, float64 otherwise.
func parseNumber(s string) (any, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %s is out of range", s)
	}
	return f, nil
}
