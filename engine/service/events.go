package service

import (
	"encoding/base64"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/engine/sfnjson"
)

func decodeEvent(b []byte) (types.HistoryEvent, error) {
	var e types.HistoryEvent
	err := sfnjson.Unmarshal(b, &e)
	return e, err
}

// stripData removes inputs and outputs, as GetExecutionHistory does with
// includeExecutionData false.
func stripData(e *types.HistoryEvent) {
	if d := e.ExecutionStartedEventDetails; d != nil {
		d.Input, d.InputDetails = nil, nil
	}
	if d := e.ExecutionSucceededEventDetails; d != nil {
		d.Output, d.OutputDetails = nil, nil
	}
	if d := e.StateEnteredEventDetails; d != nil {
		d.Input, d.InputDetails = nil, nil
	}
	if d := e.StateExitedEventDetails; d != nil {
		d.Output, d.OutputDetails = nil, nil
	}
	if d := e.TaskScheduledEventDetails; d != nil {
		d.Parameters = nil
	}
	if d := e.TaskSucceededEventDetails; d != nil {
		d.Output, d.OutputDetails = nil, nil
	}
	if d := e.TaskSubmittedEventDetails; d != nil {
		d.Output, d.OutputDetails = nil, nil
	}
	if d := e.LambdaFunctionScheduledEventDetails; d != nil {
		d.Input, d.InputDetails = nil, nil
	}
	if d := e.LambdaFunctionSucceededEventDetails; d != nil {
		d.Output, d.OutputDetails = nil, nil
	}
}

// Pagination tokens are opaque to clients, as AWS's are.
func encodeToken(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeToken(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err
}
