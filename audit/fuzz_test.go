package audit

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzBuild feeds arbitrary event JSON to DecodeHistory and Build. Build
// must never panic (it reads histories from anywhere), a record must never
// carry a secret-like string whatever the history holds, and a record must
// always chain and verify.
func FuzzBuild(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`[{"id":1,"type":"ExecutionStarted","timestamp":1e9}]`))
	f.Add([]byte(`{"events":[{"id":2,"previousEventId":2,"type":"LambdaFunctionSucceeded","lambdaFunctionSucceededEventDetails":{"output":"{\"result\":\"Deleted\"}"}},` +
		`{"id":2,"previousEventId":1,"type":"LambdaFunctionScheduled","lambdaFunctionScheduledEventDetails":{"resource":"keyflow-delete-key","input":"{}"}}]}`))
	f.Add([]byte(`{"events":[{"id":1,"type":"TaskScheduled","taskScheduledEventDetails":{"resource":"invoke.waitForTaskToken","resourceType":"lambda","parameters":"{\"FunctionName\":3}"}},` +
		`{"id":3,"previousEventId":1,"type":"TaskTimedOut","taskTimedOutEventDetails":{}},{"id":4,"type":"WaitStateExited"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := DecodeHistory(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		rec, err := Build(History{ExecutionArn: "arn:aws:states:us-east-1:1:execution:keyflow-lifecycle:x", Events: events})
		if err != nil {
			return
		}
		walkStrings(reflect.ValueOf(rec).Elem(), "", 0, func(path, s string) {
			if LooksLikeSecret(s) {
				t.Errorf("record field %s holds a secret-like string %q", path, s)
			}
		})
		if _, err := Chain("", []*Record{rec}); err != nil {
			t.Fatal(err)
		}
		if err := Verify([]*Record{rec}); err != nil {
			t.Fatal(err)
		}
	})
}
