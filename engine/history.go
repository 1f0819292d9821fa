package engine

import (
	"reflect"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/states/data"
)

// MaxHistoryEvents is AWS's hard quota of events in one execution history.
const MaxHistoryEvents = 25000

// event is a history event as the engine records it: payloads stay value
// trees (shared with the running states, never copied) and become JSON text
// only when the history is built, once, at the end of the execution.
type event struct {
	typ  types.HistoryEventType
	ts   time.Time
	prev int64

	name         string
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

// history is the event log of one execution. Ids are positions in events
// plus one, so they are contiguous by construction.
type history struct {
	mu sync.Mutex
	// chunks hold the events in fixed-size blocks, so that a long history
	// never copies its events to grow.
	chunks   [][]event
	n        int
	limit    int
	discard  bool   // count events for the quota but keep none
	exceeded func() // called once when the quota is reached
	over     bool
}

const chunkSize = 1024

// add appends e and returns its id. When the quota is reached, the event is
// dropped, exceeded is called (it fails the execution), and the returned id
// is the last one recorded.
func (h *history) add(e event) int64 {
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
			h.chunks = append(h.chunks, make([]event, 0, min(chunkSize, max(32, h.n))))
		}
		c := &h.chunks[len(h.chunks)-1]
		*c = append(*c, e)
	}
	h.n++
	id := int64(h.n)
	h.mu.Unlock()
	return id
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

// build turns the log into the events of GetExecutionHistory.
func (h *history) build() []types.HistoryEvent {
	h.mu.Lock()
	chunks := h.chunks
	total := 0
	for _, c := range chunks {
		total += len(c)
	}
	h.mu.Unlock()
	if total == 0 {
		return nil
	}
	c := &marshalCache{m: map[[2]uintptr]*string{}}
	notTruncated := &types.HistoryEventExecutionDataDetails{Truncated: false}
	out := make([]types.HistoryEvent, total)
	var evs []*event
	for ci := range chunks {
		for j := range chunks[ci] {
			evs = append(evs, &chunks[ci][j])
		}
	}
	for i := range out {
		e := evs[i]
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
			d := &types.MapIterationEventDetails{Name: ptr(e.name), Index: e.index}
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
				he.StateEnteredEventDetails = &types.StateEnteredEventDetails{Name: ptr(e.name), Input: in, InputDetails: notTruncated}
			} else if e.hasOutput {
				d := &types.StateExitedEventDetails{Name: ptr(e.name), Output: outp, OutputDetails: notTruncated}
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
		out[i] = he
	}
	return out
}

func eventSubmitted(ts *taskState, out any) event {
	return event{typ: types.HistoryEventTypeTaskSubmitted, resource: ts.api, resourceType: ts.service, output: out, hasOutput: true}
}
