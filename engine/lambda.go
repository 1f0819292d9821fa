package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/google/uuid"
	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
)

// invokeHandler calls a handler. aws-lambda-go v1.55.1's Invoke returns
// the bytes of a pooled buffer that it has already given back to its pool,
// so two concurrent calls of one such handler overwrite each other's
// output: calls of a handler from that package are serialised per handler
// and the output is copied before the next call may start. The locks are
// the process's, not one engine's: the hazard is the handler's, and two
// engines (the service's and TestState's) may call one handler at once.
var handlerLocks sync.Map // Handler -> *sync.Mutex

func (e *Engine) invokeHandler(ctx context.Context, h Handler, payload []byte) ([]byte, error) {
	ht := reflect.TypeOf(h)
	t := ht
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !strings.HasPrefix(t.PkgPath(), "github.com/aws/aws-lambda-go/") || !ht.Comparable() {
		return safeInvoke(ctx, h, payload)
	}
	mu, _ := handlerLocks.LoadOrStore(h, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	out, err := safeInvoke(ctx, h, payload)
	return bytes.Clone(out), err
}

// safeInvoke calls a handler and turns a panic into the error Lambda
// reports for it.
func safeInvoke(ctx context.Context, h Handler, payload []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok {
				err = e
			} else {
				err = messages.InvokeResponse_Error{Message: fmt.Sprint(p), Type: errorType(p)}
			}
		}
	}()
	return h.Invoke(ctx, payload)
}

// errorType is aws-lambda-go's getErrorType: the Go type name, without the
// pointer.
func errorType(v any) string {
	t := reflect.TypeOf(v)
	if t == nil {
		return ""
	}
	if t.Kind() == reflect.Pointer {
		return t.Elem().Name()
	}
	return t.Name()
}

// lambdaFailure names a handler's error as Lambda does: an
// InvokeResponse_Error keeps its type; any other error is named by its Go
// type. The cause is the JSON Lambda returns for a function error.
func lambdaFailure(err error) *failure.Error {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe
	}
	var name, msg string
	var ive messages.InvokeResponse_Error
	var pive *messages.InvokeResponse_Error
	switch {
	case errors.As(err, &ive):
		name, msg = ive.Type, ive.Message
	case errors.As(err, &pive):
		name, msg = pive.Type, pive.Message
	default:
		name, msg = errorType(err), err.Error()
	}
	cause, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, name})
	return &failure.Error{Name: name, Cause: string(cause)}
}

// lambdaInvokeResult wraps a function's output as the optimized
// arn:aws:states:::lambda:invoke integration returns it.
func lambdaInvokeResult(t *thread, out any) any {
	id := t.x.requestID()
	date := t.now().Format(time.RFC1123)
	date = strings.Replace(date, "UTC", "GMT", 1)
	return map[string]any{
		"ExecutedVersion": "$LATEST",
		"Payload":         out,
		"SdkHttpMetadata": map[string]any{
			"AllHttpHeaders": map[string]any{
				"X-Amz-Executed-Version":         []any{"$LATEST"},
				"x-amzn-Remapped-Content-Length": []any{"0"},
				"Connection":                     []any{"keep-alive"},
				"x-amzn-RequestId":               []any{id},
				"Date":                           []any{date},
				"Content-Type":                   []any{"application/json"},
			},
			"HttpHeaders": map[string]any{
				"Connection":                     "keep-alive",
				"Content-Type":                   "application/json",
				"Date":                           date,
				"X-Amz-Executed-Version":         "$LATEST",
				"x-amzn-Remapped-Content-Length": "0",
				"x-amzn-RequestId":               id,
			},
			"HttpStatusCode": int64(200),
		},
		"SdkResponseMetadata": map[string]any{"RequestId": id},
		"StatusCode":          int64(200),
	}
}

// requestID draws a UUID from the execution's seeded source, so that a run
// is reproducible.
func (x *Execution) requestID() string {
	var b [16]byte
	x.rngMu.Lock()
	for i := range b {
		b[i] = byte(x.random().Uint32())
	}
	x.rngMu.Unlock()
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuid.UUID(b).String()
}

// startExecution serves arn:aws:states:::states:startExecution[.sync[:2]]
// with a machine compiled on the same engine.
func (c *taskCall) startExecution() (any, error) {
	t := c.t
	m, _ := c.params.(map[string]any)
	arn, _ := m["StateMachineArn"].(string)
	e := t.x.m.e
	child, ok := e.Machine(arn)
	if !ok {
		if i := strings.LastIndex(arn, ":"); i >= 0 {
			child, ok = e.Machine(arn[i+1:])
		}
	}
	if !ok {
		return nil, fail("StepFunctions.StateMachineDoesNotExistException", "State Machine Does Not Exist: '%s' (Service: AWSStepFunctions; Status Code: 400; Error Code: StateMachineDoesNotExist)", arn)
	}
	var input any = emptyObject
	if in, ok := m["Input"]; ok {
		input = in
		if s, ok := in.(string); ok {
			v, err := data.Parse([]byte(s))
			if err != nil {
				return nil, fail("StepFunctions.InvalidExecutionInputException", "Invalid State Machine Execution Input: '%s'", truncate(s, 100))
			}
			input = v
		}
	}
	name, _ := m["Name"].(string)
	if name == "" {
		name = t.x.requestID()
	}
	start := t.now()
	awaited := c.ts.pattern == "sync" || c.ts.pattern == "sync:2"
	x, err := child.startChild(context.WithoutCancel(t.ctx), name, input, t.x.depth+1, start, t.x.arn, awaited)
	var running *AlreadyRunning
	if errors.As(err, &running) {
		// A durable journal knows it: the same start, made again.
		return map[string]any{"ExecutionArn": running.ExecutionArn, "StartDate": running.StartDate.UnixMilli()}, nil
	}
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			return nil, fail("StepFunctions."+ae.Name+"Exception", "%s", ae.Message)
		}
		return nil, err
	}
	started := map[string]any{"ExecutionArn": x.arn, "StartDate": x.start.UnixMilli()}
	if !awaited {
		return started, nil
	}
	submitted := eventSubmitted(c.ts, started)
	t.emit(&submitted)
	var res *Result
	select {
	case <-x.done:
		res = x.result
	case <-t.ctx.Done():
		x.Stop("", "")
		return nil, errStopped
	}
	if res == nil {
		// The child let go without an end (a shutdown, a journal
		// failure): its result will come in no process that waits here,
		// so the parent lets go too, and carries on when resumed.
		t.x.Detach()
		return nil, errStopped
	}
	// The child ran on its own virtual time from our now; catch up with it.
	if d := res.StopDate.Sub(t.now()); d > 0 {
		if t.x.run.sleep(t.ctx, t.f, d) != nil {
			return nil, errStopped
		}
	}
	desc := map[string]any{
		"ExecutionArn":    x.arn,
		"Name":            x.name,
		"StateMachineArn": child.arn,
		"Status":          res.Status,
		"StartDate":       res.StartDate.UnixMilli(),
		"StopDate":        res.StopDate.UnixMilli(),
		"RedriveCount":    int64(0),
		"RedriveStatus":   "NOT_REDRIVABLE",
	}
	if c.ts.pattern == "sync:2" {
		desc["Input"] = x.input
		desc["InputDetails"] = map[string]any{"Included": true}
		if res.Status == StatusSucceeded {
			desc["Output"] = res.Output
			desc["OutputDetails"] = map[string]any{"Included": true}
		}
	} else {
		in, _ := data.Marshal(x.input)
		desc["Input"] = string(in)
		desc["InputDetails"] = map[string]any{"Included": true}
		if res.Status == StatusSucceeded {
			out, _ := data.Marshal(res.Output)
			desc["Output"] = string(out)
			desc["OutputDetails"] = map[string]any{"Included": true}
		}
	}
	if res.Status != StatusSucceeded {
		if res.Error != "" {
			desc["Error"] = res.Error
		}
		if res.Cause != "" {
			desc["Cause"] = res.Cause
		}
		cause, _ := data.Marshal(desc)
		return nil, &failure.Error{Name: failure.TaskFailed, Cause: string(cause)}
	}
	return desc, nil
}
