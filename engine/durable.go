package engine

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
)

// A durable execution survives the process that runs it. With
// Options.Journal set, every execution of the engine:
//
//   - is recorded by Journal.Start before it runs (the journal owns name
//     uniqueness, as the service does on AWS);
//   - runs on the one-fiber-at-a-time scheduler even on a real clock, so
//     that its events come in an order fixed by the definition, the input,
//     the task results and the times at which timers and answers came;
//   - commits its new history events (Journal.Commit) whenever no fiber can
//     run (a Wait, a retry back-off, a token wait), before every task call
//     (so that what a task was asked is on disk before it acts), and when it
//     ends;
//   - issues task tokens derived from Options.TokenSecret, the execution and
//     the event count, so that a replay issues the same tokens.
//
// After a crash, Machine.Resume replays an execution from its stored
// history: the states run again, every event takes its stored time, a task
// whose outcome is stored is not called again (its stored result is used),
// a token wait whose answer is stored gets it at the time it came, and
// timers fire at once, as on virtual time. When the stored history runs
// out, the execution carries on live: a task that was in flight is called
// again (handlers are idempotent: AWS does the same), and a timer that
// came due while the process was down fires at once.
//
// Limits: the iterations of a distributed Map keep no events in the
// parent's history, so they run again on replay (their tasks must be
// idempotent, as every keyflow task is); a ".sync" child execution is
// waited for only in the process that started it.

// Journal keeps executions durable (Options.Journal). Start and Commit of
// one execution are called one at a time, in order.
type Journal interface {
	// Start records an execution before it runs. A name the machine
	// already used is an *APIError ExecutionAlreadyExists, unless that
	// execution runs with the same input: then *AlreadyRunning.
	Start(ctx context.Context, s *StartRecord) error
	// Commit appends an execution's new events (ids continue the stored
	// ones) and records its state.
	Commit(ctx context.Context, c *Commit) error
}

// StartRecord is an execution about to run.
type StartRecord struct {
	Machine      *Machine
	ExecutionArn string
	Name         string
	Input        []byte // JSON
	StartDate    time.Time
	// ParentArn is the execution whose states:startExecution task started
	// this one, if any.
	ParentArn string
}

// AlreadyRunning is the journal's answer to a start of a running
// execution with the same name and input: AWS returns that execution.
type AlreadyRunning struct {
	ExecutionArn string
	StartDate    time.Time
}

func (e *AlreadyRunning) Error() string {
	return "engine: execution " + e.ExecutionArn + " is already running"
}

// Commit is what an execution hands its journal.
type Commit struct {
	ExecutionArn string
	// Events are the new events, in order; the first has the id that
	// follows the last stored one.
	Events []types.HistoryEvent
	// Result is set on the last commit, when the execution ended.
	Result *Result
	// WakeAt is, when every fiber waits on a timer, the earliest one: a
	// process that restarts after it is due resumes the execution at once.
	WakeAt time.Time
	// Tokens are the task tokens the execution waits on.
	Tokens []string
	// Idle is set when every branch waits (on WakeAt or on Tokens): the
	// execution has nothing to do until then, and a keeper that restarts
	// need not resume it before.
	Idle bool
}

// durability is what a durable execution keeps beside its history.
type durability struct {
	journal Journal
	// stored is the history as the journal had it when the execution was
	// resumed; the replay follows it.
	stored []types.HistoryEvent
	// committed counts the events the journal holds.
	committed int64
	lastWake  time.Time
	lastIdle  bool
	failed    error
	ended     bool // the end is committed: nothing follows
	result    *Result
}

// commitEnd commits the execution's end.
func (x *Execution) commitEnd(res *Result) {
	if x.dur == nil {
		return
	}
	x.commitMu.Lock()
	x.dur.result = res
	x.commitMu.Unlock()
	x.commit(time.Time{}, false)
}

// replayNextTime is the time of the stored event that the next event
// emitted replays, while there is one.
func (x *Execution) replayNextTime() (time.Time, bool) {
	n := x.hist.last()
	if n < int64(len(x.dur.stored)) {
		if ts := x.dur.stored[n].Timestamp; ts != nil {
			return *ts, true
		}
	}
	return time.Time{}, false
}

// storedNext is the stored event that the next event emitted replays.
func (x *Execution) storedNext() (*types.HistoryEvent, bool) {
	if x.dur == nil {
		return nil, false
	}
	n := x.hist.last()
	if n < int64(len(x.dur.stored)) {
		return &x.dur.stored[n], true
	}
	return nil, false
}

// checkReplay fails the execution when a replayed event is not the one
// stored: the definition or a task no longer behaves as it did.
func (x *Execution) checkReplay(id int64, typ types.HistoryEventType) {
	if x.dur == nil || id > int64(len(x.dur.stored)) || id < 1 {
		return
	}
	if want := x.dur.stored[id-1].Type; want != typ {
		x.stopWith(&stopReason{status: StatusFailed, errName: failure.Runtime,
			cause:     fmt.Sprintf("The execution could not be resumed: its event %d was %s and is now %s.", id, want, typ),
			eventType: types.HistoryEventTypeExecutionFailed, recordDetail: true})
	}
}

// commit hands the journal what it does not hold yet. It is called from
// the execution's fibers, one at a time (the scheduler's baton), and from
// the idle hook, which may overlap with a fiber woken by an answer: the
// lock keeps commits in order.
func (x *Execution) commit(wakeAt time.Time, idle bool) {
	d := x.dur
	if d == nil {
		return
	}
	x.commitMu.Lock()
	defer x.commitMu.Unlock()
	if d.ended || d.failed != nil {
		return
	}
	n := x.hist.last()
	res := d.result
	if res == nil && n <= d.committed && wakeAt.Equal(d.lastWake) && idle == d.lastIdle {
		return
	}
	c := &Commit{ExecutionArn: x.arn, Result: res, WakeAt: wakeAt, Tokens: x.openTokens(), Idle: idle && res == nil}
	if n > d.committed {
		c.Events = x.hist.buildRange(int(d.committed), int(n))
	}
	if err := d.journal.Commit(context.WithoutCancel(x.ctx), c); err != nil {
		// The process can no longer keep this execution: stop running it
		// without an end, so that a restart resumes it from what was kept.
		d.failed = err
		x.m.e.log.Error("journal commit failed; the execution stops here and resumes on restart", "arn", x.arn, "error", err.Error())
		x.cancel()
		x.run.wakeCanceled()
		return
	}
	d.committed = max(d.committed, n)
	d.lastWake, d.lastIdle = wakeAt, idle
	d.ended = res != nil
}

// openTokens lists the tokens of unanswered waits.
func (x *Execution) openTokens() []string {
	x.tokMu.Lock()
	defer x.tokMu.Unlock()
	var out []string
	for _, tok := range x.tokens {
		if v, ok := x.m.e.tokens.Load(tok); ok {
			w := v.(*tokenWait)
			open := false
			x.run.locked(w, func() { open = !w.resolved })
			if open {
				out = append(out, tok)
			}
		}
	}
	return out
}

// tokenFor is the token of a new token wait: random, or for a durable
// execution derived from the secret, the execution and its event count,
// so that a replay issues the same one.
func (x *Execution) tokenFor() string {
	secret := x.m.e.opts.TokenSecret
	if x.dur == nil || len(secret) == 0 {
		return newToken()
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(x.arn))
	mac.Write([]byte{0})
	mac.Write([]byte(strconv.FormatInt(x.hist.last(), 10)))
	return tokenPrefix + hex.EncodeToString(mac.Sum(nil))
}

// replayedResult is the stored outcome of the task call about to be made,
// if the stored history has it.
func (c *taskCall) replayedResult() (any, error, bool) {
	ev, ok := c.t.x.storedNext()
	if !ok {
		return nil, nil, false
	}
	switch ev.Type {
	case types.HistoryEventTypeLambdaFunctionSucceeded:
		return parseStored(ev.LambdaFunctionSucceededEventDetails.Output), nil, true
	case types.HistoryEventTypeTaskSucceeded:
		return parseStored(ev.TaskSucceededEventDetails.Output), nil, true
	case types.HistoryEventTypeLambdaFunctionFailed:
		d := ev.LambdaFunctionFailedEventDetails
		return nil, &failure.Error{Name: deref(d.Error), Cause: deref(d.Cause)}, true
	case types.HistoryEventTypeLambdaFunctionTimedOut:
		d := ev.LambdaFunctionTimedOutEventDetails
		return nil, &failure.Error{Name: deref(d.Error), Cause: deref(d.Cause)}, true
	case types.HistoryEventTypeTaskFailed:
		d := ev.TaskFailedEventDetails
		return nil, &failure.Error{Name: deref(d.Error), Cause: deref(d.Cause)}, true
	case types.HistoryEventTypeTaskTimedOut:
		d := ev.TaskTimedOutEventDetails
		return nil, &failure.Error{Name: deref(d.Error), Cause: deref(d.Cause)}, true
	}
	return nil, nil, false
}

// replayedSubmission is the stored TaskSubmitted of the token task about to
// call its resource: the call was made before the crash.
func (c *taskCall) replayedSubmission() (any, bool) {
	ev, ok := c.t.x.storedNext()
	if !ok || ev.Type != types.HistoryEventTypeTaskSubmitted {
		return nil, false
	}
	return parseStored(ev.TaskSubmittedEventDetails.Output), true
}

// replayAnswer gives a replayed token wait the answer its token had, at the
// time it came; without one, the wait carries on live, with a fresh
// heartbeat period from now.
func (x *Execution) replayAnswer(w *tokenWait, submittedID int64) {
	s, ok := x.run.(*sim)
	if !ok || x.dur == nil {
		return
	}
	for i := int(x.hist.last()); i < len(x.dur.stored); i++ {
		ev := &x.dur.stored[i]
		if ev.PreviousEventId != submittedID || ev.Timestamp == nil {
			continue
		}
		var fill func()
		switch ev.Type {
		case types.HistoryEventTypeTaskSucceeded:
			out := parseStored(ev.TaskSucceededEventDetails.Output)
			fill = func() { w.output = out }
		case types.HistoryEventTypeTaskFailed:
			d := ev.TaskFailedEventDetails
			fill = func() { w.failed, w.errName, w.cause = true, deref(d.Error), deref(d.Cause) }
		case types.HistoryEventTypeTaskTimedOut:
			hb := deref(ev.TaskTimedOutEventDetails.Error) == failure.HeartbeatTimeout
			fill = func() { w.hbLapsed = hb; w.timedOut.Store(true) }
		default:
			continue
		}
		// The stored answer decides; the wait's own deadlines, which
		// knew of heartbeats that left no event, must not.
		s.locked(w, func() { w.timeout, w.heartbeat = 1<<62, 0 })
		s.answerAt(w, *ev.Timestamp, fill)
		return
	}
	if _, replaying := x.replayNextTime(); !replaying || x.hist.last() == int64(len(x.dur.stored)) {
		now := x.m.e.clock.Now()
		s.locked(w, func() {
			if now.After(w.lastBeat) {
				w.lastBeat = now
			}
		})
	}
}

func parseStored(s *string) any {
	if s == nil || *s == "" {
		return nil
	}
	v, err := data.Parse([]byte(*s))
	if err != nil {
		return *s
	}
	return v
}

// Resume runs again an execution that a journal keeps, from its stored
// history (see Journal): the same name, input and start, and the events
// so far. It is how a process that restarts carries on with the executions
// that were running.
func (m *Machine) Resume(ctx context.Context, name string, input []byte, start time.Time, stored []types.HistoryEvent) (*Execution, error) {
	if m.e.opts.Journal == nil {
		return nil, fmt.Errorf("engine: resume needs a journal")
	}
	if len(stored) == 0 || stored[0].Type != types.HistoryEventTypeExecutionStarted {
		return nil, fmt.Errorf("engine: resume of %q: the stored history does not start with ExecutionStarted", name)
	}
	for i := range stored {
		if stored[i].Id != int64(i+1) {
			return nil, fmt.Errorf("engine: resume of %q: stored event %d has id %d", name, i+1, stored[i].Id)
		}
	}
	in, err := toTree(input)
	if err != nil {
		return nil, apiErr(ErrInvalidExecutionInput, "%v", err)
	}
	return m.launch(ctx, name, in, 0, start, stored)
}

// errDetached is why a detached execution stopped: the process let go of
// it, and the journal keeps it running.
var errDetached = errors.New("engine: execution detached")

// Detach stops running a durable execution in this process without
// recording an end: the journal keeps it RUNNING, and Resume (in this or a
// later process) carries it on. Wait then returns nil. It is how a service
// shuts down, and what a journal failure does.
func (x *Execution) Detach() {
	if x.dur == nil {
		return
	}
	x.commitMu.Lock()
	if x.dur.failed == nil {
		x.dur.failed = errDetached
	}
	x.commitMu.Unlock()
	x.cancel()
	x.run.wakeCanceled()
}

// Detached reports whether the execution stopped running in this process
// without an end: Detach, an unload (Options.Unload) or a journal failure.
// Its Done closes once it has let go; the journal keeps it RUNNING.
func (x *Execution) Detached() bool {
	if x.dur == nil {
		return false
	}
	x.commitMu.Lock()
	defer x.commitMu.Unlock()
	return x.dur.failed != nil
}

// release drops what a detached execution held in this process.
func (x *Execution) release() {
	if s, ok := x.run.(*sim); ok {
		s.stopPace()
	}
	x.dropTokens()
	x.cancel()
	if x.stopWatch != nil {
		x.stopWatch()
	}
	x.settle()
	close(x.done)
}

// dropTokens forgets the execution's tokens. A token it shares with a
// newer run of the same execution (a resume derives the same tokens) is
// that run's and stays.
func (x *Execution) dropTokens() {
	x.tokMu.Lock()
	for _, tok := range x.tokens {
		if v, ok := x.m.e.tokens.Load(tok); ok && v.(*tokenWait).x == x {
			x.m.e.tokens.CompareAndDelete(tok, v)
		}
	}
	x.tokMu.Unlock()
}

// Settled is closed once a resumed execution has replayed its stored
// history and has nothing to do but wait (every branch in a Wait, a
// back-off or a token wait), or when it ends or lets go: then the tokens
// it waits on can be answered and it can be stopped. A new execution is
// settled from the start.
func (x *Execution) Settled() <-chan struct{} { return x.settled }

func (x *Execution) settle() { x.settledOnce.Do(func() { close(x.settled) }) }

// idle is the durable scheduler's idle hook: commit, then unload when the
// keeper says so.
func (x *Execution) idle(wakeAt time.Time) {
	x.commit(wakeAt, true)
	if _, replaying := x.replayNextTime(); replaying {
		return // a replay goes idle only while a stored answer is due: not settled yet
	}
	if u := x.m.e.opts.Unload; u != nil && !x.awaited && !x.m.e.virtual() && u(x, wakeAt) {
		x.unload()
	}
	x.settle()
}

// unload lets go of an idle execution whose state is committed. It is
// atomic with the answers to its tokens: under the scheduler's lock, either
// an answer came first (the execution is no longer idle and stays) or the
// execution is marked unloaded and every later answer finds
// ErrTaskDoesNotExist, which sends its caller to resume it.
func (x *Execution) unload() {
	s, ok := x.run.(*sim)
	if !ok {
		return
	}
	d := x.dur
	x.commitMu.Lock()
	s.mu.Lock()
	if !s.idle || len(s.runq) > 0 || d.failed != nil || d.ended || x.hist.last() != d.committed {
		s.mu.Unlock()
		x.commitMu.Unlock()
		return
	}
	s.unloaded = true
	if p := s.pace; p != nil {
		p.stop()
		s.pace = nil
	}
	d.failed = errDetached
	s.mu.Unlock()
	x.commitMu.Unlock()
	x.cancel()
	s.wakeCanceled()
}
