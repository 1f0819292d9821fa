package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
)

// conformanceCase is one file of testdata/conformance: a definition, an
// input, mocked task responses, and what AWS does with them.
type conformanceCase struct {
	Comment    string                     `json:"comment"`
	Definition json.RawMessage            `json:"definition"`
	Input      json.RawMessage            `json:"input"`
	Mocks      map[string]json.RawMessage `json:"mocks"`
	Expect     struct {
		Status        string          `json:"status"`
		Output        json.RawMessage `json:"output"`
		Error         *string         `json:"error"`
		Cause         *string         `json:"cause"`
		CauseContains string          `json:"causeContains"`
	} `json:"expect"`
	History []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"history"`
	ElapsedSeconds *float64 `json:"elapsedSeconds"`
	CompileError   string   `json:"compileError"`
	// KnownDeviation says why keyflow is known to differ from AWS on this
	// case. The case still runs and must still fail: the day it passes,
	// the test fails and asks for the marker to go.
	KnownDeviation string `json:"knownDeviation"`
}

var conformanceStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestConformance(t *testing.T) {
	root := filepath.Join("testdata", "conformance")
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no conformance cases")
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.ToSlash(f), filepath.ToSlash(root)+"/"), ".json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if why := knownDeviation(t, f); why != "" {
				// Run the case on a recorder: its failures are expected.
				rec := &deviationT{}
				rec.run(func(tb *deviationT) { runCase(tb, f) })
				if !rec.failed {
					t.Fatalf("known deviation %q no longer shows: the case passes; drop \"knownDeviation\" from %s", why, f)
				}
				t.Logf("known deviation from AWS (%s): %s", why, strings.Join(rec.msgs, "; "))
				return
			}
			runCase(t, f)
		})
	}
}

// knownDeviation reads the case's "knownDeviation" marker.
func knownDeviation(t *testing.T, file string) string {
	doc, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c conformanceCase
	if err := json.Unmarshal(doc, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return c.KnownDeviation
}

// caseT is what runCase needs of a testing.T, so that a case with a known
// deviation can run on a recorder.
type caseT interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Fatal(args ...any)
}

// deviationT records failures instead of reporting them; Fatal* ends the
// case as testing.T does, by leaving the goroutine.
type deviationT struct {
	failed bool
	msgs   []string
}

func (d *deviationT) Helper() {}
func (d *deviationT) Errorf(format string, args ...any) {
	d.failed = true
	d.msgs = append(d.msgs, fmt.Sprintf(format, args...))
}
func (d *deviationT) Fatalf(format string, args ...any) {
	d.Errorf(format, args...)
	runtime.Goexit()
}
func (d *deviationT) Fatal(args ...any) {
	d.failed = true
	d.msgs = append(d.msgs, fmt.Sprint(args...))
	runtime.Goexit()
}

// run calls fn on its own goroutine, so that Fatal can end it.
func (d *deviationT) run(fn func(*deviationT)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(d)
	}()
	<-done
}

func runCase(t caseT, file string) {
	doc, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c conformanceCase
	if err := json.Unmarshal(doc, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	opts := engine.Options{Clock: engine.NewVirtualClock(conformanceStart)}
	if len(c.Mocks) > 0 {
		mc, err := engine.NewMockCase(c.Mocks)
		if err != nil {
			t.Fatal(err)
		}
		opts.Mocks = mc
	}
	def, err := states.Parse(c.Definition)
	var m *engine.Machine
	if err == nil {
		m, err = engine.New(opts).Compile(def, "Conformance")
	}
	if c.CompileError != "" {
		if err == nil {
			t.Fatalf("compiled; want an error containing %q", c.CompileError)
		}
		if !strings.Contains(err.Error(), c.CompileError) {
			t.Fatalf("error %q does not contain %q", err, c.CompileError)
		}
		return
	}
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	var input any
	if len(c.Input) > 0 {
		input = json.RawMessage(c.Input)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := m.Run(ctx, "", input)
	checkResult(t, &c, res)
	checkHistoryShape(t, res)
	if c.History != nil {
		var got []string
		for _, e := range res.History() {
			got = append(got, string(e.Type))
		}
		ok := len(got) == len(c.History)
		for i := 0; ok && i < len(got); i++ {
			if got[i] != c.History[i].Type {
				ok = false
			}
			if c.History[i].Name != "" {
				e := res.History()[i]
				var n string
				if e.StateEnteredEventDetails != nil && e.StateEnteredEventDetails.Name != nil {
					n = *e.StateEnteredEventDetails.Name
				}
				if e.StateExitedEventDetails != nil && e.StateExitedEventDetails.Name != nil {
					n = *e.StateExitedEventDetails.Name
				}
				if n != c.History[i].Name {
					t.Errorf("event %d (%s) names %q, want %q", i+1, got[i], n, c.History[i].Name)
				}
			}
		}
		if !ok {
			var want []string
			for _, h := range c.History {
				want = append(want, h.Type)
			}
			t.Errorf("history:\n got %v\nwant %v", got, want)
		}
	}
	if c.ElapsedSeconds != nil && len(res.History()) > 0 {
		first, last := res.History()[0].Timestamp, res.History()[len(res.History())-1].Timestamp
		if got := last.Sub(*first).Seconds(); got != *c.ElapsedSeconds {
			t.Errorf("elapsed %v virtual seconds, want %v", got, *c.ElapsedSeconds)
		}
	}
}

func checkResult(t caseT, c *conformanceCase, res *engine.Result) {
	t.Helper()
	if res.Status != c.Expect.Status {
		t.Fatalf("status %s (%s: %s), want %s", res.Status, res.Error, res.Cause, c.Expect.Status)
	}
	if c.Expect.Output != nil {
		want, err := data.Parse(c.Expect.Output)
		if err != nil {
			t.Fatal(err)
		}
		if !data.Equal(res.Output, want) {
			got, _ := data.Marshal(res.Output)
			t.Errorf("output %s, want %s", got, c.Expect.Output)
		}
	}
	if c.Expect.Error != nil && res.Error != *c.Expect.Error {
		t.Errorf("error %q, want %q (cause %q)", res.Error, *c.Expect.Error, res.Cause)
	}
	if c.Expect.Cause != nil && res.Cause != *c.Expect.Cause {
		t.Errorf("cause %q, want %q", res.Cause, *c.Expect.Cause)
	}
	if c.Expect.CauseContains != "" && !strings.Contains(res.Cause, c.Expect.CauseContains) {
		t.Errorf("cause %q does not contain %q", res.Cause, c.Expect.CauseContains)
	}
}

// checkHistoryShape holds for every history: ids 1..n, each previous id
// pointing backwards, timestamps never going back.
func checkHistoryShape(t caseT, res *engine.Result) {
	t.Helper()
	for i, e := range res.History() {
		if e.Id != int64(i+1) {
			t.Fatalf("event %d has id %d", i+1, e.Id)
		}
		if e.PreviousEventId < 0 || e.PreviousEventId >= e.Id {
			t.Errorf("event %d (%s) has previous id %d", e.Id, e.Type, e.PreviousEventId)
		}
		if i > 0 && e.Timestamp.Before(*res.History()[i-1].Timestamp) {
			t.Errorf("event %d (%s) is earlier than the one before", e.Id, e.Type)
		}
	}
	if len(res.History()) > 0 && res.History()[0].PreviousEventId != 0 {
		t.Errorf("ExecutionStarted has previous id %d", res.History()[0].PreviousEventId)
	}
}
