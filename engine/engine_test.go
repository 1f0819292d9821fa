package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func machine(t testing.TB, opts engine.Options, def string) *engine.Machine {
	t.Helper()
	d, err := states.Parse([]byte(def))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if opts.Clock == nil {
		opts.Clock = engine.NewVirtualClock(t0)
	}
	m, err := engine.New(opts).Compile(d, "Test")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return m
}

func run(t testing.TB, m *engine.Machine, input string) *engine.Result {
	t.Helper()
	var in any
	if input != "" {
		in = json.RawMessage(input)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := m.Run(ctx, "", in)
	if res == nil {
		t.Fatal("no result")
	}
	return res
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := data.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func eventsOf(res *engine.Result, typ types.HistoryEventType) []types.HistoryEvent {
	var out []types.HistoryEvent
	for _, e := range res.History() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func mocks(t testing.TB, m map[string]string) *engine.MockCase {
	t.Helper()
	raw := map[string]json.RawMessage{}
	for k, v := range m {
		raw[k] = json.RawMessage(v)
	}
	mc, err := engine.NewMockCase(raw)
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// TestRetryTiming checks the back-off on the virtual clock: IntervalSeconds
// 2, BackoffRate 2, MaxDelaySeconds 5 waits 2, 4, then 5 seconds.
func TestRetryTiming(t *testing.T) {
	def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
	  "Parameters":{"FunctionName":"f"},
	  "Retry":[{"ErrorEquals":["Boom"],"IntervalSeconds":2,"BackoffRate":2,"MaxDelaySeconds":5,"MaxAttempts":3}],
	  "End":true}}}`
	m := machine(t, engine.Options{Mocks: mocks(t, map[string]string{
		"T": `{"0-2":{"Throw":{"Error":"Boom","Cause":"x"}},"3":{"Return":{"ok":true}}}`,
	})}, def)
	res := run(t, m, "")
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("status %s %s %s", res.Status, res.Error, res.Cause)
	}
	sched := eventsOf(res, types.HistoryEventTypeTaskScheduled)
	if len(sched) != 4 {
		t.Fatalf("%d TaskScheduled events, want 4", len(sched))
	}
	want := []time.Duration{0, 2 * time.Second, 6 * time.Second, 11 * time.Second}
	for i, e := range sched {
		if got := e.Timestamp.Sub(t0); got != want[i] {
			t.Errorf("attempt %d scheduled at +%v, want +%v", i, got, want[i])
		}
	}
	if got := res.StopDate.Sub(res.StartDate); got != 11*time.Second {
		t.Errorf("execution took %v, want 11s", got)
	}
}

func TestRetryExhaustedThenCatch(t *testing.T) {
	def := `{"StartAt":"T","States":{
	  "T":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:123456789012:function:f",
	    "Retry":[{"ErrorEquals":["States.ALL"],"MaxAttempts":2,"IntervalSeconds":1}],
	    "Catch":[{"ErrorEquals":["States.ALL"],"ResultPath":"$.err","Next":"Done"}],"End":true},
	  "Done":{"Type":"Pass","End":true}}}`
	calls := 0
	h := lambda.NewHandler(func(ctx context.Context, in map[string]any) (map[string]any, error) {
		calls++
		return nil, errors.New("boom")
	})
	m := machine(t, engine.Options{Handlers: map[string]engine.Handler{"f": h}}, def)
	res := run(t, m, `{"a":1}`)
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("status %s %s %s", res.Status, res.Error, res.Cause)
	}
	if calls != 3 {
		t.Errorf("%d calls, want 3", calls)
	}
	want := `{"a":1,"err":{"Cause":"{\"errorMessage\":\"boom\",\"errorType\":\"errorString\"}","Error":"errorString"}}`
	if got := jsonOf(t, res.Output); got != want {
		t.Errorf("output %s\nwant   %s", got, want)
	}
	if n := len(eventsOf(res, types.HistoryEventTypeLambdaFunctionFailed)); n != 3 {
		t.Errorf("%d LambdaFunctionFailed events, want 3", n)
	}
	if n := len(eventsOf(res, types.HistoryEventTypeTaskStateExited)); n != 1 {
		t.Errorf("%d TaskStateExited events, want 1", n)
	}
	if got := res.StopDate.Sub(res.StartDate); got != 3*time.Second {
		t.Errorf("took %v, want 3s (1s + 2s back-off)", got)
	}
}

type quotaExceeded struct{ msg string }

func (e *quotaExceeded) Error() string { return e.msg }

func TestHandlerErrorNames(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		errName string
	}{
		{"errors.New", errors.New("x"), "errorString"},
		{"fmt.Errorf wrap", fmt.Errorf("w: %w", errors.New("x")), "wrapError"},
		{"pointer type", &quotaExceeded{"over"}, "quotaExceeded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := lambda.NewHandler(func() error { return c.err })
			def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"f","Payload":{}},"End":true}}}`
			res := run(t, machine(t, engine.Options{Handlers: map[string]engine.Handler{"f": h}}, def), "")
			if res.Status != engine.StatusFailed || res.Error != c.errName {
				t.Fatalf("got %s %q, want FAILED %q", res.Status, res.Error, c.errName)
			}
			var cause map[string]string
			if err := json.Unmarshal([]byte(res.Cause), &cause); err != nil || cause["errorType"] != c.errName || cause["errorMessage"] != c.err.Error() {
				t.Errorf("cause %q", res.Cause)
			}
		})
	}
}

func TestLambdaInvokeWrapsResult(t *testing.T) {
	h := lambda.NewHandler(func(in map[string]any) (map[string]any, error) {
		return map[string]any{"echo": in["v"]}, nil
	})
	def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
	  "Parameters":{"FunctionName":"arn:aws:lambda:us-east-1:123456789012:function:f","Payload":{"v.$":"$.v"}},
	  "ResultSelector":{"p.$":"$.Payload","code.$":"$.StatusCode"},"End":true}}}`
	res := run(t, machine(t, engine.Options{Handlers: map[string]engine.Handler{"f": h}}, def), `{"v":7}`)
	if got := jsonOf(t, res.Output); got != `{"code":200,"p":{"echo":7}}` {
		t.Errorf("output %s (%s %s)", got, res.Error, res.Cause)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct{ name, def, want string }{
		{"unserved lambda", `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:123456789012:function:nope","End":true}}}`, "no handler"},
		{"unserved resource", `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage","End":true}}}`, "nothing serves"},
		{"JSONata", `{"QueryLanguage":"JSONata","StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`, "JSONata"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := states.Parse([]byte(c.def))
			if err == nil {
				_, err = engine.New(engine.Options{}).Compile(d, "X")
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestMaxNesting(t *testing.T) {
	inner := `{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`
	for i := 0; i < engine.MaxNesting+1; i++ {
		inner = `{"StartAt":"X","States":{"X":{"Type":"Parallel","Branches":[` + inner + `],"End":true}}}`
	}
	d, err := states.Decode([]byte(inner))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.New(engine.Options{}).Compile(d, "Deep"); err == nil || !strings.Contains(err.Error(), "nest deeper") {
		t.Fatalf("error %v", err)
	}
}

func TestWaitNinetyDays(t *testing.T) {
	def := `{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":7776000,"Next":"T"},
	  "T":{"Type":"Wait","TimestampPath":"$.until","End":true}}}`
	res := run(t, machine(t, engine.Options{}, def), `{"until":"2026-06-30T12:00:00Z"}`)
	if res.Status != engine.StatusSucceeded {
		t.Fatal(res.Status, res.Error, res.Cause)
	}
	if got, want := res.StopDate, time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("stopped at %v, want %v", got, want)
	}
	exit := eventsOf(res, types.HistoryEventTypeWaitStateExited)[0]
	if got := exit.Timestamp.Sub(t0); got != 90*24*time.Hour {
		t.Errorf("first wait ended after %v", got)
	}
}

func TestExecutionTimeout(t *testing.T) {
	def := `{"TimeoutSeconds":10,"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":20,"End":true}}}`
	res := run(t, machine(t, engine.Options{}, def), "")
	if res.Status != engine.StatusTimedOut {
		t.Fatalf("status %s", res.Status)
	}
	if got := res.StopDate.Sub(res.StartDate); got != 10*time.Second {
		t.Errorf("timed out after %v, want 10s", got)
	}
	last := res.History()[len(res.History())-1]
	if last.Type != types.HistoryEventTypeExecutionTimedOut {
		t.Errorf("last event %s", last.Type)
	}
}

func TestTaskTokens(t *testing.T) {
	def := `{"StartAt":"Ask","States":{"Ask":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken",
	  "Parameters":{"token.$":"$$.Task.Token","q":"approve?"},%s
	  "Catch":[{"ErrorEquals":["States.Timeout","States.HeartbeatTimeout","Rejected"],"Next":"No"}],"End":true},
	  "No":{"Type":"Pass","End":true}}}`
	cases := []struct {
		name    string
		limits  string
		answer  func(e *engine.Engine, token string)
		output  string
		elapsed time.Duration
	}{
		{"success", ``, func(e *engine.Engine, tok string) { must(t, e.SendTaskSuccess(tok, []byte(`{"ok":true}`))) }, `{"ok":true}`, 0},
		{"failure", ``, func(e *engine.Engine, tok string) { must(t, e.SendTaskFailure(tok, "Rejected", "by bob")) }, `{"Cause":"by bob","Error":"Rejected"}`, 0},
		{"timeout", `"TimeoutSeconds":3600,`, nil, `{"Cause":"","Error":"States.Timeout"}`, time.Hour},
		{"heartbeat", `"TimeoutSeconds":3600,"HeartbeatSeconds":60,`, nil, `{"Cause":"","Error":"States.HeartbeatTimeout"}`, time.Minute},
		{"default timeout", ``, nil, `{"Cause":"","Error":"States.Timeout"}`, 99999999 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e *engine.Engine
			var gotToken string
			opts := engine.Options{Clock: engine.NewVirtualClock(t0), OnTaskToken: func(token string, in any) {
				gotToken = token
				if m, _ := in.(map[string]any); m["token"] != token {
					t.Errorf("parameters %v do not carry the token", in)
				}
				if c.answer != nil {
					c.answer(e, token)
				}
			}}
			e = engine.New(opts)
			d, err := states.Parse([]byte(fmt.Sprintf(def, c.limits)))
			if err != nil {
				t.Fatal(err)
			}
			m, err := e.Compile(d, "Tokens")
			if err != nil {
				t.Fatal(err)
			}
			res := run(t, m, "")
			if got := jsonOf(t, res.Output); res.Status != engine.StatusSucceeded || got != c.output {
				t.Fatalf("%s %s %s output %s, want %s", res.Status, res.Error, res.Cause, got, c.output)
			}
			if got := res.StopDate.Sub(res.StartDate); got != c.elapsed {
				t.Errorf("took %v, want %v", got, c.elapsed)
			}
			if len(eventsOf(res, types.HistoryEventTypeTaskSubmitted)) != 1 {
				t.Errorf("no TaskSubmitted event")
			}
			// The task is over: its token is gone.
			if err := e.SendTaskSuccess(gotToken, []byte(`{}`)); !errors.Is(err, engine.ErrTaskDoesNotExist) && !errors.Is(err, engine.ErrTaskTimedOut) {
				t.Errorf("late answer: %v", err)
			}
		})
	}
	e := engine.New(engine.Options{})
	if err := e.SendTaskSuccess("garbage", []byte(`{}`)); !errors.Is(err, engine.ErrInvalidToken) {
		t.Errorf("bad token: %v", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}

// TestTaskTokenRealClock answers from another goroutine while the task is
// parked, with heartbeats that keep it alive past HeartbeatSeconds.
func TestTaskTokenRealClock(t *testing.T) {
	tokens := make(chan string, 1)
	e := engine.New(engine.Options{Clock: engine.NewRealClock(), OnTaskToken: func(token string, _ any) { tokens <- token }})
	d, err := states.Parse([]byte(`{"StartAt":"Ask","States":{"Ask":{"Type":"Task","Resource":"arn:aws:states:::sns:publish.waitForTaskToken",
	  "HeartbeatSeconds":1,"Parameters":{"t.$":"$$.Task.Token"},"End":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Compile(d, "Real")
	if err != nil {
		t.Fatal(err)
	}
	x, err := m.Start(context.Background(), "approval-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := <-tokens
	for i := 0; i < 3; i++ {
		time.Sleep(400 * time.Millisecond)
		must(t, e.SendTaskHeartbeat(tok))
	}
	must(t, e.SendTaskSuccess(tok, []byte(`"yes"`)))
	res := x.Wait(context.Background())
	if res.Status != engine.StatusSucceeded || res.Output != "yes" {
		t.Fatalf("%s %v %s %s", res.Status, res.Output, res.Error, res.Cause)
	}
}

func TestParallelBranchFailureStopsOthers(t *testing.T) {
	def := `{"StartAt":"P","States":{"P":{"Type":"Parallel","End":true,"Branches":[
	  {"StartAt":"Slow","States":{"Slow":{"Type":"Wait","Seconds":100,"Next":"After"},"After":{"Type":"Pass","End":true}}},
	  {"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":5,"Next":"F"},"F":{"Type":"Fail","Error":"Bad","Cause":"branch 2"}}}]}}}`
	res := run(t, machine(t, engine.Options{}, def), "")
	if res.Status != engine.StatusFailed || res.Error != "Bad" || res.Cause != "branch 2" {
		t.Fatalf("%s %s %s", res.Status, res.Error, res.Cause)
	}
	if got := res.StopDate.Sub(res.StartDate); got != 5*time.Second {
		t.Errorf("failed after %v, want 5s", got)
	}
	for _, e := range res.History() {
		if e.StateEnteredEventDetails != nil && *e.StateEnteredEventDetails.Name == "After" {
			t.Errorf("the stopped branch went on")
		}
	}
	if len(eventsOf(res, types.HistoryEventTypeParallelStateFailed)) != 1 {
		t.Errorf("no ParallelStateFailed")
	}
}

func TestParallelOutputAndTime(t *testing.T) {
	def := `{"StartAt":"P","States":{"P":{"Type":"Parallel","End":true,"Branches":[
	  {"StartAt":"A","States":{"A":{"Type":"Wait","Seconds":30,"Next":"A2"},"A2":{"Type":"Pass","Result":"a","End":true}}},
	  {"StartAt":"B","States":{"B":{"Type":"Wait","Seconds":10,"Next":"B2"},"B2":{"Type":"Pass","Result":"b","End":true}}}]}}}`
	m := machine(t, engine.Options{}, def)
	first := run(t, m, "")
	if got := jsonOf(t, first.Output); got != `["a","b"]` {
		t.Errorf("output %s", got)
	}
	if got := first.StopDate.Sub(first.StartDate); got != 30*time.Second {
		t.Errorf("took %v, want 30s (branches run side by side)", got)
	}
	// Deterministic: the same run gives the same history, event for event.
	second := run(t, m, "")
	if len(first.History()) != len(second.History()) {
		t.Fatal("histories differ in length")
	}
	for i := range first.History() {
		a, b := first.History()[i], second.History()[i]
		if a.Type != b.Type || a.PreviousEventId != b.PreviousEventId || !a.Timestamp.Equal(*b.Timestamp) {
			t.Errorf("event %d differs: %s/%d vs %s/%d", i+1, a.Type, a.PreviousEventId, b.Type, b.PreviousEventId)
		}
	}
}

func TestMapConcurrencyAndTolerance(t *testing.T) {
	proc := `"ItemProcessor":{"StartAt":"W","States":{"W":{"Type":"Wait","SecondsPath":"$.s","Next":"C"},
	   "C":{"Type":"Choice","Choices":[{"And":[{"Variable":"$.bad","IsPresent":true},{"Variable":"$.bad","BooleanEquals":true}],"Next":"F"}],"Default":"OK"},
	   "F":{"Type":"Fail","Error":"ItemBad"},"OK":{"Type":"Pass","InputPath":"$.s","End":true}}}`
	items := `{"xs":[{"s":10},{"s":10},{"s":10},{"s":10,"bad":true}]}`
	cases := []struct {
		name, extra string
		status      string
		errName     string
		elapsed     time.Duration
	}{
		{"unlimited", `"MaxConcurrency":0`, "FAILED", "ItemBad", 10 * time.Second},
		{"two at a time", `"MaxConcurrency":2`, "FAILED", "ItemBad", 20 * time.Second},
		{"tolerated count", `"ToleratedFailureCount":1`, "SUCCEEDED", "", 10 * time.Second},
		{"tolerated percentage too low", `"ToleratedFailurePercentage":20`, "FAILED", "States.ExceedToleratedFailureThreshold", 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			def := `{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.xs",` + c.extra + `,` + proc + `,"End":true}}}`
			res := run(t, machine(t, engine.Options{}, def), items)
			if res.Status != c.status || res.Error != c.errName {
				t.Fatalf("%s %s %s", res.Status, res.Error, res.Cause)
			}
			if got := res.StopDate.Sub(res.StartDate); got != c.elapsed {
				t.Errorf("took %v, want %v", got, c.elapsed)
			}
		})
	}
}

func TestMapItemSelectorAndContext(t *testing.T) {
	def := `{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.xs","MaxConcurrency":1,
	  "ItemSelector":{"i.$":"$$.Map.Item.Index","v.$":"$$.Map.Item.Value","k.$":"$.k"},
	  "ItemProcessor":{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}},"End":true}}}`
	res := run(t, machine(t, engine.Options{}, def), `{"k":"K","xs":["a","b"]}`)
	if got := jsonOf(t, res.Output); got != `[{"i":0,"k":"K","v":"a"},{"i":1,"k":"K","v":"b"}]` {
		t.Errorf("output %s (%s %s)", got, res.Error, res.Cause)
	}
}

func TestQuotas(t *testing.T) {
	t.Run("payload", func(t *testing.T) {
		big := strings.Repeat("x", 300*1024)
		def := `{"StartAt":"P","States":{"P":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"f"},
		  "Catch":[{"ErrorEquals":["States.ALL"],"Next":"Caught"}],"End":true},"Caught":{"Type":"Succeed"}}}`
		h := engine.HandlerFunc(func(context.Context, []byte) ([]byte, error) { return []byte(`"` + big + `"`), nil })
		uncaught := strings.Replace(def, `"States.ALL"`, `"States.Timeout"`, 1)
		res := run(t, machine(t, engine.Options{Handlers: map[string]engine.Handler{"f": h}}, uncaught), "")
		if res.Status != engine.StatusFailed || res.Error != "States.DataLimitExceeded" {
			t.Fatalf("%s %s", res.Status, res.Error)
		}
		// A real execution catches it with States.ALL (see matches).
		res = run(t, machine(t, engine.Options{Handlers: map[string]engine.Handler{"f": h}}, def), "")
		if res.Status != engine.StatusSucceeded {
			t.Fatalf("%s %s: not caught by States.ALL", res.Status, res.Error)
		}
	})
	t.Run("parameters that copy the input twice", func(t *testing.T) {
		def := `{"StartAt":"A","States":{
		  "A":{"Type":"Pass","Parameters":{"x.$":"$.s","y.$":"$.s","n.$":"States.MathAdd($.k, 1)","lit":[1,"two"]},"Next":"C"},
		  "C":{"Type":"Choice","Choices":[{"Variable":"$.n","NumericEquals":2,"Next":"B"}],"Default":"B"},
		  "B":{"Type":"Pass","Parameters":{"x.$":"$.x","y.$":"$.y","z.$":"$.x"},"End":true}}}`
		for _, c := range []struct {
			kb    int
			fails string
		}{{40, ""}, {100, "'B'"}, {140, "'A'"}} {
			input := `{"k":1,"s":"` + strings.Repeat("y", c.kb*1024) + `"}`
			res := run(t, machine(t, engine.Options{}, def), input)
			if c.fails == "" {
				if res.Status != engine.StatusSucceeded {
					t.Fatalf("%d KB: %s %s %s", c.kb, res.Status, res.Error, res.Cause)
				}
				continue
			}
			if res.Status != engine.StatusFailed || res.Error != "States.DataLimitExceeded" || !strings.Contains(res.Cause, c.fails) {
				t.Fatalf("%d KB: %s %s %s, want a failure in %s", c.kb, res.Status, res.Error, res.Cause, c.fails)
			}
		}
	})
	t.Run("results set into the input add up", func(t *testing.T) {
		// Each Pass copies a 60 KB string into a new field: the output of
		// the fourth passes 256 KiB, whichever way its size is bounded.
		def := `{"StartAt":"A","States":{
		  "A":{"Type":"Pass","Parameters":{"s.$":"$.s"},"ResultPath":"$.a","Next":"B"},
		  "B":{"Type":"Pass","Parameters":{"s.$":"$.s"},"ResultPath":"$.b","Next":"C"},
		  "C":{"Type":"Pass","Parameters":{"s.$":"$.s"},"ResultPath":"$.c","Next":"D"},
		  "D":{"Type":"Pass","Parameters":{"s.$":"$.s"},"ResultPath":"$.d","End":true}}}`
		input := `{"s":"` + strings.Repeat("y", 60*1024) + `"}`
		res := run(t, machine(t, engine.Options{}, def), input)
		if res.Status != engine.StatusFailed || res.Error != "States.DataLimitExceeded" || !strings.Contains(res.Cause, "'D'") {
			t.Fatalf("%s %s %s", res.Status, res.Error, res.Cause)
		}
		res = run(t, machine(t, engine.Options{}, strings.Replace(def, `"$.d"`, `"$.a"`, 1)), input)
		if res.Status != engine.StatusSucceeded {
			t.Fatalf("%s %s %s: the fourth result replaces the first", res.Status, res.Error, res.Cause)
		}
	})
	t.Run("input", func(t *testing.T) {
		m := machine(t, engine.Options{}, `{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`)
		_, err := m.Start(context.Background(), "", map[string]any{"x": strings.Repeat("y", 257*1024)})
		if !errors.Is(err, engine.ErrInvalidExecutionInput) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("history events", func(t *testing.T) {
		def := `{"StartAt":"L","States":{"L":{"Type":"Pass","Next":"L"}}}`
		res := run(t, machine(t, engine.Options{}, def), "")
		if res.Status != engine.StatusFailed || res.Error != "States.Runtime" {
			t.Fatalf("%s %s %s", res.Status, res.Error, res.Cause)
		}
		if n := len(res.History()); n != engine.MaxHistoryEvents {
			t.Errorf("%d events, want %d", n, engine.MaxHistoryEvents)
		}
	})
	t.Run("names", func(t *testing.T) {
		m := machine(t, engine.Options{}, `{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`)
		for _, bad := range []string{"has space", "a/b", "x$", strings.Repeat("n", 81), "tab\there", "ctl\x01", "q?"} {
			if _, err := m.Start(context.Background(), bad, nil); !errors.Is(err, engine.ErrInvalidName) {
				t.Errorf("name %q: %v", bad, err)
			}
		}
		if _, err := m.Start(context.Background(), strings.Repeat("n", 80), nil); err != nil {
			t.Errorf("80 characters: %v", err)
		}
		x, err := m.Start(context.Background(), "once", nil)
		if err != nil {
			t.Fatal(err)
		}
		x.Wait(context.Background())
		if _, err := m.Start(context.Background(), "once", nil); !errors.Is(err, engine.ErrExecutionAlreadyExists) {
			t.Errorf("reused name: %v", err)
		}
	})
}

func TestStatesAllDoesNotCatchRuntime(t *testing.T) {
	def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"f","Payload.$":"$.missing"},
	  "Catch":[{"ErrorEquals":["States.ALL"],"Next":"C"}],"End":true},"C":{"Type":"Succeed"}}}`
	h := engine.HandlerFunc(func(context.Context, []byte) ([]byte, error) { return []byte(`{}`), nil })
	res := run(t, machine(t, engine.Options{Handlers: map[string]engine.Handler{"f": h}}, def), `{}`)
	if res.Status != engine.StatusFailed || res.Error != "States.Runtime" {
		t.Fatalf("%s %s %s", res.Status, res.Error, res.Cause)
	}
}

// TestConcurrentExecutions runs one Machine from 50 goroutines (under
// -race in CI): the compiled machine is shared, run state is not.
func TestConcurrentExecutions(t *testing.T) {
	def := `{"StartAt":"P","States":{"P":{"Type":"Parallel","Next":"M","Branches":[
	    {"StartAt":"A","States":{"A":{"Type":"Pass","Parameters":{"n.$":"$.n","xs.$":"$.xs"},"End":true}}},
	    {"StartAt":"B","States":{"B":{"Type":"Wait","Seconds":3,"End":true}}}]},
	  "M":{"Type":"Map","ItemsPath":"$[0].xs","ItemProcessor":{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:123456789012:function:double","End":true}}},"End":true}}}`
	h := lambda.NewHandler(func(n int) (int, error) { return 2 * n, nil })
	m := machine(t, engine.Options{Handlers: map[string]engine.Handler{"double": h}}, def)
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			res := m.Run(context.Background(), fmt.Sprintf("run-%d", g), map[string]any{"n": g, "xs": []any{g, g + 1}})
			want := fmt.Sprintf("[%d,%d]", 2*g, 2*g+2)
			if got := jsonOf(t, res.Output); res.Status != engine.StatusSucceeded || got != want {
				t.Errorf("run %d: %s %s %s", g, res.Status, got, res.Cause)
			}
		}(g)
	}
	wg.Wait()
}

func TestMockConfig(t *testing.T) {
	doc := `{"StateMachines":{"SM":{"TestCases":{"Happy":{"T":"Ok"},"Sad":{"T":"Err"}}}},
	  "MockedResponses":{"Ok":{"0":{"Return":{"v":1}}},"Err":{"0-1":{"Throw":{"Error":"E","Cause":"c"}}}}}`
	cfg, err := engine.ParseMockConfig([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::dynamodb:getItem","End":true}}}`
	for tc, want := range map[string]string{"Happy": "SUCCEEDED", "Sad": "FAILED"} {
		mc, err := cfg.Case("", tc)
		if err != nil {
			t.Fatal(err)
		}
		res := run(t, machine(t, engine.Options{Mocks: mc}, def), "")
		if res.Status != want {
			t.Errorf("%s: %s", tc, res.Status)
		}
	}
	if _, err := cfg.Case("SM", "Nope"); err == nil {
		t.Error("unknown test case accepted")
	}
}

func TestStartExecutionSync(t *testing.T) {
	e := engine.New(engine.Options{Clock: engine.NewVirtualClock(t0)})
	compile := func(name, def string) *engine.Machine {
		d, err := states.Parse([]byte(def))
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.Compile(d, name)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	compile("Child", `{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":60,"Next":"P"},"P":{"Type":"Pass","Parameters":{"got.$":"$.x"},"End":true}}}`)
	parent := compile("Parent", `{"StartAt":"S","States":{"S":{"Type":"Task","Resource":"arn:aws:states:::states:startExecution.sync:2",
	  "Parameters":{"StateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:Child","Input":{"x.$":"$.x"}},
	  "OutputPath":"$.Output","End":true}}}`)
	res := run(t, parent, `{"x":5}`)
	if got := jsonOf(t, res.Output); got != `{"got":5}` {
		t.Fatalf("%s output %s (%s %s)", res.Status, got, res.Error, res.Cause)
	}
	if got := res.StopDate.Sub(res.StartDate); got != time.Minute {
		t.Errorf("took %v, want the child's minute", got)
	}
}

// TestParametersOnNullInput: AWS fails a Parameters path applied to a null
// input ("Unable to apply Path transformation to null or empty input."),
// whether the path is a field's value or an intrinsic's argument; fields
// that read only the context object, variables or literals still work.
func TestParametersOnNullInput(t *testing.T) {
	const cause = "Unable to apply Path transformation to null or empty input."
	for _, tc := range []struct {
		name, params string
		ok           bool
	}{
		{"path", `{"x.$": "$.a"}`, false},
		{"root", `{"x.$": "$"}`, false},
		{"intrinsic argument", `{"x.$": "States.Format('{}', $.a)"}`, false},
		{"nested", `{"o": {"x.$": "$"}}`, false},
		{"context object", `{"x.$": "$$.State.Name"}`, true},
		{"dollar inside a literal", `{"x.$": "States.Format('$ {}', $$.State.Name)"}`, true},
		{"static", `{"x": "$.a"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := machine(t, engine.Options{}, `{"StartAt": "A", "States": {
				"A": {"Type": "Pass", "InputPath": "$.n", "Next": "B"},
				"B": {"Type": "Pass", "Parameters": `+tc.params+`, "End": true}}}`)
			res := run(t, m, `{"n": null}`)
			if tc.ok {
				if res.Status != engine.StatusSucceeded {
					t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
				}
				return
			}
			if res.Status != engine.StatusFailed || res.Error != "States.Runtime" || !strings.HasSuffix(res.Cause, cause) {
				t.Fatalf("status %s: %s: %q, want States.Runtime ending %q", res.Status, res.Error, res.Cause, cause)
			}
		})
	}
}

// TestHistoryReadConcurrently: Result.History is built once, on first
// read, and may be read from many goroutines at once.
func TestHistoryReadConcurrently(t *testing.T) {
	m := machine(t, engine.Options{}, `{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Succeed"}}}`)
	res := run(t, m, `{"k": 1}`)
	var wg sync.WaitGroup
	lens := make([]int, 8)
	for i := range lens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lens[i] = len(res.History())
		}()
	}
	wg.Wait()
	for _, n := range lens {
		if n != 6 {
			t.Fatalf("history lengths %v, want 6 each", lens)
		}
	}
	first, again := res.History(), res.History()
	if &first[0] != &again[0] {
		t.Error("History is built again on each call")
	}
}
