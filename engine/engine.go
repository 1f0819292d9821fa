// Package engine runs Amazon States Language state machines as AWS Step
// Functions does: the input and output processing order, Retry and Catch,
// every state type, task dispatch to in-process handlers, task tokens, the
// context object, history events as sfn/types.HistoryEvent, and AWS's
// quotas. A clock that is virtual by default makes waits end at once while
// event timestamps advance exactly as on AWS.
//
// The phases are: states.Parse (decode and validate) -> Engine.Compile
// (paths, templates, intrinsics and choice rules become closures, once) ->
// Machine.Start (any number of executions, from any goroutine). A compiled
// Machine is immutable; all run state lives in the Execution.
//
// engine imports states and its subpackages and the AWS SDK types; it never
// imports tasks, sandbox or cmd.
package engine

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Handler is an in-process task: what lambda.NewHandler(fn) returns. A
// returned error's Go type name is the error name that Retry and Catch see,
// as on Lambda (errors.New gives "errorString"; a
// messages.InvokeResponse_Error keeps its ErrorType).
type Handler interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, payload []byte) ([]byte, error)

// Invoke calls f.
func (f HandlerFunc) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return f(ctx, payload)
}

// Options configure an Engine.
type Options struct {
	// Clock drives time; nil means NewVirtualClock(time.Now()).
	Clock Clock
	// Handlers serve Task resources, keyed by Lambda function ARN, function
	// name, or any resource ARN (matched with and without a
	// ".sync"/".waitForTaskToken" suffix).
	Handlers map[string]Handler
	// Mocks are Step Functions Local mocked responses for one test case;
	// they take precedence over Handlers and serve any resource.
	Mocks *MockCase
	// Region and AccountID go into ARNs; defaults us-east-1 and 123456789012.
	Region, AccountID string
	// Logger receives debug records of executions; nil discards them.
	Logger *slog.Logger
	// OnTaskToken, when set, is called for every ".waitForTaskToken" task
	// after its resource was called, with the token and the task's
	// parameters. It may answer at once (SendTaskSuccess/Failure) or later.
	// It also serves ".waitForTaskToken" resources that no handler serves.
	OnTaskToken func(token string, input any)
	// Seed makes JitterStrategy FULL deterministic: each execution draws
	// from a source seeded by Seed and the execution's name.
	Seed uint64
	// MaxHistoryEvents overrides the quota of 25,000 events per execution
	// (for benchmarks of huge Maps); 0 keeps AWS's quota, negative disables.
	MaxHistoryEvents int
	// DiscardHistory keeps no history events (Result.History returns nil) while
	// still counting them against the quota: for load tests and benchmarks
	// that do not read histories.
	DiscardHistory bool
	// OnExecutionEnd, when set, is called once for every execution that
	// ends, including those the engine started itself for a
	// states:startExecution task, which no caller holds: it is how a caller
	// waits for an inventory's fan-out. It must not block.
	OnExecutionEnd func(*Result)
	// OnExecutionStart, when set, is called for every execution that
	// starts or resumes, including those a states:startExecution task
	// starts, before it runs. It must not block.
	OnExecutionStart func(*Execution)
	// Journal, when set, makes every execution durable: recorded before it
	// runs, committed as it goes, resumable after a crash (see Journal).
	Journal Journal
	// TokenSecret keys the task tokens of durable executions (see
	// Journal); keep it with the journal and never show it.
	TokenSecret []byte
	// Unload, when set, is asked each time a durable execution on a real
	// clock has committed and has nothing to do but wait (every branch is
	// in a Wait, a retry back-off or a token wait; wakeAt is the earliest
	// timer, zero if it waits only on tokens). When it answers true the
	// execution is unloaded from memory, as Detach does, and the journal
	// keeps it: its keeper resumes it (Machine.Resume) when wakeAt comes,
	// or when one of its tokens is answered, which meanwhile answers
	// ErrTaskDoesNotExist. It is how a process keeps many executions that
	// wait for days without holding them. It must not block.
	Unload func(x *Execution, wakeAt time.Time) bool
}

// Engine compiles and runs state machines. It is safe for concurrent use.
type Engine struct {
	opts   Options
	clock  Clock
	log    *slog.Logger
	mu     sync.Mutex
	byName map[string]*Machine
	byArn  map[string]*Machine
	tokens sync.Map // token -> *tokenWait

}

// New returns an engine.
func New(opts Options) *Engine {
	e := &Engine{opts: opts, byName: map[string]*Machine{}, byArn: map[string]*Machine{}}
	if e.opts.Region == "" {
		e.opts.Region = "us-east-1"
	}
	if e.opts.AccountID == "" {
		e.opts.AccountID = "123456789012"
	}
	e.clock = opts.Clock
	if e.clock == nil {
		e.clock = NewVirtualClock(timeNow())
	}
	e.log = opts.Logger
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return e
}

// Machine returns a compiled machine by name or ARN.
func (e *Engine) Machine(nameOrArn string) (*Machine, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.byArn[nameOrArn]; ok {
		return m, true
	}
	m, ok := e.byName[nameOrArn]
	return m, ok
}

func (e *Engine) virtual() bool {
	_, ok := e.clock.(*VirtualClock)
	return ok
}

// Clock is the engine's clock.
func (e *Engine) Clock() Clock { return e.clock }

// Region is the region that ARNs name.
func (e *Engine) Region() string { return e.opts.Region }

// AccountID is the account that ARNs name.
func (e *Engine) AccountID() string { return e.opts.AccountID }
