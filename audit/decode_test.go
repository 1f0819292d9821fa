package audit_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/keyflow/keyflow/audit"
)

func TestDecodeHistory(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
		n        int
	}{
		{"page", `{"events":[{"id":1,"timestamp":1767258000.123,"type":"ExecutionStarted"}],"nextToken":null}`, true, 1},
		{"array", `[{"id":1,"timestamp":"2026-01-01T09:00:00Z","type":"ExecutionStarted"}]`, true, 1},
		{"empty page", `{"events":[]}`, true, 0},
		{"not json", `{"events":`, false, 0},
		{"bad timestamp", `[{"id":1,"timestamp":"yesterday"}]`, false, 0},
		{"huge timestamp", `[{"id":1,"timestamp":1e300}]`, false, 0},
		{"wrong type", `[{"id":"one"}]`, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := audit.DecodeHistory(strings.NewReader(c.in))
			if (err == nil) != c.ok || len(ev) != c.n {
				t.Fatalf("DecodeHistory = %d events, %v; want ok=%v, %d", len(ev), err, c.ok, c.n)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "audit: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	ev, _ := audit.DecodeHistory(strings.NewReader(cases[0].in))
	if got := ev[0].Timestamp.Format("2006-01-02T15:04:05.000Z07:00"); got != "2026-01-01T09:00:00.123Z" {
		t.Errorf("timestamp %s", got)
	}
}

// TestReversedHistory: GetExecutionHistory with reverseOrder gives the
// newest event first; the record is the same.
func TestReversedHistory(t *testing.T) {
	f, err := os.Open("testdata/histories/lifecycle-deactivate-in-use.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := audit.DecodeHistory(f)
	if err != nil {
		t.Fatal(err)
	}
	h := audit.History{ExecutionArn: "arn:aws:states:us-east-1:1:execution:keyflow-lifecycle:x", Events: events}
	want, _ := audit.Build(h)
	h.Events = slices.Clone(events)
	slices.Reverse(h.Events)
	got, _ := audit.Build(h)
	a, _ := json.Marshal(want)
	b, _ := json.Marshal(got)
	if string(a) != string(b) || len(got.Breaches) != 1 {
		t.Errorf("reversed history gives another record:\n%s\n%s", b, a)
	}
}
