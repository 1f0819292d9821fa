package service_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/api"
	"github.com/keyflow/keyflow/engine/service"
)

// KeyLimitExceeded is a handler's own error: Retry and Catch see its Go
// type name, as on Lambda.
type KeyLimitExceeded struct{ User string }

func (e *KeyLimitExceeded) Error() string { return "user " + e.User + " already has two keys" }

const (
	testRole  = "arn:aws:iam::123456789012:role/keyflow-test"
	doubleArn = "arn:aws:lambda:us-east-1:123456789012:function:double"
	rejectArn = "arn:aws:lambda:us-east-1:123456789012:function:reject"
	brokenArn = "arn:aws:lambda:us-east-1:123456789012:function:broken"
)

// testStateWorld is a service with three handlers, and what they were
// asked.
type testStateWorld struct {
	l     *service.Local
	db    *sql.DB
	calls atomic.Int64
}

func openTestState(t testing.TB) *testStateWorld {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "keyflow.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	w := &testStateWorld{db: db}
	l, err := service.Open(t.Context(), service.Options{DB: w.db, Engine: engine.Options{
		// A real clock that would make a Wait state of a day take a
		// day: TestState must not use it.
		Clock: engine.NewRealClock(),
		Handlers: map[string]engine.Handler{
			doubleArn: engine.HandlerFunc(func(_ context.Context, in []byte) ([]byte, error) {
				w.calls.Add(1)
				var v struct{ N int }
				if err := json.Unmarshal(in, &v); err != nil {
					return nil, err
				}
				return fmt.Appendf(nil, `{"n":%d,"by":"double"}`, 2*v.N), nil
			}),
			rejectArn: engine.HandlerFunc(func(context.Context, []byte) ([]byte, error) {
				w.calls.Add(1)
				return nil, &KeyLimitExceeded{User: "alice"}
			}),
			brokenArn: engine.HandlerFunc(func(context.Context, []byte) ([]byte, error) {
				w.calls.Add(1)
				return nil, errors.New("disk on fire")
			}),
		},
	}})
	require.NoError(t, err)
	t.Cleanup(l.Close)
	w.l = l
	return w
}

// assertNothingStored: a test run leaves no state machine, execution or
// history event in the store.
func (w *testStateWorld) assertNothingStored(t *testing.T) {
	t.Helper()
	for _, table := range []string{"sfn_state_machines", "sfn_executions", "sfn_events"} {
		var n int
		require.NoError(t, w.db.QueryRow("SELECT count(*) FROM "+table).Scan(&n))
		assert.Zero(t, n, "rows in %s", table)
	}
	sms, err := w.l.ListStateMachines(t.Context(), &sfn.ListStateMachinesInput{})
	require.NoError(t, err)
	assert.Empty(t, sms.StateMachines)
}

type inspect struct {
	input, afterInputPath, afterParameters, result, afterResultSelector, afterResultPath, variables string
	retryIndex, retryBackoff, catchIndex                                                            *int32
}

type testStateCase struct {
	name      string
	def       string
	stateName string
	input     string
	level     types.InspectionLevel
	mock      *types.MockInput
	retries   *int32
	variables string
	noRole    bool

	status types.TestExecutionStatus
	next   string // "" means absent
	output string // JSON, "" means absent
	errName,
	cause string // cause: a substring
	insp  *inspect // DEBUG only; nil: not checked
	calls int64    // handler calls
}

func (c testStateCase) request() *sfn.TestStateInput {
	in := &sfn.TestStateInput{Definition: aws.String(c.def), InspectionLevel: c.level, Mock: c.mock}
	if !c.noRole {
		in.RoleArn = aws.String(testRole)
	}
	if c.input != "" {
		in.Input = aws.String(c.input)
	}
	if c.stateName != "" {
		in.StateName = aws.String(c.stateName)
	}
	if c.retries != nil {
		in.StateConfiguration = &types.TestStateConfiguration{RetrierRetryCount: c.retries}
	}
	if c.variables != "" {
		in.Variables = aws.String(c.variables)
	}
	return in
}

func (c testStateCase) check(t *testing.T, out *sfn.TestStateOutput) {
	t.Helper()
	assert.Equal(t, c.status, out.Status)
	assert.Equal(t, c.next, aws.ToString(out.NextState), "nextState")
	if c.output == "" {
		assert.Nil(t, out.Output, "output")
	} else if assert.NotNil(t, out.Output, "output") {
		assert.JSONEq(t, c.output, *out.Output, "output")
	}
	assert.Equal(t, c.errName, aws.ToString(out.Error), "error")
	if c.cause == "" {
		assert.Nil(t, out.Cause, "cause %s", aws.ToString(out.Cause))
	} else {
		assert.Contains(t, aws.ToString(out.Cause), c.cause, "cause")
	}
	if c.level == "" || c.level == types.InspectionLevelInfo {
		assert.Nil(t, out.InspectionData, "inspectionData at INFO")
		return
	}
	if c.insp == nil {
		return
	}
	d := out.InspectionData
	require.NotNil(t, d, "inspectionData")
	jsonField := func(field, want string, got *string) {
		if want == "" {
			assert.Nil(t, got, field)
		} else if assert.NotNil(t, got, field) {
			assert.JSONEq(t, want, *got, field)
		}
	}
	// input is echoed as it was sent, spaces and all.
	assert.Equal(t, c.insp.input, aws.ToString(d.Input), "input")
	jsonField("afterInputPath", c.insp.afterInputPath, d.AfterInputPath)
	jsonField("afterParameters", c.insp.afterParameters, d.AfterParameters)
	jsonField("result", c.insp.result, d.Result)
	jsonField("afterResultSelector", c.insp.afterResultSelector, d.AfterResultSelector)
	jsonField("afterResultPath", c.insp.afterResultPath, d.AfterResultPath)
	jsonField("variables", c.insp.variables, d.Variables)
	if c.insp.retryIndex == nil && c.insp.catchIndex == nil {
		assert.Nil(t, d.ErrorDetails, "errorDetails")
		return
	}
	require.NotNil(t, d.ErrorDetails, "errorDetails")
	assert.Equal(t, c.insp.retryIndex, d.ErrorDetails.RetryIndex, "retryIndex")
	assert.Equal(t, c.insp.retryBackoff, d.ErrorDetails.RetryBackoffIntervalSeconds, "retryBackoffIntervalSeconds")
	assert.Equal(t, c.insp.catchIndex, d.ErrorDetails.CatchIndex, "catchIndex")
}

func i32(v int32) *int32 { return &v }

const machineDef = `{
  "StartAt": "Rotate",
  "States": {
    "Rotate": {"Type": "Task", "Resource": "` + doubleArn + `", "ResultPath": "$.rotated", "Next": "Hold"},
    "Hold": {"Type": "Wait", "Seconds": 5184000, "Next": "Fan"},
    "Fan": {"Type": "Parallel", "End": true, "Branches": [
      {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "Result": {"inner": true}, "Next": "InnerEnd"}, "InnerEnd": {"Type": "Succeed"}}}
    ]}
  }
}`

var testStateCases = []testStateCase{
	// Pass: AWS's own DEBUG example of the developer guide.
	{name: "pass data flow", def: `{"Type": "Pass", "InputPath": "$.payload", "Parameters": {"data": 1}, "ResultPath": "$.result", "OutputPath": "$.result.data", "Next": "Another State"}`,
		input: `{"payload": {"foo": "bar"}}`, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusSucceeded, next: "Another State", output: `1`,
		insp: &inspect{input: `{"payload": {"foo": "bar"}}`, afterInputPath: `{"foo":"bar"}`, afterParameters: `{"data":1}`,
			afterResultSelector: `{"data":1}`, afterResultPath: `{"payload":{"foo":"bar"},"result":{"data":1}}`}},
	{name: "pass result at the end", def: `{"Type": "Pass", "Result": {"resultKey": "result value"}, "End": true}`,
		input: `{"Value": "HelloWorld"}`, status: types.TestExecutionStatusSucceeded, output: `{"resultKey":"result value"}`},
	// A Pass state with a Result reads no input: AWS shows no input path
	// nor parameters for it.
	{name: "pass result inspected", def: `{"Type": "Pass", "Result": {"resultKey": "result value"}, "ResultPath": "$.r", "End": true}`,
		input: `{"Value":"HelloWorld"}`, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusSucceeded, output: `{"Value":"HelloWorld","r":{"resultKey":"result value"}}`,
		insp: &inspect{input: `{"Value":"HelloWorld"}`, result: `{"resultKey":"result value"}`, afterResultSelector: `{"resultKey":"result value"}`,
			afterResultPath: `{"Value":"HelloWorld","r":{"resultKey":"result value"}}`}},
	{name: "pass reads $$", def: `{"Type": "Pass", "Parameters": {"state.$": "$$.State.Name", "sm.$": "$$.StateMachine.Name"}, "End": true}`,
		level: types.InspectionLevelDebug, status: types.TestExecutionStatusSucceeded, output: `{"state":"StateName","sm":"TestState"}`,
		insp: &inspect{input: `{}`, afterInputPath: `{}`, afterParameters: `{"state":"StateName","sm":"TestState"}`,
			afterResultSelector: `{"state":"StateName","sm":"TestState"}`, afterResultPath: `{"state":"StateName","sm":"TestState"}`}},
	{name: "pass with variables", def: `{"Type": "Pass", "Parameters": {"limit.$": "$maxKeys", "user.$": "$.user"}, "Assign": {"seen": true}, "Next": "Check"}`,
		input: `{"user":"alice"}`, variables: `{"maxKeys": 2}`, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusSucceeded, next: "Check", output: `{"limit":2,"user":"alice"}`,
		insp: &inspect{input: `{"user":"alice"}`, afterInputPath: `{"user":"alice"}`, afterParameters: `{"limit":2,"user":"alice"}`,
			afterResultSelector: `{"limit":2,"user":"alice"}`, afterResultPath: `{"limit":2,"user":"alice"}`, variables: `{"maxKeys":2,"seen":true}`}},

	// Choice: AWS's INFO example, the default, and no match at all.
	{name: "choice picks a branch", def: `{"Type": "Choice", "Choices": [{"Variable": "$.number", "NumericEquals": 1, "Next": "Equals 1"}, {"Variable": "$.number", "NumericEquals": 2, "Next": "Equals 2"}], "Default": "No Match"}`,
		input: `{"number": 2}`, status: types.TestExecutionStatusSucceeded, next: "Equals 2", output: `{"number":2}`},
	{name: "choice default", def: `{"Type": "Choice", "InputPath": "$.key", "Choices": [{"Variable": "$.age", "NumericGreaterThan": 45, "Next": "Rotate"}], "Default": "Keep"}`,
		input: `{"key": {"age": 12}}`, level: types.InspectionLevelDebug, status: types.TestExecutionStatusSucceeded, next: "Keep", output: `{"age":12}`,
		insp: &inspect{input: `{"key": {"age": 12}}`, afterInputPath: `{"age":12}`}},
	{name: "choice without a match", def: `{"Type": "Choice", "Choices": [{"Variable": "$.age", "NumericGreaterThan": 45, "Next": "Rotate"}]}`,
		input: `{"age": 12}`, status: types.TestExecutionStatusFailed, errName: "States.NoChoiceMatched", cause: "No Matches!"},
	{name: "choice looping to itself", def: `{"Type": "Choice", "Choices": [{"Variable": "$.done", "BooleanEquals": false, "Next": "StateName"}], "Default": "Done"}`,
		input: `{"done": false}`, status: types.TestExecutionStatusSucceeded, next: "StateName", output: `{"done":false}`},

	// Wait: 60 days on a service whose clock is real, over at once.
	{name: "wait", def: `{"Type": "Wait", "Seconds": 5184000, "Next": "Deactivate"}`, input: `{"keyId": "AKIA1"}`, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusSucceeded, next: "Deactivate", output: `{"keyId":"AKIA1"}`,
		insp: &inspect{input: `{"keyId": "AKIA1"}`, afterInputPath: `{"keyId":"AKIA1"}`}},
	{name: "wait until a timestamp", def: `{"Type": "Wait", "TimestampPath": "$.at", "End": true}`, input: `{"at": "2099-01-01T00:00:00Z"}`,
		status: types.TestExecutionStatusSucceeded, output: `{"at":"2099-01-01T00:00:00Z"}`},
	{name: "wait on a bad path", def: `{"Type": "Wait", "SecondsPath": "$.nope", "End": true}`, input: `{}`,
		status: types.TestExecutionStatusFailed, errName: "States.Runtime", cause: "$.nope"},

	// Succeed and Fail.
	{name: "succeed", def: `{"Type": "Succeed", "OutputPath": "$.v"}`, input: `{"v": "HelloWorld"}`, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusSucceeded, output: `"HelloWorld"`, insp: &inspect{input: `{"v": "HelloWorld"}`, afterInputPath: `{"v":"HelloWorld"}`}},
	{name: "fail", def: `{"Type": "Fail", "Error": "SomeFailure", "Cause": "This state machines raises a 'SomeFailure' failure."}`,
		input: `{"Value": "HelloWorld"}`, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusFailed, errName: "SomeFailure", cause: "This state machines raises a 'SomeFailure' failure.",
		insp: &inspect{input: `{"Value": "HelloWorld"}`, afterInputPath: `{"Value":"HelloWorld"}`}},
	{name: "fail with paths", def: `{"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}`, input: `{"e": "Quarantined", "c": "no approval"}`,
		status: types.TestExecutionStatusFailed, errName: "Quarantined", cause: "no approval"},

	// Task: the service's handlers, every step of the data flow.
	{name: "task data flow", def: `{"Type": "Task", "Resource": "` + doubleArn + `", "InputPath": "$.in", "Parameters": {"N.$": "$.n"},
		"ResultSelector": {"doubled.$": "$.n"}, "ResultPath": "$.out", "OutputPath": "$.out", "Next": "Store"}`,
		input: `{"in": {"n": 21}, "other": 1}`, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusSucceeded, next: "Store", output: `{"doubled":42}`, calls: 1,
		insp: &inspect{input: `{"in": {"n": 21}, "other": 1}`, afterInputPath: `{"n":21}`, afterParameters: `{"N":21}`,
			result: `{"n":42,"by":"double"}`, afterResultSelector: `{"doubled":42}`, afterResultPath: `{"in":{"n":21},"other":1,"out":{"doubled":42}}`}},
	{name: "task lambda invoke", def: `{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "double", "Payload.$": "$"},
		"ResultSelector": {"n.$": "$.Payload.n", "status.$": "$.StatusCode"}, "End": true}`,
		input: `{"n": 4}`, status: types.TestExecutionStatusSucceeded, output: `{"n":8,"status":200}`, calls: 1},
	{name: "task error", def: `{"Type": "Task", "Resource": "` + rejectArn + `", "Next": "Notify"}`, input: `{"user": "alice"}`, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusFailed, errName: "KeyLimitExceeded", cause: `"errorMessage":"user alice already has two keys"`, calls: 1,
		insp: &inspect{input: `{"user": "alice"}`, afterInputPath: `{"user":"alice"}`, afterParameters: `{"user":"alice"}`}},
	// A retrier that names the error: AWS does not retry, it says so.
	{name: "task retriable", def: `{"Type": "Task", "Resource": "` + rejectArn + `", "Next": "Notify",
		"Retry": [{"ErrorEquals": ["Other"], "IntervalSeconds": 9}, {"ErrorEquals": ["KeyLimitExceeded"], "IntervalSeconds": 2, "MaxAttempts": 3}],
		"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handle"}]}`,
		input: `{"user": "alice"}`, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusRetriable, errName: "KeyLimitExceeded", cause: "two keys", calls: 1,
		insp: &inspect{input: `{"user": "alice"}`, afterInputPath: `{"user":"alice"}`, afterParameters: `{"user":"alice"}`,
			retryIndex: i32(1), retryBackoff: i32(2)}},
	{name: "task retriable later", def: `{"Type": "Task", "Resource": "` + brokenArn + `", "End": true,
		"Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3, "BackoffRate": 2, "MaxAttempts": 5, "MaxDelaySeconds": 10}]}`,
		retries: i32(1), level: types.InspectionLevelDebug, status: types.TestExecutionStatusRetriable, errName: "errorString", cause: "disk on fire", calls: 1,
		insp: &inspect{input: `{}`, afterInputPath: `{}`, afterParameters: `{}`, retryIndex: i32(0), retryBackoff: i32(6)}},
	{name: "task back-off capped", def: `{"Type": "Task", "Resource": "` + brokenArn + `", "End": true,
		"Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 3, "BackoffRate": 2, "MaxAttempts": 5, "MaxDelaySeconds": 10}]}`,
		retries: i32(3), level: types.InspectionLevelDebug, status: types.TestExecutionStatusRetriable, errName: "errorString", cause: "disk on fire", calls: 1,
		insp: &inspect{input: `{}`, afterInputPath: `{}`, afterParameters: `{}`, retryIndex: i32(0), retryBackoff: i32(10)}},
	// Retries used up: the catcher takes the error; its ResultPath places
	// the error output in the raw input.
	{name: "task caught after retries", def: `{"Type": "Task", "Resource": "` + rejectArn + `", "Next": "Notify",
		"Retry": [{"ErrorEquals": ["KeyLimitExceeded"], "MaxAttempts": 2}],
		"Catch": [{"ErrorEquals": ["Other"], "Next": "Elsewhere"}, {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handle"}]}`,
		input: `{"user": "alice"}`, retries: i32(2), level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusCaughtError, next: "Handle", errName: "KeyLimitExceeded", cause: "two keys", calls: 1,
		output: `{"user":"alice","error":{"Error":"KeyLimitExceeded","Cause":"{\"errorMessage\":\"user alice already has two keys\",\"errorType\":\"KeyLimitExceeded\"}"}}`,
		insp:   &inspect{input: `{"user": "alice"}`, afterInputPath: `{"user":"alice"}`, afterParameters: `{"user":"alice"}`, catchIndex: i32(1)}},
	{name: "task caught as TaskFailed", def: `{"Type": "Task", "Resource": "` + brokenArn + `", "Next": "Notify",
		"Catch": [{"ErrorEquals": ["KeyLimitExceeded"], "Next": "Elsewhere"}, {"ErrorEquals": ["States.TaskFailed"], "ResultPath": null, "Next": "Handle"}]}`,
		input: `{"user": "bob"}`, status: types.TestExecutionStatusCaughtError, next: "Handle", output: `{"user":"bob"}`,
		errName: "errorString", cause: "disk on fire", calls: 1},
	{name: "task caught, default ResultPath", def: `{"Type": "Task", "Resource": "` + rejectArn + `", "End": true,
		"Catch": [{"ErrorEquals": ["KeyLimitExceeded"], "Next": "Handle"}]}`,
		input: `{"user": "carol"}`, status: types.TestExecutionStatusCaughtError, next: "Handle",
		output:  `{"Error":"KeyLimitExceeded","Cause":"{\"errorMessage\":\"user alice already has two keys\",\"errorType\":\"KeyLimitExceeded\"}"}`,
		errName: "KeyLimitExceeded", cause: "two keys", calls: 1},
	// States.Runtime is neither retried nor caught by States.ALL.
	{name: "task runtime error", def: `{"Type": "Task", "Resource": "` + doubleArn + `", "InputPath": "$.missing", "End": true,
		"Retry": [{"ErrorEquals": ["States.ALL"]}], "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handle"}]}`,
		input: `{"n": 1}`, status: types.TestExecutionStatusFailed, errName: "States.Runtime", cause: "$.missing"},
	// The engine retries the call, not the processing of its result.
	{name: "task result processing fails", def: `{"Type": "Task", "Resource": "` + doubleArn + `", "ResultSelector": {"x.$": "$.nope"}, "End": true,
		"Retry": [{"ErrorEquals": ["States.Runtime"]}]}`,
		input: `{"n": 1}`, status: types.TestExecutionStatusFailed, errName: "States.Runtime", cause: "$.nope", calls: 1},
	{name: "task with no retrier attempts", def: `{"Type": "Task", "Resource": "` + rejectArn + `", "End": true,
		"Retry": [{"ErrorEquals": ["KeyLimitExceeded"], "MaxAttempts": 0}]}`,
		status: types.TestExecutionStatusFailed, errName: "KeyLimitExceeded", cause: "two keys", calls: 1},

	// Mocks answer for any resource, with no role needed.
	{name: "mocked result", def: `{"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem", "Parameters": {"TableName": "keys"}, "ResultSelector": {"item.$": "$.Item"}, "End": true}`,
		mock: &types.MockInput{Result: aws.String(`{"Item": {"id": {"S": "k1"}}}`)}, noRole: true, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusSucceeded, output: `{"item":{"id":{"S":"k1"}}}`,
		insp: &inspect{input: `{}`, afterInputPath: `{}`, afterParameters: `{"TableName":"keys"}`, result: `{"Item":{"id":{"S":"k1"}}}`,
			afterResultSelector: `{"item":{"id":{"S":"k1"}}}`, afterResultPath: `{"item":{"id":{"S":"k1"}}}`}},
	{name: "mocked error caught", def: `{"Type": "Task", "Resource": "` + doubleArn + `", "Next": "Store",
		"Catch": [{"ErrorEquals": ["MockException"], "ResultPath": "$.errorOutput", "Next": "HandleMockError"}, {"ErrorEquals": ["States.TaskFailed"], "Next": "HandleThreshold"}]}`,
		mock:  &types.MockInput{ErrorOutput: &types.MockErrorOutput{Error: aws.String("States.TaskFailed"), Cause: aws.String("The task failed.")}},
		input: `{"Value": "HelloWorld"}`, level: types.InspectionLevelDebug,
		status: types.TestExecutionStatusCaughtError, next: "HandleThreshold", errName: "States.TaskFailed", cause: "The task failed.",
		output: `{"Error":"States.TaskFailed","Cause":"The task failed."}`,
		insp:   &inspect{input: `{"Value": "HelloWorld"}`, afterInputPath: `{"Value":"HelloWorld"}`, afterParameters: `{"Value":"HelloWorld"}`, catchIndex: i32(1)}},
	// The engine gives a mocked callback task no $$.Task.Token, so the
	// parameters here do not read one.
	{name: "mocked callback", def: `{"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "Parameters": {"MessageBody": {"user.$": "$.user"}}, "End": true}`,
		mock: &types.MockInput{Result: aws.String(`{"decision": "approve"}`)}, input: `{"user": "dave"}`, status: types.TestExecutionStatusSucceeded, output: `{"decision":"approve"}`},

	// A state of a whole machine, by name: at the top level and in a
	// Parallel branch.
	{name: "state of a machine", def: machineDef, stateName: "Hold", input: `{"keyId": "AKIA2"}`,
		status: types.TestExecutionStatusSucceeded, next: "Fan", output: `{"keyId":"AKIA2"}`},
	{name: "task of a machine", def: machineDef, stateName: "Rotate", input: `{"n": 5}`,
		status: types.TestExecutionStatusSucceeded, next: "Hold", output: `{"n":5,"rotated":{"n":10,"by":"double"}}`, calls: 1},
	{name: "state in a branch", def: machineDef, stateName: "Inner", level: types.InspectionLevelTrace,
		status: types.TestExecutionStatusSucceeded, next: "InnerEnd", output: `{"inner":true}`,
		insp: &inspect{input: `{}`, result: `{"inner":true}`, afterResultSelector: `{"inner":true}`, afterResultPath: `{"inner":true}`}},
}

func TestTestState(t *testing.T) {
	w := openTestState(t)
	for _, c := range testStateCases {
		t.Run(c.name, func(t *testing.T) {
			before := w.calls.Load()
			out, err := w.l.TestState(t.Context(), c.request())
			require.NoError(t, err)
			c.check(t, out)
			assert.Equal(t, c.calls, w.calls.Load()-before, "handler calls")
		})
	}
	w.assertNothingStored(t)
}

// Requests that AWS refuses, and what keyflow does not run, are API
// errors of the type AWS answers with.
func TestTestStateRefuses(t *testing.T) {
	w := openTestState(t)
	validation, invalidDef, invalidInput := "ValidationException", "InvalidDefinition", "InvalidExecutionInput"
	pass := `{"Type": "Pass", "End": true}`
	cases := []struct {
		name string
		in   sfn.TestStateInput
		want string
		msg  string
	}{
		{"no definition", sfn.TestStateInput{}, validation, "definition is required"},
		{"not JSON", sfn.TestStateInput{Definition: aws.String(`{"Type": `)}, invalidDef, "JSON object"},
		{"not an object", sfn.TestStateInput{Definition: aws.String(`[1]`)}, invalidDef, "JSON object"},
		{"no transition", sfn.TestStateInput{Definition: aws.String(`{"Type": "Pass"}`)}, invalidDef, "/States/StateName"},
		{"unknown type", sfn.TestStateInput{Definition: aws.String(`{"Type": "Sleep", "End": true}`)}, invalidDef, "Sleep"},
		{"unknown field", sfn.TestStateInput{Definition: aws.String(`{"Type": "Pass", "End": true, "Resultt": 1}`)}, invalidDef, "Resultt"},
		{"machine without stateName", sfn.TestStateInput{Definition: aws.String(machineDef)}, invalidDef, "stateName"},
		{"no such state", sfn.TestStateInput{Definition: aws.String(machineDef), StateName: aws.String("Nope")}, validation, `"Nope"`},
		{"invalid machine", sfn.TestStateInput{Definition: aws.String(`{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}`), StateName: aws.String("A")}, invalidDef, "B"},
		{"parallel", sfn.TestStateInput{Definition: aws.String(machineDef), StateName: aws.String("Fan")}, validation, "Parallel"},
		{"map", sfn.TestStateInput{Definition: aws.String(`{"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}`)}, validation, "Map"},
		{"task without role", sfn.TestStateInput{Definition: aws.String(`{"Type": "Task", "Resource": "` + doubleArn + `", "End": true}`)}, validation, "RoleArn must be specified when testing a Task state"},
		{"bad role", sfn.TestStateInput{Definition: aws.String(pass), RoleArn: aws.String("keyflow")}, "InvalidArn", "keyflow"},
		{"callback without mock", sfn.TestStateInput{Definition: aws.String(`{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "Parameters": {"FunctionName": "double"}, "End": true}`), RoleArn: aws.String(testRole)}, validation, "needs a mock"},
		{"activity without mock", sfn.TestStateInput{Definition: aws.String(`{"Type": "Task", "Resource": "arn:aws:states:us-east-1:123456789012:activity:approve", "End": true}`), RoleArn: aws.String(testRole)}, validation, "needs a mock"},
		{"unserved resource", sfn.TestStateInput{Definition: aws.String(`{"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:nobody", "End": true}`), RoleArn: aws.String(testRole)}, invalidDef, "nobody"},
		{"mock on a pass", sfn.TestStateInput{Definition: aws.String(pass), Mock: &types.MockInput{Result: aws.String(`{}`)}}, validation, "Task, Map or Parallel"},
		{"mock of both", sfn.TestStateInput{Definition: aws.String(`{"Type": "Task", "Resource": "` + doubleArn + `", "End": true}`),
			Mock: &types.MockInput{Result: aws.String(`{}`), ErrorOutput: &types.MockErrorOutput{Error: aws.String("E")}}}, validation, "either"},
		{"mock not JSON", sfn.TestStateInput{Definition: aws.String(`{"Type": "Task", "Resource": "` + doubleArn + `", "End": true}`),
			Mock: &types.MockInput{Result: aws.String(`{`)}}, validation, "mock.result"},
		{"context", sfn.TestStateInput{Definition: aws.String(pass), Context: aws.String(`{}`)}, validation, "context"},
		{"map configuration", sfn.TestStateInput{Definition: aws.String(pass), StateConfiguration: &types.TestStateConfiguration{ErrorCausedByState: aws.String("P")}}, validation, "errorCausedByState"},
		{"negative retries", sfn.TestStateInput{Definition: aws.String(pass), StateConfiguration: &types.TestStateConfiguration{RetrierRetryCount: i32(-1)}}, validation, "retrierRetryCount"},
		{"bad level", sfn.TestStateInput{Definition: aws.String(pass), InspectionLevel: "VERBOSE"}, validation, "VERBOSE"},
		{"variables not an object", sfn.TestStateInput{Definition: aws.String(pass), Variables: aws.String(`[1]`)}, validation, "variables"},
		{"bad input", sfn.TestStateInput{Definition: aws.String(pass), Input: aws.String(`{"a":`)}, invalidInput, "Invalid State Machine Execution Input"},
		{"JSONata", sfn.TestStateInput{Definition: aws.String(`{"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.input %}", "End": true}`)}, invalidDef, "JSONata"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := w.l.TestState(t.Context(), &c.in)
			require.Error(t, err, "%+v", out)
			var ae interface {
				ErrorCode() string
				ErrorMessage() string
			}
			require.True(t, errors.As(err, &ae), "%T %v", err, err)
			assert.Equal(t, c.want, ae.ErrorCode())
			assert.Contains(t, ae.ErrorMessage(), c.msg)
		})
	}
	assert.Zero(t, w.calls.Load(), "no handler runs for a refused test")
	w.assertNothingStored(t)
}

// TestState through the real sfn client, over the HTTP API.
func TestTestStateOverHTTP(t *testing.T) {
	w := openTestState(t)
	creds := aws.Credentials{AccessKeyID: "AKIAKEYFLOWLOCALTEST", SecretAccessKey: "keyflow-local-test-secret"}
	h, err := api.New(api.Options{Service: w.l, Credentials: creds})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := sfn.New(sfn.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.StaticCredentialsProvider{Value: creds}, Retryer: aws.NopRetryer{}}, api.WithoutHostPrefix)

	for _, name := range []string{"task data flow", "task retriable", "task caught after retries", "choice picks a branch", "fail", "mocked error caught"} {
		t.Run(name, func(t *testing.T) {
			var c testStateCase
			for _, tc := range testStateCases {
				if tc.name == name {
					c = tc
				}
			}
			require.Equal(t, name, c.name)
			out, err := client.TestState(t.Context(), c.request())
			require.NoError(t, err)
			c.check(t, out)
		})
	}

	_, err = client.TestState(t.Context(), &sfn.TestStateInput{Definition: aws.String(`{"Type": "Task", "Resource": "` + doubleArn + `", "End": true}`)})
	var ve *types.ValidationException
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "RoleArn must be specified when testing a Task state", aws.ToString(ve.Message))

	_, err = client.TestState(t.Context(), &sfn.TestStateInput{Definition: aws.String(`{"Type": "Pass"}`)})
	var ide *types.InvalidDefinition
	require.ErrorAs(t, err, &ide)

	_, err = client.TestState(t.Context(), &sfn.TestStateInput{Definition: aws.String(`{"Type": "Pass", "End": true}`), Input: aws.String("nope")})
	var iie *types.InvalidExecutionInput
	require.ErrorAs(t, err, &iie)
	w.assertNothingStored(t)
}

// `aws stepfunctions test-state` against the served service.
func TestTestStateAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI (aws) is not installed: skipping test-state through the CLI")
	}
	w := openTestState(t)
	creds := aws.Credentials{AccessKeyID: "AKIAKEYFLOWLOCALTEST", SecretAccessKey: "keyflow-local-test-secret"}
	h, err := api.New(api.Options{Service: w.l, Credentials: creds})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv) // no profile, token or endpoint of the machine's own
		}
	}
	env = append(env, "AWS_ACCESS_KEY_ID="+creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+creds.SecretAccessKey, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		// botocore sends TestState to "sync-" + the endpoint's host, as
		// AWS serves it from sync-states.<region>.amazonaws.com;
		// "sync-127.0.0.1" does not resolve (api.WithoutHostPrefix is the
		// Go client's counterpart).
		"AWS_DISABLE_HOST_PREFIX_INJECTION=true")
	cli := func(args ...string) (map[string]any, string, error) {
		cmd := exec.Command("aws", append([]string{"stepfunctions", "--endpoint-url", srv.URL, "--output", "json", "test-state"}, args...)...)
		cmd.Env = env
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, string(ee.Stderr), err
		}
		var doc map[string]any
		if err == nil {
			require.NoError(t, json.Unmarshal(out, &doc), "%s", out)
		}
		return doc, "", err
	}

	doc, stderr, err := cli("--definition", `{"Type": "Task", "Resource": "`+rejectArn+`", "Next": "Notify",
		"Retry": [{"ErrorEquals": ["KeyLimitExceeded"], "MaxAttempts": 1}],
		"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handle"}]}`,
		"--role-arn", testRole, "--input", `{"user": "alice"}`, "--inspection-level", "DEBUG")
	require.NoError(t, err, stderr)
	assert.Equal(t, "RETRIABLE", doc["status"])
	assert.Equal(t, "KeyLimitExceeded", doc["error"])
	assert.Equal(t, map[string]any{"retryIndex": 0.0, "retryBackoffIntervalSeconds": 1.0}, doc["inspectionData"].(map[string]any)["errorDetails"])

	doc, stderr, err = cli("--definition", `{"Type": "Choice", "Choices": [{"Variable": "$.age", "NumericGreaterThanEquals": 45, "Next": "Rotate"}], "Default": "Keep"}`,
		"--input", `{"age": 60}`)
	require.NoError(t, err, stderr)
	assert.Equal(t, map[string]any{"status": "SUCCEEDED", "nextState": "Rotate", "output": `{"age":60}`}, doc)

	_, stderr, err = cli("--definition", `{"Type": "Pass"}`)
	require.Error(t, err)
	assert.Contains(t, stderr, "(InvalidDefinition)")
	w.assertNothingStored(t)
}

// A handler of aws-lambda-go called at once by an execution and by
// TestState's own engine: each caller gets its own output (its pooled
// buffer is not shared between the two engines' calls).
func TestTestStateSharesHandlerLocks(t *testing.T) {
	ctx := t.Context()
	type in struct{ N int }
	type out struct {
		N   int
		Pad string
	}
	echo := lambda.NewHandler(func(_ context.Context, v in) (out, error) {
		return out{N: v.N, Pad: strings.Repeat(strconv.Itoa(v.N%10), 512)}, nil
	})
	l, err := service.Open(ctx, service.Options{DB: openDB(t, filepath.Join(t.TempDir(), "keyflow.db")),
		Engine: engine.Options{Handlers: map[string]engine.Handler{"echo": echo}}})
	require.NoError(t, err)
	t.Cleanup(l.Close)
	task := `{"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:echo", "End": true}`
	sm, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Echo"), Type: types.StateMachineTypeExpress,
		Definition: aws.String(`{"StartAt": "T", "States": {"T": ` + task + `}}`), RoleArn: aws.String(testRole)})
	require.NoError(t, err)

	check := func(n int, got *string) error {
		want := fmt.Sprintf(`{"N":%d,"Pad":"%s"}`, n, strings.Repeat(strconv.Itoa(n%10), 512))
		if aws.ToString(got) != want {
			return fmt.Errorf("call %d got %.60s...", n, aws.ToString(got))
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 25 {
				n := g*100 + i
				o, err := l.StartSyncExecution(ctx, &sfn.StartSyncExecutionInput{StateMachineArn: sm.StateMachineArn, Input: aws.String(fmt.Sprintf(`{"N":%d}`, n))})
				if err == nil {
					err = check(n, o.Output)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 25 {
				n := 1000 + g*100 + i
				o, err := l.TestState(ctx, &sfn.TestStateInput{Definition: aws.String(task), RoleArn: aws.String(testRole), Input: aws.String(fmt.Sprintf(`{"N":%d}`, n))})
				if err == nil {
					err = check(n, o.Output)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// No definition, input or variables makes TestState panic or store
// anything; every answer is a status or an API error.
func FuzzTestState(f *testing.F) {
	for _, c := range testStateCases {
		f.Add(c.def, c.stateName, c.input, c.variables)
	}
	f.Add(`{"Type": "Task", "Resource": "`+doubleArn+`", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": 7}], "End": true}`, "", `{"n": 1}`, "")
	f.Add(`{"Type": "Choice", "Choices": [{"Next": "A"}]}`, "", `[]`, `{"a": {"b.$": "$"}}`)
	w := openTestState(f)
	f.Fuzz(func(t *testing.T, def, stateName, input, variables string) {
		in := &sfn.TestStateInput{Definition: aws.String(def), RoleArn: aws.String(testRole), Input: aws.String(input),
			InspectionLevel: types.InspectionLevelDebug}
		if stateName != "" {
			in.StateName = aws.String(stateName)
		}
		if variables != "" {
			in.Variables = aws.String(variables)
		}
		out, err := w.l.TestState(t.Context(), in)
		if err != nil {
			var ae interface{ ErrorCode() string }
			if !errors.As(err, &ae) {
				t.Fatalf("not an API error: %T %v", err, err)
			}
			return
		}
		switch out.Status {
		case types.TestExecutionStatusSucceeded, types.TestExecutionStatusFailed, types.TestExecutionStatusRetriable, types.TestExecutionStatusCaughtError:
		default:
			t.Fatalf("status %q", out.Status)
		}
	})
}
