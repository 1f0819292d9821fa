package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// History is one execution's events and what the caller knows about it.
type History struct {
	// ExecutionArn names the execution; GetExecutionHistory does not
	// repeat it in the events.
	ExecutionArn string
	// Workflow is keyflow's name of the workflow ("lifecycle",
	// "quarantine", ...). When empty it is taken from the state machine
	// name in ExecutionArn, without the "keyflow-" prefix.
	Workflow string
	// Events are every page of GetExecutionHistory, in ascending order
	// (the default order; a reversed history is sorted by id first).
	Events []types.HistoryEvent
	// Policy holds the rules that are configuration rather than
	// invariants; the zero value is keyflow's default policy.
	Policy Policy
}

// Policy is the configurable part of the checks.
type Policy struct {
	// AdminsGroup is the IAM group whose members must never be
	// quarantined; "admins" when empty (tasks.DefaultAdminsGroup).
	AdminsGroup string
	// MinInactive, when positive, is the least time a key must stay
	// Inactive before it is deleted (the buffer counted from the
	// deactivation). The delete's own notBefore is always checked.
	MinInactive time.Duration
}

func (p Policy) adminsGroup() string {
	if p.AdminsGroup == "" {
		return "admins"
	}
	return p.AdminsGroup
}

// MaxDecodeBytes bounds DecodeHistory's input: 25,000 events of 256 KiB
// payloads is far more than any real history, and an unbounded read of an
// untrusted file is how an audit tool runs out of memory.
const MaxDecodeBytes = 1 << 30

// DecodeHistory reads a history in the JSON wire shape of
// GetExecutionHistory ({"events": [...]}, as `keyflow run --history` and
// the local API server write it) or a bare JSON array of such events.
//
// The SDK's own deserialiser is internal to its client, so this does what
// it does for the one shape we read: member names are the Go field names
// with a lower-case first letter (encoding/json matches them without regard
// to case) and timestamps are epoch seconds, which encoding/json would not
// take for a time.Time.
func DecodeHistory(r io.Reader) ([]types.HistoryEvent, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxDecodeBytes+1))
	if err != nil {
		return nil, fmt.Errorf("audit: reading history: %w", err)
	}
	if len(b) > MaxDecodeBytes {
		return nil, fmt.Errorf("audit: history larger than %d bytes", MaxDecodeBytes)
	}
	var raw []json.RawMessage
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		err = json.Unmarshal(t, &raw)
	} else {
		var page struct {
			Events []json.RawMessage `json:"events"`
		}
		err = json.Unmarshal(b, &page)
		raw = page.Events
	}
	if err != nil {
		return nil, fmt.Errorf("audit: history is not GetExecutionHistory JSON: %w", err)
	}
	events := make([]types.HistoryEvent, 0, len(raw))
	for i, m := range raw {
		ev, err := decodeEvent(m)
		if err != nil {
			return nil, fmt.Errorf("audit: event %d: %w", i, err)
		}
		events = append(events, ev)
	}
	return events, nil
}

func decodeEvent(m json.RawMessage) (types.HistoryEvent, error) {
	var ev types.HistoryEvent
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(m, &fields); err != nil {
		return ev, err
	}
	var ts json.RawMessage
	for k, v := range fields {
		if strings.EqualFold(k, "timestamp") {
			ts = v
			delete(fields, k)
		}
	}
	rest, err := json.Marshal(fields)
	if err != nil {
		return ev, err
	}
	if err := json.Unmarshal(rest, &ev); err != nil {
		return ev, err
	}
	if len(ts) > 0 && string(ts) != "null" {
		t, err := decodeTimestamp(ts)
		if err != nil {
			return ev, err
		}
		ev.Timestamp = &t
	}
	return ev, nil
}

// decodeTimestamp takes epoch seconds (the wire format) or an RFC 3339
// string (what encoding/json writes for a time.Time).
func decodeTimestamp(b json.RawMessage) (time.Time, error) {
	var s string
	if json.Unmarshal(b, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp %q: %w", truncate(s, 40), err)
		}
		return t.UTC(), nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return time.Time{}, fmt.Errorf("timestamp %s: not epoch seconds", truncate(string(b), 40))
	}
	// Beyond ±2^53 seconds a float has no millisecond left, and beyond
	// year 9999 no RFC 3339 form: refuse rather than wrap around.
	if math.IsNaN(f) || math.Abs(f) > 253402300799 {
		return time.Time{}, fmt.Errorf("timestamp %s out of range", truncate(string(b), 40))
	}
	ms := math.Round(f * 1000)
	return time.UnixMilli(int64(ms)).UTC(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
