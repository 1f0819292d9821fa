// Package local is where keyflow's pieces meet on one machine: it registers
// every tasks handler with an engine as the Lambda function the workflows
// name (statemachines.FunctionNames), backed either by the embedded sandbox
// account or by real AWS clients, compiles the workflows, answers approvals
// with the approver's own STS identity, and, as the EventBridge rule does on
// AWS, writes an audit record of every execution that ends (audit.go).
//
// Time: on the virtual clock every execution keeps its own time, which the
// engine hands a handler through engine.TaskTime. A handler gets it as its
// Now. The sandbox has one Now for everything, so sandbox-backed calls are
// serialised and the sandbox's Now reads the time of the call in progress
// (TaskClock); AWS-backed calls run concurrently with a Now per call.
//
// Only cmd/keyflow imports this package.
package local

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

// TaskClock is the sandbox's clock under the engine: during a handler call
// it is that execution's time, otherwise Fallback (the wall clock when nil).
// Create the sandbox with Options{Now: clock.Now} and give the same clock
// to New.
type TaskClock struct {
	Fallback func() time.Time

	call sync.Mutex // held for a whole handler call: one execution's time at once
	mu   sync.Mutex // guards at; Now takes only this, as handlers call it under call
	at   time.Time
}

// Now is the time of the call in progress.
func (c *TaskClock) Now() time.Time {
	c.mu.Lock()
	at := c.at
	c.mu.Unlock()
	if !at.IsZero() {
		return at
	}
	if c.Fallback != nil {
		return c.Fallback()
	}
	return time.Now().UTC()
}

// during runs fn with the clock set to t, excluding every other call.
func (c *TaskClock) during(t time.Time, fn func()) {
	c.call.Lock()
	defer c.call.Unlock()
	c.mu.Lock()
	c.at = t
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.at = time.Time{}
		c.mu.Unlock()
	}()
	fn()
}

// SandboxAccounts is tasks.Accounts over the embedded sandbox: every account
// is a map lookup (created on first use, as the sandbox does).
type SandboxAccounts struct{ Sandbox *sandbox.Sandbox }

// IAM implements tasks.Accounts.
func (a SandboxAccounts) IAM(_ context.Context, id string) (tasks.IAMAPI, error) {
	return a.Sandbox.IAM(id), nil
}

// SecretsManager implements tasks.Accounts.
func (a SandboxAccounts) SecretsManager(_ context.Context, id string) (tasks.SecretsManagerAPI, error) {
	return a.Sandbox.SecretsManager(id), nil
}

// SNS implements tasks.Accounts.
func (a SandboxAccounts) SNS(_ context.Context, id string) (tasks.SNSAPI, error) {
	return a.Sandbox.SNS(id), nil
}

// Organizations implements tasks.Accounts.
func (a SandboxAccounts) Organizations(context.Context) (tasks.OrganizationsAPI, error) {
	return a.Sandbox.Organizations(), nil
}

// Options configure a Backend. Give either Sandbox (with Clock, the
// TaskClock the sandbox was created with) or Accounts and STS (AWS).
type Options struct {
	Sandbox *sandbox.Sandbox
	Clock   *TaskClock

	Accounts tasks.Accounts
	STS      tasks.STSAPI

	// Engine clock; nil is a virtual clock starting now.
	EngineClock engine.Clock
	// Region and AccountID of the engine's ARNs (us-east-1, 123456789012).
	Region, AccountID string
	// TopicArn is Notify's topic; with a sandbox, default the seeded topic
	// of the management account.
	TopicArn, SecurityTeam string
	// AdminsGroup is the Quarantine handler's admins group; also the
	// workflows' unless Workflows says otherwise.
	AdminsGroup string
	// Workflows are the workflows' options; Resources is replaced by
	// statemachines.Local.
	Workflows statemachines.Options
	Log       *slog.Logger
	// Approve, when set, answers every approval as soon as it is asked:
	// the decision and the account whose STS identity is the approver (""
	// leaves it waiting). On the virtual clock this is the only way to
	// answer: an execution waiting on nothing but a token jumps straight to
	// its timeout, and the workflow applies its default decision.
	Approve func(Approval) (d statemachines.Decision, approverAccount string)
	// AuditStore receives one audit record per ended execution, chained,
	// as the audit-record function does on AWS. With a sandbox and no
	// AuditStore, the records go to the sandbox's S3 bucket AuditBucket
	// (default keyflow-audit-<AccountID>), created when missing; with
	// neither, nothing is audited.
	AuditStore  tasks.RecordStore
	AuditBucket string
	// Email through SES, off unless EmailFrom is set: Notify sends its
	// templated email (EmailTemplate, default "keyflow-notify") from
	// EmailFrom through SES, or, with a sandbox and no SES, through the
	// sandbox's SES in AccountID, where the sender's domain and the
	// template are created when missing.
	SES                      tasks.SESAPI
	EmailFrom, EmailTemplate string
	// OpenEngine, when set, builds the engine from the options the backend
	// made (handlers, hooks): how `keyflow serve` runs the workflows on
	// the durable service's engine. Nil is engine.New.
	OpenEngine func(engine.Options) (*engine.Engine, error)
	// Executions, when set, is where the hygiene inventory lists the MFA
	// workflow's running executions: the durable service's ListExecutions
	// in keyflow serve, which knows the dormant ones of a store. Nil: the
	// backend tracks its engine's executions from their start and end,
	// which is all of them unless executions are resumed only when due
	// (dormant ones kept in a store across a restart).
	Executions tasks.ExecutionsAPI
	// OnExecutionEnd, when set, also receives every ended execution (the
	// engine's hook, which the backend uses itself): how an in-process
	// caller keeps the histories of the lifecycles an inventory starts. It
	// must not block.
	OnExecutionEnd func(*engine.Result)
}

// Backend is an engine with keyflow's handlers and workflows.
type Backend struct {
	Engine  *engine.Engine
	opts    Options
	log     *slog.Logger
	ended   *endTracker
	audit   *auditor // nil when nothing is audited
	mu      sync.Mutex
	pending map[string]Approval // by execution ARN
	expect  map[string]bool     // lifecycle execution names the inventory started
	running *runningExecutions  // for the hygiene inventory
}

// Approval is a task token waiting for a decision.
type Approval struct {
	ExecutionArn string
	AccountID    string
	UserName     string
	Token        string    // never printed: `keyflow approve` uses it and forgets it
	RequestedAt  time.Time // the execution's time when it asked
}

// New builds the backend: handlers registered, workflows compiled under
// statemachines.StateMachineName.
func New(o Options) (*Backend, error) {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccountID == "" {
		o.AccountID = "123456789012"
	}
	if o.Sandbox != nil {
		if o.Clock == nil {
			return nil, fmt.Errorf("local: a sandbox needs the TaskClock it was created with")
		}
		o.Accounts = SandboxAccounts{Sandbox: o.Sandbox}
		if o.TopicArn == "" {
			o.TopicArn = fmt.Sprintf("arn:aws:sns:%s:%s:%s", o.Sandbox.Region(), o.Sandbox.ManagementAccount(), sandbox.SeedTopic)
		}
	}
	if o.Accounts == nil {
		return nil, fmt.Errorf("local: no sandbox and no AWS accounts")
	}
	if o.TopicArn == "" {
		return nil, fmt.Errorf("local: no SNS topic for notifications")
	}
	if o.EngineClock == nil {
		o.EngineClock = engine.NewVirtualClock(time.Now().UTC())
	}
	if o.Workflows.AdminsGroup == "" {
		o.Workflows.AdminsGroup = o.AdminsGroup
	}
	if o.AdminsGroup == "" {
		o.AdminsGroup = o.Workflows.AdminsGroup
	}
	o.Workflows.Resources = statemachines.Local(o.Region, o.AccountID)
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Backend{opts: o, log: log, pending: map[string]Approval{}, expect: map[string]bool{}, running: newRunningExecutions()}
	b.ended = newEndTracker()
	if err := b.setUpEmail(); err != nil {
		return nil, err
	}
	store := o.AuditStore
	if store == nil && o.Sandbox != nil {
		if o.AuditBucket == "" {
			b.opts.AuditBucket = AuditBucket(o.AccountID)
		}
		var err error
		if store, err = b.sandboxRecordStore(b.opts.AuditBucket); err != nil {
			return nil, err
		}
	}
	if store != nil {
		b.audit = newAuditor(b, store)
	}
	open := o.OpenEngine
	if open == nil {
		open = func(eo engine.Options) (*engine.Engine, error) { return engine.New(eo), nil }
	}
	var err error
	b.Engine, err = open(engine.Options{
		Clock: o.EngineClock, Handlers: b.handlers(), Region: o.Region, AccountID: o.AccountID,
		Logger: log, OnTaskToken: b.onTaskToken, OnExecutionStart: b.running.started, OnExecutionEnd: func(r *engine.Result) {
			// Not running any more before anyone hears of the end: a
			// caller who then runs the hygiene inventory must not find
			// it running. Then the caller's hook: once Settle sees an
			// execution end, the caller already has it, and its audit
			// is queued.
			b.running.ended(r)
			if o.OnExecutionEnd != nil {
				o.OnExecutionEnd(r)
			}
			if b.audit != nil {
				b.audit.enqueue(r)
			}
			b.ended.record(r)
		},
	})
	if err != nil {
		return nil, err
	}
	// The lifecycle first: the inventory starts it by name.
	for _, name := range statemachines.Names() {
		def, err := statemachines.Build(name, o.Workflows)
		if err != nil {
			return nil, err
		}
		if _, err := b.Engine.Compile(def, statemachines.StateMachineName(name)); err != nil {
			return nil, fmt.Errorf("local: %s: %w", name, err)
		}
	}
	return b, nil
}

// Machine returns a workflow's compiled machine ("lifecycle", ...).
func (b *Backend) Machine(workflow string) (*engine.Machine, bool) {
	return b.Engine.Machine(statemachines.StateMachineName(workflow))
}

// handlers registers one engine handler per Lambda function.
func (b *Backend) handlers() map[string]engine.Handler {
	o := b.opts
	n := statemachines.FunctionNames
	hs := map[string]engine.Handler{
		n.Inventory: wrap(b, func(now func() time.Time) handle[tasks.InventoryInput, tasks.InventoryOutput] {
			h := &tasks.Inventory{Accounts: o.Accounts, Now: now, Log: b.log}
			return b.trackInventory(h.Handle)
		}),
		n.CreateKey: wrap(b, func(now func() time.Time) handle[tasks.CreateKeyInput, tasks.CreateKeyOutput] {
			return (&tasks.CreateKey{Accounts: o.Accounts, Now: now, Log: b.log}).Handle
		}),
		n.DeactivateKey: wrap(b, func(now func() time.Time) handle[tasks.DeactivateKeyInput, tasks.DeactivateKeyOutput] {
			return (&tasks.DeactivateKey{Accounts: o.Accounts, Now: now, Log: b.log}).Handle
		}),
		n.DeleteKey: wrap(b, func(now func() time.Time) handle[tasks.DeleteKeyInput, tasks.DeleteKeyOutput] {
			return (&tasks.DeleteKey{Accounts: o.Accounts, Now: now, Log: b.log}).Handle
		}),
		n.Notify: wrap(b, func(now func() time.Time) handle[notifyInput, tasks.NotifyOutput] {
			h := &tasks.Notify{Accounts: o.Accounts, Now: now, Log: b.log, TopicArn: o.TopicArn, SecurityTeam: o.SecurityTeam,
				SES: o.SES, EmailFrom: o.EmailFrom, EmailTemplate: o.EmailTemplate}
			return func(ctx context.Context, in notifyInput) (*tasks.NotifyOutput, error) {
				if in.ExecutionArn != "" && in.Event == "ApprovalRequested" {
					b.mu.Lock()
					a := b.pending[in.ExecutionArn]
					a.ExecutionArn, a.AccountID, a.UserName, a.RequestedAt = in.ExecutionArn, in.AccountID, in.UserName, now()
					b.pending[in.ExecutionArn] = a
					b.mu.Unlock()
				}
				return h.Handle(ctx, in.NotifyInput)
			}
		}),
		n.Quarantine: wrap(b, func(now func() time.Time) handle[tasks.QuarantineInput, tasks.QuarantineOutput] {
			return (&tasks.Quarantine{Accounts: o.Accounts, Now: now, Log: b.log, AdminsGroup: o.AdminsGroup}).Handle
		}),
		n.Release: wrap(b, func(now func() time.Time) handle[tasks.ReleaseInput, tasks.ReleaseOutput] {
			return (&tasks.Release{Accounts: o.Accounts, Now: now, Log: b.log}).Handle
		}),
	}
	b.hygieneHandlers(hs)
	return hs
}

// notifyInput is what the approval states send Notify: its input plus the
// fields that let a local approver find the waiting token. The token itself
// is dropped here, so the handler never sees it.
type notifyInput struct {
	tasks.NotifyInput
	ExecutionArn string `json:"executionArn,omitempty"`
	TaskToken    string `json:"taskToken,omitempty"`
}

type handle[I, O any] func(ctx context.Context, in I) (*O, error)

// wrap turns a handler into an engine handler: JSON in and out with
// encoding/json (concurrency-safe, unlike lambda.NewHandler's pooled
// buffer), the error returned as is so that its Go type name is the error
// name, and Now the execution's time at the call.
func wrap[I, O any](b *Backend, build func(now func() time.Time) handle[I, O]) engine.Handler {
	return engine.HandlerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		at, ok := engine.TaskTime(ctx)
		if !ok {
			at = time.Now().UTC()
		}
		var in I
		if err := json.Unmarshal(payload, &in); err != nil {
			return nil, &tasks.InvalidInput{Field: "payload", Reason: err.Error()}
		}
		var out *O
		var err error
		call := func() { out, err = build(func() time.Time { return at })(ctx, in) }
		if b.opts.Clock != nil {
			b.opts.Clock.during(at, call)
		} else {
			call()
		}
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	})
}

// trackInventory remembers the lifecycle executions an inventory run will
// start, so Settle can wait for them: the engine starts them on its own.
func (b *Backend) trackInventory(h handle[tasks.InventoryInput, tasks.InventoryOutput]) handle[tasks.InventoryInput, tasks.InventoryOutput] {
	return func(ctx context.Context, in tasks.InventoryInput) (*tasks.InventoryOutput, error) {
		out, err := h(ctx, in)
		if err != nil || out.DryRun || in.Organization || in.MaxDue == 1 {
			return out, err
		}
		b.mu.Lock()
		for _, k := range out.Due {
			if k.Action == "rotate" || k.Action == "rotate-after-deleting-inactive" {
				b.expect[statemachines.LifecycleExecutionName(k.AccountID, k.UserName, k.AccessKeyID)] = true
			}
		}
		b.mu.Unlock()
		return out, err
	}
}

func (b *Backend) onTaskToken(token string, input any) {
	m, _ := input.(map[string]any)
	p, _ := m["Payload"].(map[string]any)
	arn, _ := p["executionArn"].(string)
	if arn == "" {
		b.log.Warn("a task token without an executionArn in its payload: it cannot be approved locally")
		return
	}
	b.mu.Lock()
	a := b.pending[arn]
	a.ExecutionArn, a.Token = arn, token
	b.pending[arn] = a
	b.mu.Unlock()
	if b.opts.Approve == nil {
		return
	}
	if d, acct := b.opts.Approve(a); d != "" {
		if err := b.Decide(context.Background(), arn, d, acct); err != nil {
			// The task then times out and the workflow's default decision
			// applies, which the execution's output says.
			b.log.Error("answering an approval", "executionArn", arn, "error", err)
		}
	}
}

// Pending lists the approvals waiting for a decision (tokens included: for
// in-process callers only).
func (b *Backend) Pending() []Approval {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Approval
	for _, a := range b.pending {
		if a.Token != "" {
			out = append(out, a)
		}
	}
	return out
}

// Decide answers the approval of an execution. The approver is whoever the
// caller's credentials say (sts:GetCallerIdentity in approverAccount on the
// sandbox, the configured credentials on AWS), never a name typed in; the
// decision's time is the execution's time when it asked, since the virtual
// clock answers at once.
func (b *Backend) Decide(ctx context.Context, executionArn string, d statemachines.Decision, approverAccount string) error {
	b.mu.Lock()
	a, ok := b.pending[executionArn]
	if ok && a.Token != "" {
		delete(b.pending, executionArn)
	}
	b.mu.Unlock()
	if !ok || a.Token == "" {
		return fmt.Errorf("local: no approval waiting for %s", executionArn)
	}
	stsc := b.opts.STS
	if b.opts.Sandbox != nil {
		stsc = b.opts.Sandbox.STS(approverAccount)
	}
	if stsc == nil {
		return fmt.Errorf("local: no STS client to identify the approver")
	}
	id, err := stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("local: identifying the approver: %w", err)
	}
	out, _ := json.Marshal(map[string]any{
		"decision": string(d), "approver": aws.ToString(id.Arn), "decidedAt": a.RequestedAt.UTC().Format(time.RFC3339),
	})
	return b.Engine.SendTaskSuccess(a.Token, out)
}

// Settle waits until every lifecycle execution that inventories started has
// ended, and every ended execution's audit record is stored, and returns how
// each lifecycle ended (status by execution name).
func (b *Backend) Settle(ctx context.Context) (map[string]string, error) {
	prefix := fmt.Sprintf("arn:aws:states:%s:%s:execution:%s:", b.opts.Region, b.opts.AccountID, statemachines.StateMachineName(statemachines.NameLifecycle))
	for {
		b.mu.Lock()
		names := make([]string, 0, len(b.expect))
		for n := range b.expect {
			names = append(names, n)
		}
		b.mu.Unlock()
		out := map[string]string{}
		for _, n := range names {
			if st, ok := b.ended.status(prefix + n); ok {
				out[n] = st
			}
		}
		if len(out) == len(names) {
			if b.audit != nil {
				if err := b.audit.drain(ctx); err != nil {
					return out, err
				}
			}
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("local: %d of %d lifecycle executions still running: %w", len(names)-len(out), len(names), ctx.Err())
		case <-b.ended.changed():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// endTracker records how executions ended, from the engine's
// OnExecutionEnd: the lifecycles an inventory starts (startExecution) are
// held by no caller, and this is how Settle learns they ended.
type endTracker struct {
	mu     sync.Mutex
	ended  map[string]string
	notify chan struct{}
}

func newEndTracker() *endTracker {
	return &endTracker{ended: map[string]string{}, notify: make(chan struct{})}
}

func (t *endTracker) record(r *engine.Result) {
	t.mu.Lock()
	t.ended[r.ExecutionArn] = r.Status
	close(t.notify)
	t.notify = make(chan struct{})
	t.mu.Unlock()
}

func (t *endTracker) status(arn string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.ended[arn]
	return s, ok
}

func (t *endTracker) changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.notify
}
