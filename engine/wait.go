package engine

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/jsonpath"
)

// waitState delays for Seconds or SecondsPath, or until Timestamp or
// TimestampPath. On the virtual clock the delay ends at once and time jumps.
type waitState struct {
	seconds   int64
	hasSecs   bool
	secsPath  *jsonpath.Path
	timestamp time.Time
	hasTS     bool
	tsPath    *jsonpath.Path
}

func (c *compiler) wait(ptr string, n *node, s *states.Wait) (impl, error) {
	w := &waitState{}
	var err error
	switch {
	case s.Seconds != nil:
		if s.Seconds.Expr != "" {
			return nil, compileErr(ptr, "Seconds", errJSONata)
		}
		w.seconds, w.hasSecs = s.Seconds.Value, true
	case s.SecondsPath != "":
		if w.secsPath, err = jsonpath.Compile(s.SecondsPath); err != nil {
			return nil, compileErr(ptr, "SecondsPath", err)
		}
	case s.Timestamp != "":
		ts, ok := parseTimestamp(s.Timestamp)
		if !ok {
			return nil, compileErr(ptr, "Timestamp", errString("not an RFC 3339 timestamp: "+s.Timestamp))
		}
		w.timestamp, w.hasTS = ts, true
	case s.TimestampPath != "":
		if w.tsPath, err = jsonpath.Compile(s.TimestampPath); err != nil {
			return nil, compileErr(ptr, "TimestampPath", err)
		}
	}
	n.usesCtx = n.usesCtx || mentionsContext(s.SecondsPath, s.TimestampPath)
	return w, nil
}

type errString string

func (e errString) Error() string { return string(e) }

const errJSONata = errString("JSONata is not supported yet")

func (w *waitState) exec(t *thread, n *node, input any) (any, *node, error) {
	t.enter(n, types.HistoryEventTypeWaitStateEntered, input)
	eff, err := n.in.apply(t, n, input)
	if err != nil {
		return nil, nil, err
	}
	var d time.Duration
	switch {
	case w.hasSecs:
		d = time.Duration(w.seconds) * time.Second
	case w.secsPath != nil:
		v, err := w.secsPath.Get(t.scope(n, eff))
		if err != nil {
			return nil, nil, err
		}
		f, ok := data.Number(v)
		if !ok || f < 0 || f != float64(int64(f)) {
			return nil, nil, fail(failure.Runtime, "The SecondsPath parameter does not reference a valid integer value: %s", preview(v))
		}
		d = time.Duration(f) * time.Second
	case w.hasTS:
		d = w.timestamp.Sub(t.now())
	case w.tsPath != nil:
		v, err := w.tsPath.Get(t.scope(n, eff))
		if err != nil {
			return nil, nil, err
		}
		ts, ok := parseTimestamp(v)
		if !ok {
			return nil, nil, fail(failure.Runtime, "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: %s", preview(v))
		}
		d = ts.Sub(t.now())
	}
	if d > 0 {
		if t.x.run.sleep(t.ctx, t.f, d) != nil {
			return nil, nil, errStopped
		}
	}
	out, err := n.out.apply(t, n, eff)
	if err != nil {
		return nil, nil, err
	}
	assigned, err := t.assign(n, n.assign, eff)
	if err != nil {
		return nil, nil, err
	}
	t.exit(n, types.HistoryEventTypeWaitStateExited, out, assigned)
	return out, n.next, nil
}

// preview quotes a value for an error cause, truncated.
func preview(v any) string {
	b, err := data.Marshal(v)
	if err != nil {
		return "?"
	}
	return truncate(string(b), 100)
}
