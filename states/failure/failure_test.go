package failure

import (
	"errors"
	"fmt"
	"testing"
)

func TestError(t *testing.T) {
	tests := []struct {
		name   string
		input  *Error
		result string
	}{
		{"name only", &Error{Name: Runtime}, "States.Runtime"},
		{"name and cause", New(IntrinsicFailure, "bad %s", "thing"), "States.IntrinsicFailure: bad thing"},
		{"handler error name", &Error{Name: "KeyLimitExceeded", Cause: "two keys"}, "KeyLimitExceeded: two keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.input.Error(); got != tt.result {
				t.Errorf("Error() = %q, want %q", got, tt.result)
			}
		})
	}
}

func TestAs(t *testing.T) {
	err := fmt.Errorf("state A: %w", New(ResultPathMatchFailure, "x"))
	var fe *Error
	if !errors.As(err, &fe) || fe.Name != ResultPathMatchFailure || fe.Cause != "x" {
		t.Errorf("errors.As = %v", fe)
	}
}
