package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/google/uuid"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/jsonpath"
	"github.com/keyflow/keyflow/states/payload"
)

// Execution statuses, as DescribeExecution reports them.
const (
	StatusRunning   = "RUNNING"
	StatusSucceeded = "SUCCEEDED"
	StatusFailed    = "FAILED"
	StatusTimedOut  = "TIMED_OUT"
	StatusAborted   = "ABORTED"
)

// Result is how an execution ended.
type Result struct {
	Status       string // SUCCEEDED, FAILED, TIMED_OUT or ABORTED
	Output       any    // the value tree of the output, when SUCCEEDED
	Error, Cause string
	ExecutionArn string
	StartDate    time.Time
	StopDate     time.Time

	hist *lazyHistory
}

// History returns the execution's events as GetExecutionHistory gives
// them. The events are built on the first call (payloads become JSON text
// only then) and cached; it is safe to call from several goroutines. It is
// nil when the engine discards histories (Options.DiscardHistory) or the
// execution never started.
func (r *Result) History() []types.HistoryEvent {
	if r == nil || r.hist == nil {
		return nil
	}
	return r.hist.get()
}

// Execution is one run of a Machine.
type Execution struct {
	m      *Machine
	name   string
	arn    string
	input  any
	inSize int // of input, as JSON text
	start  time.Time
	run    runner
	hist   history
	ctx    context.Context
	cancel context.CancelFunc
	// stopWatch stops watching the caller's context (virtual clock), nil
	// when it cannot end.
	stopWatch func() bool

	stopMu  sync.Mutex
	stopped *stopReason

	rngMu sync.Mutex
	rng   *rand.Rand

	mockMu    sync.Mutex
	mockCalls map[string]int

	tokMu  sync.Mutex
	tokens []string

	ctxOnce sync.Once
	ctxExec map[string]any // $$.Execution, see execContext

	rngOnce sync.Once // rng is made on first use: most executions draw nothing
	depth   int
	// parent is the execution whose startExecution task started this one.
	parent string
	// awaited: the parent waits for the result in this process.
	awaited bool

	dur      *durability // nil unless the engine has a Journal
	commitMu sync.Mutex
	// settled is closed the first time the execution has nothing to do
	// but wait, or when it ends (see Settled).
	settled     chan struct{}
	settledOnce sync.Once
	done        chan struct{}
	result      *Result
}

// stopReason ends an execution from outside its states: the execution's
// TimeoutSeconds, the history quota, or the caller's context.
type stopReason struct {
	status       string
	errName      string
	cause        string
	eventType    types.HistoryEventType
	recordDetail bool
}

// errStopped unwinds threads of an execution that is being stopped.
var errStopped = errors.New("engine: execution stopped")

// nameRecord is a name a machine's execution used. input is the running
// execution's input tree: serialised only when the name is started again
// while it runs (AWS returns the running execution when the input is the
// same), and dropped when the execution ends.
type nameRecord struct {
	input   any
	running *Execution
}

// Name returns the execution's name.
func (x *Execution) Name() string { return x.name }

// Arn returns the execution's ARN.
func (x *Execution) Arn() string { return x.arn }

// Done is closed when the execution has ended.
func (x *Execution) Done() <-chan struct{} { return x.done }

// Stop aborts a running execution, as StopExecution does.
func (x *Execution) Stop(errName, cause string) {
	x.stopWith(&stopReason{status: StatusAborted, errName: errName, cause: cause,
		eventType: types.HistoryEventTypeExecutionAborted, recordDetail: errName != "" || cause != ""})
}

func (x *Execution) stopWith(r *stopReason) {
	x.stopMu.Lock()
	if x.stopped == nil {
		x.stopped = r
	}
	x.stopMu.Unlock()
	x.cancel()
	x.run.wakeCanceled()
}

// Wait blocks until the execution ends or ctx is done; in the latter case
// the execution keeps running and Wait returns nil.
func (x *Execution) Wait(ctx context.Context) *Result {
	select {
	case <-x.done:
		return x.result
	case <-ctx.Done():
		return nil
	}
}

// Run starts an execution and waits for it to end.
func (m *Machine) Run(ctx context.Context, name string, input any) *Result {
	x, err := m.Start(ctx, name, input)
	if err != nil {
		now := m.e.clock.Now()
		var ae *APIError
		res := &Result{Status: StatusFailed, Error: "States.Runtime", Cause: err.Error(), StartDate: now, StopDate: now}
		if errors.As(err, &ae) {
			res.Error, res.Cause = ae.Name, ae.Message
		}
		return res
	}
	res := x.Wait(ctx)
	if res == nil {
		x.Stop("", "")
		<-x.done
		res = x.result
	}
	return res
}

// Start starts an execution. name follows AWS's rules (1-80 characters, no
// whitespace, control characters or any of < > { } [ ] ? * " # % \ ^ | ~ `
// $ & , ; : /); "" generates a UUID. As on AWS for Standard workflows, a
// name already used by this machine is ExecutionAlreadyExists, except that
// starting a running execution again with the same input returns it.
// input is a value tree, []byte or json.RawMessage of JSON text, or any Go
// value that encoding/json can encode; nil means {}.
//
// ctx bounds the whole execution: when it ends, the execution is aborted.
func (m *Machine) Start(ctx context.Context, name string, input any) (*Execution, error) {
	return m.start(ctx, name, input, 0)
}

func (m *Machine) start(ctx context.Context, name string, input any, depth int) (*Execution, error) {
	return m.startAt(ctx, name, input, depth, time.Time{})
}

// startAt starts an execution at a given time (an execution started by a
// task on virtual time starts at its parent's now), or now when at is zero.
func (m *Machine) startAt(ctx context.Context, name string, input any, depth int, at time.Time) (*Execution, error) {
	return m.startChild(ctx, name, input, depth, at, "", false)
}

func (m *Machine) startChild(ctx context.Context, name string, input any, depth int, at time.Time, parent string, awaited bool) (*Execution, error) {
	if depth > MaxNesting {
		return nil, apiErr(ErrInvalidExecutionInput, "executions nest deeper than %d", MaxNesting)
	}
	in, err := toTree(input)
	if err != nil {
		return nil, apiErr(ErrInvalidExecutionInput, "%v", err)
	}
	if name == "" {
		name = uuid.NewString()
	} else if err := checkName(name); err != nil {
		return nil, err
	}
	return m.launchAs(ctx, name, in, depth, at, nil, parent, awaited)
}

// launch starts a named execution, new (stored nil) or resumed from its
// stored history.
func (m *Machine) launch(ctx context.Context, name string, in any, depth int, at time.Time, stored []types.HistoryEvent) (*Execution, error) {
	return m.launchAs(ctx, name, in, depth, at, stored, "", false)
}

// awaited marks an execution whose parent waits in this process for its
// result (a ".sync" start): it is never unloaded (Options.Unload).
func (m *Machine) launchAs(ctx context.Context, name string, in any, depth int, at time.Time, stored []types.HistoryEvent, parent string, awaited bool) (*Execution, error) {
	inSize := data.Size(in)
	if inSize > MaxPayloadBytes {
		return nil, apiErr(ErrInvalidExecutionInput, "input is %d bytes, more than the quota of %d", inSize, MaxPayloadBytes)
	}
	e := m.e
	x := &Execution{m: m, name: name, input: in, inSize: inSize, depth: depth, parent: parent, awaited: awaited, done: make(chan struct{}), settled: make(chan struct{})}
	x.arn = m.execArnPrefix + name
	if j := e.opts.Journal; j != nil {
		x.dur = &durability{journal: j, stored: stored, committed: int64(len(stored))}
	}
	if x.dur == nil {
		m.mu.Lock()
		if rec, ok := m.names[name]; ok {
			running, prevIn := rec.running, rec.input
			m.mu.Unlock()
			if running != nil && sameJSON(prevIn, in) {
				return running, nil
			}
			return nil, apiErr(ErrExecutionAlreadyExists, "execution already exists: %q", x.arn)
		}
		m.names[name] = &nameRecord{input: in, running: x}
		m.mu.Unlock()
	}
	if at.IsZero() {
		at = e.clock.Now()
	}
	x.start = at.UTC().Truncate(time.Millisecond)
	if stored == nil {
		x.settle()
	}
	if x.dur != nil && stored == nil {
		raw, err := data.Marshal(in)
		if err != nil {
			return nil, apiErr(ErrInvalidExecutionInput, "%v", err)
		}
		if err := x.dur.journal.Start(ctx, &StartRecord{Machine: m, ExecutionArn: x.arn, Name: name, Input: raw, StartDate: x.start, ParentArn: parent}); err != nil {
			return nil, err
		}
	}
	x.ctx, x.cancel = context.WithCancel(ctx)
	x.hist.limit = MaxHistoryEvents
	if e.opts.MaxHistoryEvents > 0 {
		x.hist.limit = e.opts.MaxHistoryEvents
	} else if e.opts.MaxHistoryEvents < 0 {
		x.hist.limit = 0
	}
	x.hist.discard = e.opts.DiscardHistory
	x.hist.base = x.start
	x.hist.names = m.stateNames
	x.hist.lastTS = x.start // offset 0
	x.hist.owner = x
	x.hist.roleArn = m.roleArn
	if hook := e.opts.OnExecutionStart; hook != nil {
		hook(x)
	}
	root := &thread{x: x, ctx: x.ctx}
	body := func(f *fiber) {
		root.f = f
		out, err := x.runTop(root)
		x.finish(root, out, err)
	}
	if e.virtual() || x.dur != nil {
		s := newSim(x.start)
		x.run = s
		if x.dur != nil {
			if !e.virtual() {
				s.wall = e.clock
			}
			if stored != nil {
				s.replaying = x.replayNextTime
			}
			s.idleHook = x.idle
		}
		if m.timeout > 0 {
			s.deadline(x.start.Add(m.timeout), func() {
				x.stopMu.Lock()
				if x.stopped == nil {
					x.stopped = &stopReason{status: StatusTimedOut, eventType: types.HistoryEventTypeExecutionTimedOut}
				}
				x.stopMu.Unlock()
				x.cancel()
				s.wakeCanceledLocked()
			})
		}
		// Whatever else cancels x.ctx wakes the parked fibers itself
		// (stopWith, the deadline above); only the caller's context
		// needs watching, and only if it can end.
		if ctx.Done() != nil {
			x.stopWatch = context.AfterFunc(ctx, s.wakeCanceled)
		}
		s.start(x.ctx, body)
	} else {
		x.run = realRunner{clock: e.clock}
		if m.timeout > 0 {
			t := time.AfterFunc(m.timeout, func() {
				x.stopWith(&stopReason{status: StatusTimedOut, eventType: types.HistoryEventTypeExecutionTimedOut})
			})
			go func() { <-x.done; t.Stop() }()
		}
		go body(nil)
	}
	return x, nil
}

func (x *Execution) runTop(t *thread) (any, error) {
	t.emit(&event{typ: types.HistoryEventTypeExecutionStarted, input: x.input, hasInput: true, roleArn: x.m.roleArn})
	t.inSize, t.inSizeOK = x.inSize, true
	return t.runProgram(x.m.top, x.input)
}

// finish records the end of the execution and publishes its result.
func (x *Execution) finish(t *thread, out any, err error) {
	if x.Detached() {
		x.release()
		return
	}
	res := &Result{ExecutionArn: x.arn, StartDate: x.start}
	x.stopMu.Lock()
	stop := x.stopped
	x.stopMu.Unlock()
	var fe *failure.Error
	if err != nil && stop == nil {
		fe = asFailure(err)
	}
	switch {
	case stop != nil:
		res.Status, res.Error, res.Cause = stop.status, stop.errName, stop.cause
		e := event{typ: stop.eventType}
		if stop.recordDetail {
			e.errName, e.cause, e.hasErr = stop.errName, stop.cause, true
		}
		t.emit(&e)
	case fe != nil:
		res.Status, res.Error, res.Cause = StatusFailed, fe.Name, fe.Cause
		t.emit(&event{typ: types.HistoryEventTypeExecutionFailed, errName: fe.Name, cause: fe.Cause, hasErr: true})
	case err != nil:
		res.Status, res.Error, res.Cause = StatusFailed, failure.Runtime, err.Error()
		t.emit(&event{typ: types.HistoryEventTypeExecutionFailed, errName: res.Error, cause: res.Cause, hasErr: true})
	default:
		res.Status, res.Output = StatusSucceeded, out
		t.emit(&event{typ: types.HistoryEventTypeExecutionSucceeded, output: out, hasOutput: true})
	}
	res.StopDate = x.run.now()
	if !x.hist.discard {
		res.hist = &lazyHistory{h: &x.hist, n: x.hist.count()}
	}
	x.commitEnd(res)
	if x.Detached() {
		x.release()
		return
	}
	if s, ok := x.run.(*sim); ok {
		s.stopPace()
	}
	x.result = res
	x.dropTokens()
	x.m.mu.Lock()
	if rec, ok := x.m.names[x.name]; ok && rec.running == x {
		rec.running, rec.input = nil, nil
	}
	x.m.mu.Unlock()
	x.cancel()
	if x.stopWatch != nil {
		x.stopWatch()
	}
	if log := x.m.e.log; log.Enabled(context.Background(), slog.LevelDebug) {
		log.Debug("execution ended", "arn", x.arn, "status", res.Status, "error", res.Error)
	}
	if end := x.m.e.opts.OnExecutionEnd; end != nil {
		end(res)
	}
	x.settle()
	close(x.done)
}

// thread is one line of control in an execution: the top level, a
// Parallel branch or a Map iteration. It carries what AWS scopes to it:
// the previous event id of its chain, its variables, and $$.Map.
type thread struct {
	x       *Execution
	f       *fiber
	ctx     context.Context
	prev    int64
	vars    map[string]any
	mapCtx  map[string]any
	noEvent bool // a distributed Map's child: its events are not the parent's
	retry   int64
	entered time.Time
	token   string
	// enteredID is the id of the current state's StateEntered event.
	enteredID int64
	sc        jsonpath.Scope // see tempScope
	// the last $$.State built, see stateContext
	stCtx     map[string]any
	stNode    *node
	stEntered time.Time
	stRetry   int64
	hc        *smallCache // see small; nil until first used
	// inSize bounds the size (as JSON text) of the input of the state
	// being run, when inSizeOK; a state that checks its output against the
	// payload quota sets outSize, the next state's inSize (checkOutput).
	inSize, outSize     int
	inSizeOK, outSizeOK bool
}

func (t *thread) emit(e *event) {
	if t.noEvent && !terminal(e.typ) {
		return
	}
	if !t.x.hist.discard {
		if e.hasInput {
			e.input = t.small(e.input)
		} else if e.hasOutput {
			e.output = t.small(e.output)
		}
	}
	e.ts = t.x.run.stamp(e.ts)
	e.prev = t.prev
	t.prev = t.x.hist.add(e)
	if t.x.dur != nil {
		t.x.checkReplay(t.prev, e.typ)
	}
}

func (t *thread) now() time.Time { return t.x.run.now() }

func (t *thread) child(f *fiber, ctx context.Context) *thread {
	return &thread{x: t.x, f: f, ctx: ctx, prev: t.prev, vars: t.vars, noEvent: t.noEvent}
}

func (t *thread) runProgram(p *program, input any) (any, error) {
	n := p.start
	for n != nil {
		if t.ctx.Err() != nil {
			return nil, errStopped
		}
		t.retry = 0
		t.token = ""
		t.outSizeOK = false
		out, next, err := n.impl.exec(t, n, input)
		if err != nil {
			t.inSizeOK = false
			return nil, t.runtimeCause(n, err)
		}
		t.inSize, t.inSizeOK = t.outSize, t.outSizeOK
		input = out
		n = next
	}
	return input, nil
}

// runtimeCause prefixes the cause of a States.Runtime error raised while
// processing a state's input or output as AWS does: "An error occurred
// while executing the state 'B' (entered at the event id #4). ...".
func (t *thread) runtimeCause(n *node, err error) error {
	var fe *failure.Error
	if n.typ == states.TypeFail || !errors.As(err, &fe) || fe.Name != failure.Runtime ||
		strings.HasPrefix(fe.Cause, "An error occurred while executing the state") || t.enteredID == 0 {
		return err
	}
	return &failure.Error{Name: fe.Name, Cause: fmt.Sprintf("An error occurred while executing the state '%s' (entered at the event id #%d). %s", n.name, t.enteredID, fe.Cause)}
}

// scope is what the paths of node n read; $$ is built only when n needs it.
func (t *thread) scope(n *node, input any) *jsonpath.Scope {
	s := &jsonpath.Scope{Input: input, Vars: t.vars}
	if n.usesCtx {
		s.Context = t.contextObject(n)
	}
	return s
}

// tempScope is scope for a read that ends before the next one starts (a
// path's Get, a template's Eval): it reuses the thread's own Scope instead
// of allocating one per read. Only the goroutine running the thread may
// call it.
func (t *thread) tempScope(n *node, input any) *jsonpath.Scope {
	t.sc = jsonpath.Scope{Input: input, Vars: t.vars}
	if n.usesCtx {
		t.sc.Context = t.contextObject(n)
	}
	return &t.sc
}

func (t *thread) contextObject(n *node) map[string]any {
	c := make(map[string]any, 5)
	c["Execution"], c["State"], c["StateMachine"] = t.x.execContext(), t.stateContext(n), t.x.m.ctxSM
	if t.token != "" {
		c["Task"] = map[string]any{"Token": t.token}
	}
	if t.mapCtx != nil {
		c["Map"] = t.mapCtx
	}
	return c
}

// execContext is $$.Execution, built on first use (from any of the
// execution's goroutines) and then shared.
func (x *Execution) execContext() map[string]any {
	x.ctxOnce.Do(func() {
		x.ctxExec = map[string]any{
			"Id":           x.arn,
			"Input":        x.input,
			"Name":         x.name,
			"RoleArn":      x.m.roleArn,
			"StartTime":    formatTime(x.start),
			"RedriveCount": int64(0),
		}
	})
	return x.ctxExec
}

// random is the execution's seeded source (retry jitter, request ids);
// called with rngMu held.
func (x *Execution) random() *rand.Rand {
	x.rngOnce.Do(func() {
		h := fnv.New64a()
		h.Write([]byte(x.name))
		x.rng = rand.New(rand.NewPCG(x.m.e.opts.Seed, h.Sum64()))
	})
	return x.rng
}

// historyExceeded fails the execution when its history reaches the quota.
func (x *Execution) historyExceeded() {
	x.stopWith(&stopReason{status: StatusFailed, errName: failure.Runtime,
		cause:     fmt.Sprintf("The execution reached the maximum number of history events (%d).", x.hist.limit),
		eventType: types.HistoryEventTypeExecutionFailed, recordDetail: true})
}

// asFailure is err as a *failure.Error, or nil.
func asFailure(err error) *failure.Error {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}

// sameJSON reports whether a and b have the same JSON text.
func sameJSON(a, b any) bool {
	ka, _ := data.Marshal(a)
	kb, _ := data.Marshal(b)
	return string(ka) == string(kb)
}

// stateContext is $$.State. It is immutable, so the thread keeps the last
// one it built and reuses it while the state, its entry and its retry
// count are the same (a Map's ItemSelector reads it once per item).
func (t *thread) stateContext(n *node) map[string]any {
	if t.stCtx != nil && t.stNode == n && t.stEntered.Equal(t.entered) && t.stRetry == t.retry {
		return t.stCtx
	}
	t.stCtx = map[string]any{"EnteredTime": formatTime(t.entered), "Name": n.name, "RetryCount": t.retry}
	t.stNode, t.stEntered, t.stRetry = n, t.entered, t.retry
	return t.stCtx
}

// enter records a state's entry.
func (t *thread) enter(n *node, typ types.HistoryEventType, input any) {
	e := event{typ: typ, ts: t.now(), node: n, input: input, hasInput: true}
	t.emit(&e)
	t.entered = e.ts
	t.enteredID = t.prev
}

// exit applies Assign (already evaluated into vars) and records the exit.
func (t *thread) exit(n *node, typ types.HistoryEventType, output any, assigned map[string]any) {
	t.emit(&event{typ: typ, node: n, output: output, hasOutput: true, assigned: assigned})
}

// assign evaluates n's Assign against v ($ as AWS documents for the state
// type) and returns the new variables; every expression reads the values
// from before the state, as on AWS.
func (t *thread) assign(n *node, tmpl *payload.Template, v any) (map[string]any, error) {
	if tmpl == nil {
		return nil, nil
	}
	got, err := tmpl.Eval(t.scope(n, v))
	if err != nil {
		return nil, err
	}
	m, _ := got.(map[string]any)
	if len(m) == 0 {
		return nil, nil
	}
	vars := make(map[string]any, len(t.vars)+len(m))
	for k, v := range t.vars {
		vars[k] = v
	}
	for k, v := range m {
		vars[k] = v
	}
	t.vars = vars
	return m, nil
}

func formatTime(ts time.Time) string {
	return ts.UTC().Format("2006-01-02T15:04:05.000Z")
}

// CheckName applies AWS's rules for execution and state machine names: an
// *APIError InvalidName when name breaks them.
func CheckName(name string) error { return checkName(name) }

// checkName applies AWS's rules for execution and state machine names.
func checkName(name string) error {
	if n := len([]rune(name)); n < 1 || n > 80 {
		return apiErr(ErrInvalidName, "invalid name %q: must be 1 to 80 characters", truncate(name, 90))
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || (r >= 0x7f && r <= 0x9f) {
			return apiErr(ErrInvalidName, "invalid name %q: no whitespace or control characters", name)
		}
		switch r {
		case '<', '>', '{', '}', '[', ']', '?', '*', '"', '#', '%', '\\', '^', '|', '~', '`', '$', '&', ',', ';', ':', '/':
			return apiErr(ErrInvalidName, "invalid name %q: %q is not allowed", name, r)
		}
	}
	return nil
}

// toTree turns the caller's input into a value tree.
func toTree(input any) (any, error) {
	switch v := input.(type) {
	case nil:
		return map[string]any{}, nil
	case []byte:
		if len(v) == 0 {
			return map[string]any{}, nil
		}
		return data.Parse(v)
	case interface{ MarshalJSON() ([]byte, error) }:
		b, err := v.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return data.Parse(b)
	default:
		return data.FromGo(v)
	}
}

func timeNow() time.Time { return time.Now().UTC() }

// StartDate is when the execution started.
func (x *Execution) StartDate() time.Time { return x.start }
