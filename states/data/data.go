// Package data is the JSON value tree that flows between states: nil, bool,
// int64 (integers that fit), float64 (other numbers), string, []any and
// map[string]any. Values are immutable once built: every operation that
// changes a document returns a new one that shares the untouched parts, so
// states and branches share structure instead of copying it.
//
// It imports nothing of keyflow.
package data

// Parse decodes one JSON text into a value tree.
func Parse(doc []byte) (any, error) { panic("data.Parse: not implemented yet") }

// Marshal encodes a value tree as compact JSON, object keys sorted.
func Marshal(v any) ([]byte, error) { panic("data.Marshal: not implemented yet") }

// Size is the length in bytes of Marshal(v), computed without building the
// text where possible; it enforces the 256 KiB payload quota.
func Size(v any) int { panic("data.Size: not implemented yet") }

// Equal reports whether two trees are the same JSON value (1 and 1.0 are
// equal numbers).
func Equal(a, b any) bool { panic("data.Equal: not implemented yet") }

// Number returns v as a float64 when v is a JSON number.
func Number(v any) (float64, bool) { panic("data.Number: not implemented yet") }

// FromGo converts a value built by encoding/json or by hand (float64
// numbers, json.Number, typed slices and maps, structs) into a value tree.
func FromGo(v any) (any, error) { panic("data.FromGo: not implemented yet") }
