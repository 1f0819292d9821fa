package engine

import (
	"math"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// TestRecRoundTrip: what a rec packs (kind, flags, back, offset, name,
// index) comes back as it went in, and what does not fit goes to the
// details, at the edges of each field.
func TestRecRoundTrip(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n1, n2 := &node{name: "A", id: 1}, &node{name: "B", id: 2}
	stray := &node{name: "C", id: 1} // an id that is not its machine's
	h := &history{base: base, lastTS: base, names: []*string{&n1.name, &n2.name}}
	cases := []struct {
		e  event
		at int // h.n before the event
	}{
		{event{typ: types.HistoryEventTypeExecutionStarted, ts: base, prev: 0, input: "x", hasInput: true, roleArn: "r"}, 0},
		{event{typ: types.HistoryEventTypePassStateEntered, ts: base.Add(3 * time.Millisecond), prev: 1, node: n1, input: 1, hasInput: true}, 1},
		{event{typ: types.HistoryEventTypePassStateExited, ts: base.Add(time.Nanosecond), prev: 2, node: n2, output: 2, hasOutput: true}, 2},
		{event{typ: types.HistoryEventTypeMapIterationStarted, ts: base.Add(200 * 24 * time.Hour), prev: 3, node: n1, index: 9999}, 3},
		{event{typ: types.HistoryEventTypeMapIterationSucceeded, ts: base.Add(200*24*time.Hour + time.Millisecond), prev: 1, node: n1, index: 7}, 1<<24 - 1},
		{event{typ: types.HistoryEventTypeMapIterationSucceeded, ts: base.Add(maxOff + 1), prev: 1, node: n1, index: 8}, 1 << 24},
		{event{typ: types.HistoryEventTypeMapIterationSucceeded, ts: base.Add(-time.Second), prev: 5, node: stray, index: 1}, math.MaxInt32},
		{event{typ: types.HistoryEventTypeMapStateStarted, ts: base.Add(maxOff), prev: 70000, length: 10000}, 70000},
		{event{typ: types.HistoryEventTypeMapStateSucceeded, ts: base.Add(200*24*time.Hour + 1), prev: 4}, 9},
		{event{typ: types.HistoryEventTypeExecutionSucceeded, ts: base.AddDate(400, 0, 0), prev: 4, output: 3, hasOutput: true}, 10},
		{event{typ: types.HistoryEventTypeExecutionFailed, ts: base, prev: 2, errName: "E", cause: "C", hasErr: true}, 5},
	}
	for i, c := range cases {
		h.n = c.at
		var r rec
		h.compact(&r, &c.e)
		got := h.event(int64(c.at+1), &r)
		want := c.e
		if want.node != nil {
			want.name = &want.node.name
			want.node = nil
		}
		if want.length != 0 {
			want.index = want.length
		}
		want.length = want.index
		if !got.ts.Equal(want.ts) || got.typ != want.typ || got.prev != want.prev || got.index != want.index ||
			got.length != want.length || deref(got.name) != deref(want.name) || got.input != want.input ||
			got.output != want.output || got.hasInput != want.hasInput || got.hasOutput != want.hasOutput ||
			got.hasErr != want.hasErr || got.errName != want.errName || got.cause != want.cause || got.roleArn != want.roleArn {
			t.Errorf("case %d: got %+v\nwant %+v", i, got, want)
		}
	}
}
