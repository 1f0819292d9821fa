package states

import "errors"

// Decode reads a definition. Problems of shape (unknown fields, wrong JSON
// types, an unknown Type) are collected and returned together as a
// *ValidationError along with whatever could be decoded.
func Decode(doc []byte) (*Definition, error) {
	return nil, errors.New("states: Decode not implemented yet")
}
