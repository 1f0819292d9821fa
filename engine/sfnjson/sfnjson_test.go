package sfnjson

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fill sets every exported member of a shape, recursively, so that a round
// trip through the real client proves every member name and encoding.
func fill(v reflect.Value, depth int) {
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
		if depth > 4 {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth)
			}
		}
	case reflect.String:
		v.SetString("v-" + v.Type().Name())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int64, reflect.Int32, reflect.Int:
		v.SetInt(7)
	}
}

func TestHistoryRoundTripsThroughTheSDKClient(t *testing.T) {
	var events []types.HistoryEvent
	ht := reflect.TypeOf(types.HistoryEvent{})
	for i := 0; i < ht.NumField(); i++ {
		f := ht.Field(i)
		if !f.IsExported() || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct || f.Type.Elem() == timeType {
			continue
		}
		ev := types.HistoryEvent{Id: int64(len(events) + 1), PreviousEventId: int64(len(events)), Type: types.HistoryEventTypePassStateEntered}
		ts := time.UnixMilli(1700000000000 + int64(i)).UTC()
		ev.Timestamp = &ts
		fill(reflect.ValueOf(&ev).Elem().Field(i), 0)
		events = append(events, ev)
	}
	require.Greater(t, len(events), 30, "every detail shape of HistoryEvent is exercised")

	body, err := Marshal(&sfn.GetExecutionHistoryOutput{Events: events, NextToken: aws.String("tok")})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		assert.Equal(t, "AWSStepFunctions.GetExecutionHistory", r.Header.Get("X-Amz-Target"))
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write(body)
	}))
	defer srv.Close()

	client := sfn.New(sfn.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  aws.AnonymousCredentials{},
	})
	out, err := client.GetExecutionHistory(context.Background(), &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String("arn")})
	require.NoError(t, err)
	assert.Equal(t, "tok", aws.ToString(out.NextToken))
	require.Len(t, out.Events, len(events))
	for i := range events {
		assert.Equal(t, events[i], out.Events[i], "event %d", i+1)
	}
}

func TestMarshalOmitsUnsetMembers(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)
	b, err := Marshal(types.HistoryEvent{Id: 1, Timestamp: &ts, Type: types.HistoryEventTypeExecutionStarted,
		ExecutionStartedEventDetails: &types.ExecutionStartedEventDetails{Input: aws.String(`{"a":1}`)}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":1,"previousEventId":0,"timestamp":1767323045.678,"type":"ExecutionStarted",
		"executionStartedEventDetails":{"input":"{\"a\":1}"}}`, string(b))
}
