package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/states"
)

// memJournal keeps executions in memory and a copy of the history after
// every commit: each copy is a point where a process could have died.
type memJournal struct {
	mu        sync.Mutex
	events    map[string][]types.HistoryEvent
	status    map[string]string
	snapshots [][]types.HistoryEvent
}

func newMemJournal() *memJournal {
	return &memJournal{events: map[string][]types.HistoryEvent{}, status: map[string]string{}}
}

func (j *memJournal) Start(_ context.Context, s *engine.StartRecord) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.status[s.ExecutionArn]; ok {
		return &engine.APIError{Name: engine.ErrExecutionAlreadyExists.Name, Message: s.ExecutionArn}
	}
	j.status[s.ExecutionArn] = engine.StatusRunning
	return nil
}

func (j *memJournal) Commit(_ context.Context, c *engine.Commit) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	evs := j.events[c.ExecutionArn]
	for _, e := range c.Events {
		if e.Id != int64(len(evs)+1) {
			return fmt.Errorf("commit of event %d after %d", e.Id, len(evs))
		}
		evs = append(evs, e)
	}
	j.events[c.ExecutionArn] = evs
	if c.Result != nil {
		j.status[c.ExecutionArn] = c.Result.Status
	}
	if len(c.Events) > 0 {
		j.snapshots = append(j.snapshots, slices.Clone(evs))
	}
	return nil
}

// durableDef has every kind of wait and call a replay must get right: a
// task, a long Wait, a retried task in a Map, a Parallel with a token
// wait beside a Wait, and a Choice on a task's result.
const durableDef = `{
  "StartAt": "Create",
  "States": {
    "Create": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:create", "ResultPath": "$.created", "Next": "Hold"},
    "Hold": {"Type": "Wait", "Seconds": 86400, "Next": "Each"},
    "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "ResultPath": "$.each",
      "ItemProcessor": {"StartAt": "Flaky", "States": {
        "Flaky": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:flaky",
          "Retry": [{"ErrorEquals": ["Flaked"], "IntervalSeconds": 30, "MaxAttempts": 2}], "End": true}}},
      "Next": "Both"},
    "Both": {"Type": "Parallel", "ResultPath": "$.both", "Next": "Decide", "Branches": [
      {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "notify", "Payload": {"token.$": "$$.Task.Token"}}, "TimeoutSeconds": 3600, "End": true}}},
      {"StartAt": "Pause", "States": {"Pause": {"Type": "Wait", "Seconds": 600, "Next": "Check"},
        "Check": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:create", "End": true}}}]},
    "Decide": {"Type": "Choice", "Choices": [{"Variable": "$.both[0].decision", "StringEquals": "approve", "Next": "Done"}], "Default": "Rejected"},
    "Rejected": {"Type": "Fail", "Error": "Rejected"},
    "Done": {"Type": "Succeed"}
  }
}`

type durableRig struct {
	journal *memJournal
	calls   atomic.Int64
	// flaked is the outside world the flaky task acts on: it outlives a
	// process, so a resumed rig shares it.
	flaked *sync.Map
	e      *engine.Engine
	m      *engine.Machine
}

func newDurableRig(t *testing.T, j *memJournal, clock engine.Clock, world *sync.Map) *durableRig {
	t.Helper()
	r := &durableRig{journal: j, flaked: world}
	count := func(fn func([]byte) ([]byte, error)) engine.Handler {
		return engine.HandlerFunc(func(_ context.Context, in []byte) ([]byte, error) {
			r.calls.Add(1)
			return fn(in)
		})
	}
	var e *engine.Engine
	e = engine.New(engine.Options{
		Clock:       clock,
		Journal:     j,
		TokenSecret: []byte("test secret"),
		Handlers: map[string]engine.Handler{
			"create": count(func([]byte) ([]byte, error) { return []byte(`{"keyId":"AKIAEXAMPLE"}`), nil }),
			"flaky": count(func(in []byte) ([]byte, error) {
				if _, again := r.flaked.LoadOrStore(string(in), true); !again && string(in) == "2" {
					return nil, Flaked{}
				}
				return in, nil
			}),
			"notify": count(func([]byte) ([]byte, error) { return []byte(`{}`), nil }),
		},
		// The approver answers at once: on virtual time an answer from
		// another goroutine would come at whatever virtual time the
		// scheduler had reached, which no replay could know.
		OnTaskToken: func(token string, _ any) {
			if err := e.SendTaskSuccess(token, []byte(`{"decision":"approve"}`)); err != nil {
				t.Errorf("answer: %v", err)
			}
		},
	})
	r.e = e
	d, err := states.Parse([]byte(durableDef))
	if err != nil {
		t.Fatal(err)
	}
	if r.m, err = e.Compile(d, "Durable"); err != nil {
		t.Fatal(err)
	}
	return r
}

type Flaked struct{}

func (Flaked) Error() string { return "flaked" }

// calls is how many handler calls the stored history shows as made.
func callsIn(evs []types.HistoryEvent) int64 {
	var n int64
	for _, e := range evs {
		switch e.Type {
		case types.HistoryEventTypeLambdaFunctionSucceeded, types.HistoryEventTypeLambdaFunctionFailed,
			types.HistoryEventTypeTaskSubmitted:
			n++
		}
	}
	return n
}

func sameHistory(t *testing.T, label string, got, want []types.HistoryEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", label, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Id != w.Id || g.PreviousEventId != w.PreviousEventId || g.Type != w.Type || !g.Timestamp.Equal(*w.Timestamp) {
			t.Fatalf("%s: event %d is %d<-%d %s at %s, want %d<-%d %s at %s", label, i+1,
				g.Id, g.PreviousEventId, g.Type, g.Timestamp, w.Id, w.PreviousEventId, w.Type, w.Timestamp)
		}
	}
}

// TestDurableResumeFromEveryCommit: an execution run through once leaves a
// commit at every point where a process could die. Resumed from each one
// in a new engine, it ends with the same history (ids, links, types and
// times) and calls again only the tasks whose outcome was not committed.
func TestDurableResumeFromEveryCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	j := newMemJournal()
	world := &sync.Map{}
	full := newDurableRig(t, j, engine.NewVirtualClock(t0), world)
	res := full.m.Run(ctx, "once", map[string]any{"items": []any{1, 2, 3}})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("%s: %s %s", res.Status, res.Error, res.Cause)
	}
	want := res.History()
	sameHistory(t, "journal", j.events[res.ExecutionArn], want)
	if len(j.snapshots) < 5 {
		t.Fatalf("only %d commits", len(j.snapshots))
	}
	total := full.calls.Load()

	for i, snap := range j.snapshots {
		if snap[len(snap)-1].Type == types.HistoryEventTypeExecutionSucceeded {
			continue
		}
		t.Run(fmt.Sprintf("after_event_%d", len(snap)), func(t *testing.T) {
			j2 := newMemJournal()
			j2.events[res.ExecutionArn] = slices.Clone(snap)
			j2.status[res.ExecutionArn] = engine.StatusRunning
			// The world as it was at the commit, the process dying
			// right after it: item 2 has flaked if its failure is there.
			w := &sync.Map{}
			if slices.ContainsFunc(snap, func(e types.HistoryEvent) bool { return e.Type == types.HistoryEventTypeLambdaFunctionFailed }) {
				w.Store("2", true)
			}
			r := newDurableRig(t, j2, engine.NewVirtualClock(t0), w)
			x, err := r.m.Resume(ctx, "once", []byte(`{"items":[1,2,3]}`), res.StartDate, slices.Clone(snap))
			if err != nil {
				t.Fatal(err)
			}
			got := x.Wait(ctx)
			if got == nil || got.Status != engine.StatusSucceeded {
				t.Fatalf("resumed from commit %d: %+v", i, got)
			}
			sameHistory(t, "resumed", got.History(), want)
			sameHistory(t, "journal", j2.events[res.ExecutionArn], want)
			if want, got := total-callsIn(snap), r.calls.Load(); got != want {
				t.Errorf("%d handler calls after resuming, want %d (the %d not committed)", got, want, want)
			}
		})
	}
}

// TestDurableRealClockResume: on a real (here fast) clock, an execution
// resumed in its long Wait fires the Wait at the stored deadline, not a
// full Wait after the restart.
func TestDurableRealClockResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	clock := engine.NewScaledClock(100000) // a day in under a second
	j := newMemJournal()
	r := newDurableRig(t, j, clock, &sync.Map{})
	x, err := r.m.Start(ctx, "fast", map[string]any{"items": []any{1}})
	if err != nil {
		t.Fatal(err)
	}
	res := x.Wait(ctx)
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("%s %s %s", res.Status, res.Error, res.Cause)
	}
	hist := res.History()
	var waitEntered, waitExited time.Time
	for _, e := range hist {
		if e.StateEnteredEventDetails != nil && *e.StateEnteredEventDetails.Name == "Hold" {
			waitEntered = *e.Timestamp
		}
		if e.StateExitedEventDetails != nil && *e.StateExitedEventDetails.Name == "Hold" {
			waitExited = *e.Timestamp
		}
	}
	if d := waitExited.Sub(waitEntered); d < 24*time.Hour || d > 25*time.Hour {
		t.Fatalf("the day's Wait took %s of clock time", d)
	}
	// Resume from the commit made while it waited: the Wait ends at its
	// stored deadline, already past on this clock.
	var parked []types.HistoryEvent
	for _, s := range j.snapshots {
		if s[len(s)-1].Type == types.HistoryEventTypeWaitStateEntered {
			parked = s
			break
		}
	}
	if parked == nil {
		t.Fatal("no commit while the Wait waited")
	}
	j2 := newMemJournal()
	j2.events[res.ExecutionArn] = slices.Clone(parked)
	r2 := newDurableRig(t, j2, clock, &sync.Map{})
	x2, err := r2.m.Resume(ctx, "fast", []byte(`{"items":[1]}`), res.StartDate, parked)
	if err != nil {
		t.Fatal(err)
	}
	res2 := x2.Wait(ctx)
	if res2.Status != engine.StatusSucceeded {
		t.Fatalf("%s %s %s", res2.Status, res2.Error, res2.Cause)
	}
	for _, e := range res2.History() {
		if e.StateExitedEventDetails != nil && *e.StateExitedEventDetails.Name == "Hold" {
			if e.Timestamp.Sub(waitEntered) > 24*time.Hour+time.Hour {
				t.Errorf("resumed Wait ended %s after it began", e.Timestamp.Sub(waitEntered))
			}
		}
	}
}

// TestDurableStartIsTheJournals: the journal decides name uniqueness.
func TestDurableStartIsTheJournals(t *testing.T) {
	j := newMemJournal()
	r := newDurableRig(t, j, engine.NewVirtualClock(t0), &sync.Map{})
	ctx := context.Background()
	if res := r.m.Run(ctx, "one", map[string]any{"items": []any{}}); res.Status != engine.StatusSucceeded {
		t.Fatalf("%+v", res)
	}
	_, err := r.m.Start(ctx, "one", map[string]any{"items": []any{}})
	var ae *engine.APIError
	if !errors.As(err, &ae) || !errors.Is(err, engine.ErrExecutionAlreadyExists) {
		t.Fatalf("second start: %v", err)
	}
}
