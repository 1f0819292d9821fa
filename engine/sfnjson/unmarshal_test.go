package sfnjson_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/engine/service"
	"github.com/keyflow/keyflow/engine/sfnjson"
)

// fillShape sets every exported member of a shape (lists and maps with one
// element, timestamps to the millisecond as the wire keeps them).
func fillShape(v reflect.Value, depth int) {
	if depth > 6 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillShape(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.UnixMilli(1767323045678).UTC()))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() && v.Type().Field(i).Name != "ResultMetadata" {
				fillShape(v.Field(i), depth)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillShape(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		e := reflect.New(v.Type().Elem()).Elem()
		fillShape(e, depth+1)
		m.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), e)
		v.Set(m)
	case reflect.String:
		v.SetString("v-" + v.Type().Name())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int64, reflect.Int32, reflect.Int:
		v.SetInt(-7)
	case reflect.Float64, reflect.Float32:
		v.SetFloat(0.25)
	}
}

// Every input and output shape of service.API, and the history event with
// its timestamps and enums, decodes from what sfnjson writes to the same
// value: Unmarshal is Marshal's inverse.
func TestUnmarshalInvertsMarshal(t *testing.T) {
	apiType := reflect.TypeOf((*service.API)(nil)).Elem()
	shapes := []reflect.Type{reflect.TypeOf(types.HistoryEvent{}), reflect.TypeOf(sfn.GetExecutionHistoryOutput{})}
	for i := 0; i < apiType.NumMethod(); i++ {
		m := apiType.Method(i).Type
		shapes = append(shapes, m.In(1).Elem(), m.Out(0).Elem())
	}
	for _, st := range shapes {
		t.Run(st.Name(), func(t *testing.T) {
			want := reflect.New(st)
			fillShape(want.Elem(), 0)
			b, err := sfnjson.Marshal(want.Interface())
			require.NoError(t, err)
			got := reflect.New(st)
			require.NoError(t, sfnjson.Unmarshal(b, got.Interface()), "%s", b)
			assert.Equal(t, want.Interface(), got.Interface())
		})
	}
}

func TestUnmarshal(t *testing.T) {
	rows := []struct {
		name, body string
		ok         bool
		want       sfn.ListExecutionsInput
	}{
		{name: "empty body", body: "", ok: true},
		{name: "empty object", body: "{}", ok: true},
		{name: "members and enum", body: `{"stateMachineArn":"arn:x","statusFilter":"RUNNING","maxResults":3,"nextToken":null}`, ok: true,
			want: sfn.ListExecutionsInput{StateMachineArn: ptr("arn:x"), StatusFilter: types.ExecutionStatusRunning, MaxResults: 3}},
		{name: "names are exact, as on the wire", body: `{"StateMachineArn":"arn:x","statusfilter":"RUNNING"}`, ok: true},
		{name: "unknown members are ignored", body: `{"future":{"a":[1]}}`, ok: true},
		{name: "a fraction for an integer", body: `{"maxResults":1.5}`},
		{name: "a string for an integer", body: `{"maxResults":"1"}`},
		{name: "an object for a string", body: `{"stateMachineArn":{}}`},
		{name: "a list", body: `[]`},
		{name: "a string", body: `"x"`},
		{name: "broken", body: `{"a":`},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			var got sfn.ListExecutionsInput
			err := sfnjson.Unmarshal([]byte(r.body), &got)
			if !r.ok {
				require.Error(t, err)
				assert.Regexp(t, `^sfnjson: `, err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, r.want, got)
		})
	}
}

func TestUnmarshalTimestamps(t *testing.T) {
	rows := []struct {
		body string
		want time.Time
		ok   bool
	}{
		{`{"timestamp":1767323045.678}`, time.UnixMilli(1767323045678).UTC(), true},
		{`{"timestamp":1767323045}`, time.Unix(1767323045, 0).UTC(), true},
		{`{"timestamp":"2026-01-02T03:04:05.678Z"}`, time.UnixMilli(1767323045678).UTC(), true},
		{`{"timestamp":1e300}`, time.Time{}, false},
		{`{"timestamp":"yesterday"}`, time.Time{}, false},
		{`{"timestamp":true}`, time.Time{}, false},
	}
	for _, r := range rows {
		var ev types.HistoryEvent
		err := sfnjson.Unmarshal([]byte(r.body), &ev)
		if !r.ok {
			assert.Error(t, err, r.body)
			continue
		}
		require.NoError(t, err, r.body)
		assert.Equal(t, r.want, *ev.Timestamp, r.body)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"executionArn":"a","maxResults":3,"reverseOrder":true,"includeExecutionData":false}`))
	f.Add([]byte(`{"events":[{"timestamp":1.5,"type":"PassStateEntered","id":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var in sfn.GetExecutionHistoryInput
		_ = sfnjson.Unmarshal(b, &in)
		var out sfn.GetExecutionHistoryOutput
		_ = sfnjson.Unmarshal(b, &out)
	})
}

func ptr(s string) *string { return &s }
