package sandbox

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
)

// fail wraps an API error the way the SDK does, in a *smithy.OperationError
// naming the service and operation, so that err.Error() reads like the real
// client's and errors.As still finds the typed error underneath.
func fail(service, operation string, err error) error {
	if err == nil {
		return nil
	}
	return &smithy.OperationError{ServiceID: service, OperationName: operation, Err: err}
}

// required reports a missing required parameter as the SDK's own parameter
// validation does, before any request is sent.
func required(input string, params ...param) error {
	var inv smithy.InvalidParamsError
	inv.Context = input
	for _, p := range params {
		if !p.ok {
			inv.Add(smithy.NewErrParamRequired(p.name))
		}
	}
	if inv.Len() > 0 {
		return &inv
	}
	return nil
}

// param is one required parameter and whether the input has it.
type param struct {
	name string
	ok   bool
}

func msg(s string) *string { return aws.String(s) }

// truncate keeps user input in error messages short.
func truncate(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}
