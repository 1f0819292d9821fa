package engine

import (
	"math"
	"reflect"
	"sync"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/states/data"
)

// MaxHistoryEvents is AWS's hard quota of events in one execution history.
const MaxHistoryEvents = 25000

// event is what a state hands to thread.emit: every field any event type
// may carry. It lives on the stack; the history keeps a compact rec.
type event struct {
	typ  types.HistoryEventType
	ts   time.Time
	prev int64

	name         *string // points into the compiled node: no copy
	input        any
	output       any
	hasInput     bool
	hasOutput    bool
	errName      string
	cause        string
	hasErr       bool
	resource     string
	resourceType string
	region       string
	params       any
	timeout      *int64
	heartbeat    *int64
	index        int32
	length       int32
	roleArn      string
	mapRunArn    string
	assigned     map[string]any
}

// rec is an event as the history keeps it: 56 bytes for the events that
// most transitions record (a state entered or exited, a Map iteration),
// the rarely used fields behind a pointer. Payloads stay value trees,
// shared with the running states and never copied; they become JSON text
// only when someone reads Result.History.
type rec struct {
	off     int64 // nanoseconds since the execution started
	prev    int64
	payload any // the input (flagInput) or the output (flagOutput)
	name    *string
	detail  *recDetail
	index   int32 // a Map iteration's index, or a MapStateStarted's length
	kind    uint8 // index in eventTypes
	flags   uint8
}

const (
	flagInput = 1 << iota
	flagOutput
	flagErr
	flagTime // the timestamp is detail.ts: too far from the start for off
)

// recDetail holds the fields of task, failure and start events.
type recDetail struct {
	ts           time.Time
	errName      string
	cause        string
	resource     string
	resourceType string
	region       string
	params       any
	timeout      *int64
	heartbeat    *int64
	roleArn      string
	mapRunArn    string
	assigned     map[string]any
}

// eventTypes numbers the SDK's event types, so that a rec stores one byte.
var eventTypes, eventKinds = func() ([]types.HistoryEventType, map[types.HistoryEventType]uint8) {
	all := types.HistoryEventType("").Values()
	if len(all) > 255 {
		panic("engine: more than 255 history event types")
	}
	kinds := make(map[types.HistoryEventType]uint8, len(all))
	list := make([]types.HistoryEventType, 1, len(all)+1) // kind 0: unknown
	for _, t := range all {
		kinds[t] = uint8(len(list))
		list = append(list, t)
	}
	return list, kinds
}()

// history is the event log of one execution. Ids are positions in events
// plus one, so they are contiguous by construction.
type history struct {
	mu sync.Mutex
	// chunks hold the events in blocks, so that a long history never
	// copies its events to grow.
	chunks   [][]rec
	n        int
	base     time.Time // the execution's start: offsets count from here
	limit    int
	discard  bool   // count events for the quota but keep none
	exceeded func() // called once when the quota is reached
	over     bool
	// kinds caches eventKinds by the address of the type's text: events
	// name their type with the SDK's constants, so a hit costs no hashing.
	kinds [16]kindEntry
}

type kindEntry struct {
	p    *byte
	n    int
	kind uint8
}

// kindOf is eventKinds[t]; called with h.mu held.
func (h *history) kindOf(t types.HistoryEventType) uint8 {
	p := unsafe.StringData(string(t))
	c := &h.kinds[(uintptr(unsafe.Pointer(p))>>3)&15]
	if c.p == p && c.n == len(t) {
		return c.kind
	}
	k := eventKinds[t]
	*c = kindEntry{p: p, n: len(t), kind: k}
	return k
}

const chunkSize = 1024

// add appends e and returns its id. When the quota is reached, the event is
// dropped, exceeded is called (it fails the execution), and the returned id
// is the last one recorded.
func (h *history) add(e *event) int64 {
	h.mu.Lock()
	if h.limit > 0 && h.n >= h.limit-1 && !terminal(e.typ) {
		over := h.over
		h.over = true
		id := int64(h.n)
		h.mu.Unlock()
		if !over && h.exceeded != nil {
			h.exceeded()
		}
		return id
	}
	if !h.discard {
		if len(h.chunks) == 0 || len(h.chunks[len(h.chunks)-1]) == cap(h.chunks[len(h.chunks)-1]) {
			// Small executions stay small: chunks grow 32, 32, 64, ... up
			// to chunkSize events.
			h.chunks = append(h.chunks, make([]rec, 0, min(chunkSize, max(32, h.n))))
		}
		c := &h.chunks[len(h.chunks)-1]
		*c = append(*c, h.compact(e))
	}
	h.n++
	id := int64(h.n)
	h.mu.Unlock()
	return id
}

// compact turns e into a rec; only events with task, failure or start
// fields allocate.
func (h *history) compact(e *event) rec {
	r := rec{prev: e.prev, name: e.name, kind: h.kindOf(e.typ)}
	if d := e.ts.Sub(h.base); d > math.MinInt64 && d < math.MaxInt64 {
		r.off = int64(d)
	} else {
		r.flags |= flagTime
	}
	switch {
	case e.hasInput:
		r.flags |= flagInput
		r.payload = e.input
	case e.hasOutput:
		r.flags |= flagOutput
		r.payload = e.output
	}
	if e.hasErr {
		r.flags |= flagErr
	}
	r.index = e.index
	if e.length != 0 {
		r.index = e.length
	}
	if r.flags&flagTime != 0 || e.errName != "" || e.cause != "" || e.resource != "" || e.resourceType != "" ||
		e.region != "" || e.params != nil || e.timeout != nil || e.heartbeat != nil || e.roleArn != "" ||
		e.mapRunArn != "" || len(e.assigned) > 0 {
		r.detail = &recDetail{ts: e.ts, errName: e.errName, cause: e.cause, resource: e.resource,
			resourceType: e.resourceType, region: e.region, params: e.params, timeout: e.timeout,
			heartbeat: e.heartbeat, roleArn: e.roleArn, mapRunArn: e.mapRunArn, assigned: e.assigned}
	}
	return r
}

// event expands r back into the event it was made from.
func (h *history) event(r *rec) event {
	e := event{typ: eventTypes[r.kind], prev: r.prev, index: r.index, length: r.index,
		hasInput: r.flags&flagInput != 0, hasOutput: r.flags&flagOutput != 0, hasErr: r.flags&flagErr != 0}
	e.name = r.name
	if e.hasInput {
		e.input = r.payload
	} else if e.hasOutput {
		e.output = r.payload
	}
	if d := r.detail; d != nil {
		e.errName, e.cause, e.resource, e.resourceType, e.region = d.errName, d.cause, d.resource, d.resourceType, d.region
		e.params, e.timeout, e.heartbeat, e.roleArn, e.mapRunArn, e.assigned = d.params, d.timeout, d.heartbeat, d.roleArn, d.mapRunArn, d.assigned
	}
	if r.flags&flagTime != 0 {
		e.ts = r.detail.ts
	} else {
		e.ts = h.base.Add(time.Duration(r.off))
	}
	return e
}

// count is the number of events kept.
func (h *history) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.chunks {
		n += len(c)
	}
	return n
}

func (h *history) last() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return int64(h.n)
}

func terminal(t types.HistoryEventType) bool {
	switch t {
	case types.HistoryEventTypeExecutionSucceeded, types.HistoryEventTypeExecutionFailed,
		types.HistoryEventTypeExecutionAborted, types.HistoryEventTypeExecutionTimedOut:
		return true
	}
	return false
}

// marshalCache serialises each distinct tree once: consecutive states pass
// the same map from one's output to the next one's input, so most payloads
// of a history are the same few trees.
type marshalCache struct {
	m map[[2]uintptr]*string
}

func (c *marshalCache) str(v any) *string {
	var key [2]uintptr
	switch t := v.(type) {
	case map[string]any:
		if t != nil {
			key = [2]uintptr{uintptr(reflect.ValueOf(t).UnsafePointer()), 0}
		}
	case []any:
		if len(t) > 0 {
			key = [2]uintptr{uintptr(reflect.ValueOf(t).UnsafePointer()), uintptr(len(t))}
		}
	}
	if key[0] != 0 {
		if s, ok := c.m[key]; ok {
			return s
		}
	}
	b, err := data.Marshal(v)
	s := string(b)
	if err != nil {
		s = "null"
	}
	if key[0] != 0 {
		c.m[key] = &s
	}
	return &s
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// lazyHistory is a finished execution's history, built into SDK events
// on first read (Result.History) and cached.
type lazyHistory struct {
	once   sync.Once
	h      *history
	n      int // events recorded when the execution ended
	events []types.HistoryEvent
}

func (l *lazyHistory) get() []types.HistoryEvent {
	l.once.Do(func() {
		l.events = l.h.build(l.n)
		l.h = nil
	})
	return l.events
}

// build turns the first n events of the log into the events of
// GetExecutionHistory.
func (h *history) build(n int) []types.HistoryEvent {
	h.mu.Lock()
	chunks := h.chunks
	total := 0
	for _, c := range chunks {
		total += len(c)
	}
	h.mu.Unlock()
	total = min(total, n)
	if total == 0 {
		return nil
	}
	c := &marshalCache{m: map[[2]uintptr]*string{}}
	notTruncated := &types.HistoryEventExecutionDataDetails{Truncated: false}
	out := make([]types.HistoryEvent, total)
	i := -1
	for ci := range chunks {
		for j := range chunks[ci] {
			if i++; i >= total {
				return out
			}
			out[i] = h.historyEvent(c, notTruncated, i, &chunks[ci][j])
		}
	}
	return out
}

// historyEvent builds the SDK event of r, the event with id i+1.
func (h *history) historyEvent(c *marshalCache, notTruncated *types.HistoryEventExecutionDataDetails, i int, r *rec) types.HistoryEvent {
	{
		ev := h.event(r)
		e := &ev
		ts := e.ts
		he := types.HistoryEvent{Id: int64(i + 1), PreviousEventId: e.prev, Timestamp: &ts, Type: e.typ}
		var in, outp, errp, causep *string
		if e.hasInput {
			in = c.str(e.input)
		}
		if e.hasOutput {
			outp = c.str(e.output)
		}
		if e.hasErr {
			errp, causep = ptr(e.errName), ptr(e.cause)
		}
		switch e.typ {
		case types.HistoryEventTypeExecutionStarted:
			he.ExecutionStartedEventDetails = &types.ExecutionStartedEventDetails{Input: in, InputDetails: notTruncated, RoleArn: ptr(e.roleArn)}
		case types.HistoryEventTypeExecutionSucceeded:
			he.ExecutionSucceededEventDetails = &types.ExecutionSucceededEventDetails{Output: outp, OutputDetails: notTruncated}
		case types.HistoryEventTypeExecutionFailed:
			he.ExecutionFailedEventDetails = &types.ExecutionFailedEventDetails{Error: errp, Cause: causep}
		case types.HistoryEventTypeExecutionTimedOut:
			he.ExecutionTimedOutEventDetails = &types.ExecutionTimedOutEventDetails{Error: errp, Cause: causep}
		case types.HistoryEventTypeExecutionAborted:
			he.ExecutionAbortedEventDetails = &types.ExecutionAbortedEventDetails{Error: errp, Cause: causep}
		case types.HistoryEventTypeTaskScheduled:
			d := &types.TaskScheduledEventDetails{Resource: ptr(e.resource), ResourceType: ptr(e.resourceType),
				Region: ptr(e.region), Parameters: c.str(e.params), TimeoutInSeconds: e.timeout, HeartbeatInSeconds: e.heartbeat}
			he.TaskScheduledEventDetails = d
		case types.HistoryEventTypeTaskStarted:
			he.TaskStartedEventDetails = &types.TaskStartedEventDetails{Resource: ptr(e.resource), ResourceType: ptr(e.resourceType)}
		case types.HistoryEventTypeTaskSubmitted:
			he.TaskSubmittedEventDetails = &types.TaskSubmittedEventDetails{Resource: ptr(e.resource), ResourceType: ptr(e.resourceType), Output: outp, OutputDetails: notTruncated}
		case types.HistoryEventTypeTaskSucceeded:
			he.TaskSucceededEventDetails = &types.TaskSucceededEventDetails{Resource: ptr(e.resource), ResourceType: ptr(e.resourceType), Output: outp, OutputDetails: notTruncated}
		case types.HistoryEventTypeTaskFailed:
			he.TaskFailedEventDetails = &types.TaskFailedEventDetails{Resource: ptr(e.resource), ResourceType: ptr(e.resourceType), Error: errp, Cause: causep}
		case types.HistoryEventTypeTaskTimedOut:
			he.TaskTimedOutEventDetails = &types.TaskTimedOutEventDetails{Resource: ptr(e.resource), ResourceType: ptr(e.resourceType), Error: errp, Cause: causep}
		case types.HistoryEventTypeLambdaFunctionScheduled:
			he.LambdaFunctionScheduledEventDetails = &types.LambdaFunctionScheduledEventDetails{Resource: ptr(e.resource), Input: in, InputDetails: notTruncated, TimeoutInSeconds: e.timeout}
		case types.HistoryEventTypeLambdaFunctionSucceeded:
			he.LambdaFunctionSucceededEventDetails = &types.LambdaFunctionSucceededEventDetails{Output: outp, OutputDetails: notTruncated}
		case types.HistoryEventTypeLambdaFunctionFailed:
			he.LambdaFunctionFailedEventDetails = &types.LambdaFunctionFailedEventDetails{Error: errp, Cause: causep}
		case types.HistoryEventTypeLambdaFunctionTimedOut:
			he.LambdaFunctionTimedOutEventDetails = &types.LambdaFunctionTimedOutEventDetails{Error: errp, Cause: causep}
		case types.HistoryEventTypeMapStateStarted:
			he.MapStateStartedEventDetails = &types.MapStateStartedEventDetails{Length: e.length}
		case types.HistoryEventTypeMapIterationStarted, types.HistoryEventTypeMapIterationSucceeded,
			types.HistoryEventTypeMapIterationFailed, types.HistoryEventTypeMapIterationAborted:
			he.MapIterationStartedEventDetails = nil
			d := &types.MapIterationEventDetails{Name: ptr(deref(e.name)), Index: e.index}
			switch e.typ {
			case types.HistoryEventTypeMapIterationStarted:
				he.MapIterationStartedEventDetails = d
			case types.HistoryEventTypeMapIterationSucceeded:
				he.MapIterationSucceededEventDetails = d
			case types.HistoryEventTypeMapIterationFailed:
				he.MapIterationFailedEventDetails = d
			default:
				he.MapIterationAbortedEventDetails = d
			}
		case types.HistoryEventTypeMapRunStarted:
			he.MapRunStartedEventDetails = &types.MapRunStartedEventDetails{MapRunArn: ptr(e.mapRunArn)}
		case types.HistoryEventTypeMapRunFailed:
			he.MapRunFailedEventDetails = &types.MapRunFailedEventDetails{Error: errp, Cause: causep}
		default:
			if e.hasInput {
				he.StateEnteredEventDetails = &types.StateEnteredEventDetails{Name: ptr(deref(e.name)), Input: in, InputDetails: notTruncated}
			} else if e.hasOutput {
				d := &types.StateExitedEventDetails{Name: ptr(deref(e.name)), Output: outp, OutputDetails: notTruncated}
				if len(e.assigned) > 0 {
					d.AssignedVariables = map[string]string{}
					for k, v := range e.assigned {
						d.AssignedVariables[k] = *c.str(v)
					}
					d.AssignedVariablesDetails = &types.AssignedVariablesDetails{Truncated: false}
				}
				he.StateExitedEventDetails = d
			}
		}
		return he
	}
}

func eventSubmitted(ts *taskState, out any) event {
	return event{typ: types.HistoryEventTypeTaskSubmitted, resource: ts.api, resourceType: ts.service, output: out, hasOutput: true}
}
