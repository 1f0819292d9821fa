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

	node         *node   // the state the event names
	name         *string // the state's name, when expanded from a rec
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

// rec is an event as the history keeps it: 32 bytes, the rarely used
// fields in history.details. Payloads stay value trees, shared with the
// running states and never copied (a small object is kept as a smallObj,
// see thread.small); they become JSON text only when someone reads
// Result.History.
type rec struct {
	// word packs the kind (bits 0-6, index in eventTypes), the flags
	// (bits 7-11), the high 8 bits of back (12-19) and the time since the
	// execution started (bits 20-63: in milliseconds with flagMs, else in
	// nanoseconds; with flagDetail and detail.hasTS, the timestamp is
	// detail.ts).
	word    uint64
	payload any    // the input (flagInput) or the output (flagOutput)
	name    uint16 // the state's node id (history.names[name-1]); 0: none
	backLo  uint16 // id minus the previous event's id: low 16 bits (high 8 in word)
	index   int32  // a Map iteration's index or a MapStateStarted's length; with flagDetail: position in history.details
}

const (
	flagInput = 1 << iota
	flagOutput
	flagErr
	flagDetail // the event's fields are in history.details[index]
	flagMs     // the offset counts milliseconds
)

const (
	flagsShift = 7
	backShift  = 12
	offShift   = 20
	maxOff     = 1<<(64-offShift) - 1
	maxBack    = 1<<24 - 1
)

var _ [32 - unsafe.Sizeof(rec{})]byte // a rec stays within 32 bytes

func (r *rec) kind() uint8  { return uint8(r.word & (1<<flagsShift - 1)) }
func (r *rec) flags() uint8 { return uint8(r.word>>flagsShift) & 0x1f }
func (r *rec) back() int64 {
	return int64(r.backLo) | int64(r.word>>backShift&0xff)<<16
}

// recDetail holds the fields of task, failure and start events, and of
// events whose id, index or time do not fit in a rec.
type recDetail struct {
	ts           time.Time
	hasTS        bool
	prev         int64
	index        int32
	name         *string
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
	if len(all) >= 1<<flagsShift {
		panic("engine: too many history event types for a rec")
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
	chunks  [][]rec
	n       int
	base    time.Time // the execution's start: offsets count from here
	limit   int
	discard bool       // count events for the quota but keep none
	owner   *Execution // its historyExceeded is called once when the quota is reached
	roleArn string     // the machine's: an ExecutionStarted with it records no detail
	// first holds the first events: most executions record few.
	first     [32]rec
	chunkList [4][]rec
	over      bool
	details   []*recDetail
	names     []*string // the machine's state names, by node id-1
	lastTS    time.Time // the last event's time, and its offset from base
	lastOff   time.Duration
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
		if !over && h.owner != nil {
			h.owner.historyExceeded()
		}
		return id
	}
	if !h.discard {
		if len(h.chunks) == 0 {
			h.chunks = append(h.chunkList[:0], h.first[:0])
		} else if len(h.chunks[len(h.chunks)-1]) == cap(h.chunks[len(h.chunks)-1]) {
			// Small executions stay small: chunks grow 32, 32, 64, ... up
			// to chunkSize events.
			h.chunks = append(h.chunks, make([]rec, 0, min(chunkSize, max(32, h.n))))
		}
		c := &h.chunks[len(h.chunks)-1]
		*c = (*c)[:len(*c)+1]
		h.compact(&(*c)[len(*c)-1], e) // in place: no copy of a rec with pointers
	}
	h.n++
	id := int64(h.n)
	h.mu.Unlock()
	return id
}

// compact turns e into a rec; only events with task, failure or start
// fields (or an id, index or time that does not fit) allocate.
func (h *history) compact(r *rec, e *event) {
	needDetail := false
	if n := e.node; n != nil {
		if n.id <= math.MaxUint16 && n.id <= len(h.names) && h.names[n.id-1] == &n.name {
			r.name = uint16(n.id)
		} else {
			needDetail = true
		}
	}
	var back uint64
	if b := int64(h.n) + 1 - e.prev; b > 0 && b <= maxBack {
		back = uint64(b)
		r.backLo = uint16(b)
	} else {
		needDetail = true
	}
	flags := uint8(0)
	var off uint64
	tsInDetail := false
	// On the virtual clock, events mostly share their time.
	d := h.lastOff
	if e.ts != h.lastTS {
		d = e.ts.Sub(h.base)
		h.lastTS, h.lastOff = e.ts, d
	}
	if d < 0 || d == math.MaxInt64 {
		tsInDetail = true
	} else if d%time.Millisecond == 0 && uint64(d/time.Millisecond) <= maxOff {
		flags |= flagMs
		off = uint64(d / time.Millisecond)
	} else if uint64(d) <= maxOff {
		off = uint64(d)
	} else {
		tsInDetail = true
	}
	needDetail = needDetail || tsInDetail
	switch {
	case e.hasInput:
		flags |= flagInput
		r.payload = e.input
	case e.hasOutput:
		flags |= flagOutput
		r.payload = e.output
	}
	if e.hasErr {
		flags |= flagErr
	}
	r.index = e.index
	if e.length != 0 {
		r.index = e.length
	}
	if needDetail || e.errName != "" || e.cause != "" || e.resource != "" || e.resourceType != "" ||
		e.region != "" || e.params != nil || e.timeout != nil || e.heartbeat != nil || (e.roleArn != "" && e.roleArn != h.roleArn) ||
		e.mapRunArn != "" || len(e.assigned) > 0 {
		flags |= flagDetail
		d := &recDetail{ts: e.ts, hasTS: tsInDetail, prev: e.prev, index: r.index, name: nodeName(e.node),
			errName: e.errName, cause: e.cause, resource: e.resource,
			resourceType: e.resourceType, region: e.region, params: e.params, timeout: e.timeout,
			heartbeat: e.heartbeat, roleArn: e.roleArn, mapRunArn: e.mapRunArn, assigned: e.assigned}
		if len(h.details) > math.MaxInt32 {
			panic("engine: too many history events with details")
		}
		r.index = int32(len(h.details))
		h.details = append(h.details, d)
	}
	r.word = uint64(h.kindOf(e.typ)) | uint64(flags)<<flagsShift | back>>16<<backShift | off<<offShift
}

// event expands r back into the event it was made from; called with h.mu
// held or after the execution ended.
func (h *history) event(id int64, r *rec) event {
	flags := r.flags()
	e := event{typ: eventTypes[r.kind()], prev: id - r.back(), index: r.index, length: r.index,
		hasInput: flags&flagInput != 0, hasOutput: flags&flagOutput != 0, hasErr: flags&flagErr != 0}
	if r.name != 0 {
		e.name = h.names[r.name-1]
	}
	if e.typ == types.HistoryEventTypeExecutionStarted {
		e.roleArn = h.roleArn // unless the detail says otherwise
	}
	if e.hasInput {
		e.input = r.payload
	} else if e.hasOutput {
		e.output = r.payload
	}
	off := time.Duration(r.word >> offShift)
	if flags&flagMs != 0 {
		off *= time.Millisecond
	}
	e.ts = h.base.Add(off)
	if flags&flagDetail != 0 {
		d := h.details[r.index]
		e.prev, e.index, e.length, e.name = d.prev, d.index, d.index, d.name
		e.errName, e.cause, e.resource, e.resourceType, e.region = d.errName, d.cause, d.resource, d.resourceType, d.region
		e.params, e.timeout, e.heartbeat, e.roleArn, e.mapRunArn, e.assigned = d.params, d.timeout, d.heartbeat, d.roleArn, d.mapRunArn, d.assigned
		if d.hasTS {
			e.ts = d.ts
		}
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
	case *[1]kv, *[2]kv, *[3]kv, *[4]kv:
		key = [2]uintptr{uintptr(reflect.ValueOf(t).UnsafePointer()), 0}
	}
	if key[0] != 0 {
		if s, ok := c.m[key]; ok {
			return s
		}
	}
	b, err := data.Marshal(expandSmall(v))
	s := string(b)
	if err != nil {
		s = "null"
	}
	if key[0] != 0 {
		c.m[key] = &s
	}
	return &s
}

// kv is one member of a small object kept in the history.
type kv struct {
	k string
	v any
}

// maxSmall is the most members an object may have to be kept as a small
// object.
const maxSmall = 4

// small returns the form in which the history keeps payload v: an object
// of 1 to maxSmall members becomes a *[n]kv (32 bytes a member instead of
// the ~340 of a small Go map), which lets the map itself be collected once
// the states are done with it; any other value is kept as it is. The
// members' values stay shared. t caches the last object it converted:
// consecutive events (a state's output, the next state's input) usually
// carry the same one.
func (t *thread) small(v any) any {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 || len(m) > maxSmall {
		return v
	}
	c := t.hc
	if c == nil {
		c = new(smallCache)
		t.hc = c
	}
	p := unsafe.Pointer(reflect.ValueOf(m).UnsafePointer())
	if p == c.lastMap {
		return c.last
	}
	// The members come from a slab the thread allocates in blocks (8, 16,
	// ... 256 members): one allocation for many objects.
	if cap(c.slab)-len(c.slab) < len(m) {
		c.slab = make([]kv, 0, min(256, max(8, 2*cap(c.slab))))
	}
	at := len(c.slab)
	c.slab = c.slab[:at+len(m)]
	kvs := c.slab[at : at+len(m) : at+len(m)]
	var s any
	switch len(m) {
	case 1:
		s = (*[1]kv)(kvs)
	case 2:
		s = (*[2]kv)(kvs)
	case 3:
		s = (*[3]kv)(kvs)
	default:
		s = (*[4]kv)(kvs)
	}
	// The same shapes of object recur (a state's Parameters make the same
	// keys every time): look the keys of a recent object of that size up,
	// cheaper than iterating over the map.
	shapes := &c.shapes[len(m)-1]
	hit := -1
	for si, prev := range shapes {
		if prev == nil {
			continue
		}
		ok := true
		for j := range prev {
			x, found := m[prev[j].k]
			if !found {
				ok = false
				break
			}
			kvs[j] = kv{prev[j].k, x}
		}
		if ok { // as many keys, all found: the same keys
			hit = si
			break
		}
	}
	switch hit {
	case 0:
	case -1:
		i := 0
		for k, x := range m {
			if i == len(kvs) { // cannot happen: values are immutable
				return v
			}
			kvs[i] = kv{k, x}
			i++
		}
		shapes[1], shapes[0] = shapes[0], kvs
	default:
		shapes[1], shapes[0] = shapes[0], shapes[1]
	}
	c.lastMap, c.last = p, s
	return s
}

// smallCache is what thread.small remembers: the last object it converted
// and, per size, the members of the last two objects of different keys.
type smallCache struct {
	lastMap unsafe.Pointer
	last    any
	shapes  [maxSmall][2][]kv
	slab    []kv
}

// expandSmall turns a small object back into the map it was made from.
func expandSmall(v any) any {
	var kvs []kv
	switch t := v.(type) {
	case *[1]kv:
		kvs = t[:]
	case *[2]kv:
		kvs = t[:]
	case *[3]kv:
		kvs = t[:]
	case *[4]kv:
		kvs = t[:]
	default:
		return v
	}
	m := make(map[string]any, len(kvs))
	for _, e := range kvs {
		m[e.k] = e.v
	}
	return m
}

func ptr[T any](v T) *T { return &v }

func nodeName(n *node) *string {
	if n == nil {
		return nil
	}
	return &n.name
}

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
	return h.buildRange(0, n)
}

// buildRange builds the events with ids from+1 to n.
func (h *history) buildRange(from, n int) []types.HistoryEvent {
	h.mu.Lock()
	chunks := h.chunks
	total := 0
	for _, c := range chunks {
		total += len(c)
	}
	h.mu.Unlock()
	total = min(total, n)
	if total <= from {
		return nil
	}
	c := &marshalCache{m: map[[2]uintptr]*string{}}
	notTruncated := &types.HistoryEventExecutionDataDetails{Truncated: false}
	out := make([]types.HistoryEvent, total-from)
	i := -1
	for ci := range chunks {
		if i+len(chunks[ci]) < from {
			i += len(chunks[ci])
			continue
		}
		for j := range chunks[ci] {
			if i++; i >= total {
				return out
			}
			if i >= from {
				out[i-from] = h.historyEvent(c, notTruncated, i, &chunks[ci][j])
			}
		}
	}
	return out
}

// historyEvent builds the SDK event of r, the event with id i+1.
func (h *history) historyEvent(c *marshalCache, notTruncated *types.HistoryEventExecutionDataDetails, i int, r *rec) types.HistoryEvent {
	{
		ev := h.event(int64(i+1), r)
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
