package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/aws/smithy-go"

	"github.com/keyflow/keyflow/engine/sfnjson"
)

// wireError is an error response: its HTTP status, the code the client
// matches on (X-Amzn-ErrorType and "__type"), the message, and the typed
// error's other members (ValidationException's reason, ...).
type wireError struct {
	status  int
	code    string
	message string
	members map[string]any
	cause   error // logged, never written
}

func writeError(w http.ResponseWriter, e *wireError) {
	body := map[string]any{}
	for k, v := range e.members {
		body[k] = v
	}
	body["__type"] = e.code
	body["message"] = e.message
	b, err := json.Marshal(body)
	if err != nil {
		b = []byte(`{"__type":"InternalFailure","message":"internal failure"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// serviceError turns an error of the service into its response. A
// smithy.APIError keeps its code, message and members; a server fault is
// a 500 like any error the client cannot act on.
func serviceError(err error) *wireError {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return internalFailure(err)
	}
	e := &wireError{status: http.StatusBadRequest, code: ae.ErrorCode(), message: ae.ErrorMessage()}
	if ae.ErrorFault() == smithy.FaultServer {
		e.status = http.StatusInternalServerError
	}
	if e.code == "" {
		return internalFailure(err)
	}
	// The typed errors of the sfn types package are shapes like any other:
	// sfnjson writes their members (message, reason, resourceName, ...).
	if b, merr := sfnjson.Marshal(ae); merr == nil {
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			// Members of the Go types that are not on the wire.
			delete(m, "errorCodeOverride")
			delete(m, "code")
			delete(m, "fault")
			e.members = m
		}
	}
	return e
}

func internalFailure(cause error) *wireError {
	return &wireError{status: http.StatusInternalServerError, code: "InternalFailure",
		message: "The request processing has failed because of an unknown error, exception or failure.", cause: cause}
}
