package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/engine/api"
	"github.com/keyflow/keyflow/engine/service"
)

// The local credentials of the tests: made up, never an AWS key.
var testCreds = aws.Credentials{AccessKeyID: "AKIAKEYFLOWLOCALTEST", SecretAccessKey: "keyflow-local-test-secret"}

var timeType = reflect.TypeOf(time.Time{})

// fill sets every exported member of a shape, lists with one element, so
// that a round trip proves every member name and encoding.
func fill(v reflect.Value, depth int) {
	if depth > 6 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type().Elem() == timeType {
			t := time.UnixMilli(1700000000123).UTC()
			v.Set(reflect.ValueOf(&t))
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, depth+1)
		m.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), e)
		v.Set(m)
	case reflect.String:
		v.SetString("v-" + v.Type().Name())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int64, reflect.Int32, reflect.Int:
		v.SetInt(7)
	case reflect.Float64, reflect.Float32:
		v.SetFloat(0.5)
	}
}

// serve starts the handler over svc and returns a client of it.
func serve(t *testing.T, svc service.API, creds aws.Credentials) (*sfn.Client, *httptest.Server) {
	t.Helper()
	h, err := api.New(api.Options{Service: svc, Credentials: testCreds})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return newClient(srv.URL, creds), srv
}

func newClient(url string, creds aws.Credentials) *sfn.Client {
	return sfn.New(sfn.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.StaticCredentialsProvider{Value: creds},
		Retryer:      aws.NopRetryer{},
	}, api.WithoutHostPrefix)
}

// call invokes the client's method op with in, by reflection, so that one
// table row per operation needs no hand-written call.
func call(ctx context.Context, c *sfn.Client, op string, in reflect.Value) (any, error) {
	res := reflect.ValueOf(c).MethodByName(op).Call([]reflect.Value{reflect.ValueOf(ctx), in})
	err, _ := res[1].Interface().(error)
	return res[0].Interface(), err
}

func TestEveryOperationRoundTripsThroughTheSDKClient(t *testing.T) {
	msg := aws.String("the service's message")
	// One row per operation of service.API, each with an error that AWS
	// documents for it.
	rows := []struct {
		op  string
		err error
	}{
		{"CreateStateMachine", &types.InvalidDefinition{Message: msg}},
		{"UpdateStateMachine", &types.StateMachineDeleting{Message: msg}},
		{"DescribeStateMachine", &types.StateMachineDoesNotExist{Message: msg}},
		{"DescribeStateMachineForExecution", &types.ExecutionDoesNotExist{Message: msg}},
		{"ListStateMachines", &types.InvalidToken{Message: msg}},
		{"ListStateMachineVersions", &types.ValidationException{Message: msg, Reason: types.ValidationExceptionReasonCannotUpdateCompletedMapRun}},
		{"DeleteStateMachine", &types.InvalidArn{Message: msg}},
		{"ValidateStateMachineDefinition", &types.ValidationException{Message: msg}},
		{"StartExecution", &types.ExecutionAlreadyExists{Message: msg}},
		{"StartSyncExecution", &types.StateMachineTypeNotSupported{Message: msg}},
		{"DescribeExecution", &types.ExecutionDoesNotExist{Message: msg}},
		{"ListExecutions", &types.ResourceNotFound{Message: msg, ResourceName: aws.String("arn:aws:states:us-east-1:111111111111:mapRun:m/r")}},
		{"GetExecutionHistory", &types.InvalidToken{Message: msg}},
		{"StopExecution", &types.ExecutionDoesNotExist{Message: msg}},
		{"SendTaskSuccess", &types.TaskTimedOut{Message: msg}},
		{"SendTaskFailure", &types.TaskDoesNotExist{Message: msg}},
		{"SendTaskHeartbeat", &types.InvalidToken{Message: msg}},
		{"TestState", &types.InvalidExecutionInput{Message: msg}},
	}
	svc := newFake()
	client, _ := serve(t, svc, testCreds)
	h, err := api.New(api.Options{Service: svc, Credentials: testCreds})
	require.NoError(t, err)
	var ops []string
	for _, r := range rows {
		ops = append(ops, r.op)
	}
	assert.ElementsMatch(t, h.Operations(), ops, "one row per operation served")
	apiType := reflect.TypeOf((*service.API)(nil)).Elem()
	assert.Equal(t, apiType.NumMethod(), len(rows), "one row per method of service.API")

	ctx := context.Background()
	for _, r := range rows {
		t.Run(r.op, func(t *testing.T) {
			m, ok := apiType.MethodByName(r.op)
			require.True(t, ok, "service.API has %s", r.op)
			in := reflect.New(m.Type.In(1).Elem())
			fill(in.Elem(), 0)
			want := reflect.New(m.Type.Out(0).Elem())
			fill(want.Elem(), 0)
			want.Elem().FieldByName("ResultMetadata").Set(reflect.Zero(want.Elem().FieldByName("ResultMetadata").Type()))

			svc.answer(r.op, want.Interface(), nil)
			got, err := call(ctx, client, r.op, in)
			require.NoError(t, err)
			assert.Equal(t, in.Interface(), svc.received(r.op), "the service receives every member the client sent")
			gv := reflect.ValueOf(got).Elem()
			gv.FieldByName("ResultMetadata").Set(reflect.Zero(gv.FieldByName("ResultMetadata").Type()))
			assert.Equal(t, want.Interface(), got, "the client decodes every member the service answered")

			svc.answer(r.op, nil, r.err)
			_, err = call(ctx, client, r.op, in)
			require.Error(t, err)
			target := reflect.New(reflect.TypeOf(r.err))
			require.True(t, errors.As(err, target.Interface()), "%s: want %T, got %v", r.op, r.err, err)
			assert.Equal(t, r.err, target.Elem().Interface(), "the typed error and its members survive")
		})
	}
}

func TestUnknownErrorsAreInternalFailuresWithoutTheirCause(t *testing.T) {
	var logs bytes.Buffer
	svc := newFake()
	svc.err["DescribeExecution"] = errors.New("store: disk /var/secret/path is full")
	h, err := api.New(api.Options{Service: svc, Credentials: testCreds, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	_, err = newClient(srv.URL, testCreds).DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String("arn")})
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae))
	assert.Equal(t, "InternalFailure", ae.ErrorCode())
	assert.NotContains(t, err.Error(), "disk")
	assert.Contains(t, logs.String(), "disk /var/secret/path is full", "the cause goes to the log")
}

// post sends a raw request signed by the SDK's client, so that only the
// body or the target is wrong.
func TestProtocolErrors(t *testing.T) {
	svc := newFake()
	client, _ := serve(t, svc, testCreds)
	rows := []struct {
		name, target, body string
		code               string
	}{
		{"unknown operation", "AWSStepFunctions.DescribeActivity", `{}`, "UnknownOperationException"},
		{"another service's target", "DynamoDB_20120810.ListTables", `{}`, "UnknownOperationException"},
		{"not JSON", "AWSStepFunctions.DescribeExecution", `{"executionArn":`, "SerializationException"},
		{"not an object", "AWSStepFunctions.DescribeExecution", `[1]`, "SerializationException"},
		{"a member of the wrong type", "AWSStepFunctions.DescribeExecution", `{"executionArn": 5}`, "SerializationException"},
		{"an integer out of range", "AWSStepFunctions.ListExecutions", `{"maxResults": 99999999999}`, "SerializationException"},
		{"trailing data", "AWSStepFunctions.ListExecutions", `{} {}`, "SerializationException"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			_, err := client.ListStateMachines(context.Background(), &sfn.ListStateMachinesInput{}, func(o *sfn.Options) {
				o.APIOptions = append(o.APIOptions, rewrite(r.target, r.body))
			})
			var ae smithy.APIError
			require.True(t, errors.As(err, &ae), "%v", err)
			assert.Equal(t, r.code, ae.ErrorCode())
		})
	}
}

func TestNewRefusesMissingPieces(t *testing.T) {
	_, err := api.New(api.Options{Credentials: testCreds})
	assert.ErrorContains(t, err, "api: no service")
	_, err = api.New(api.Options{Service: newFake(), Credentials: aws.Credentials{AccessKeyID: "AKIA"}})
	assert.ErrorContains(t, err, "secret access key")
}

func TestOnlyPOSTIsServed(t *testing.T) {
	h, err := api.New(api.Options{Service: newFake(), Credentials: testCreds})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "UnknownOperationException", rec.Header().Get("X-Amzn-ErrorType"))
}

func TestABodyTooLargeIsRefusedUnread(t *testing.T) {
	h, err := api.New(api.Options{Service: newFake(), Credentials: testCreds})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", io.LimitReader(zeros{}, api.MaxBodyBytes+1))
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}
