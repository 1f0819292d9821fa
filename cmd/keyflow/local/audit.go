package local

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/tasks"
)

// On AWS an EventBridge rule runs the audit-record function for every
// execution that ends. Locally the engine's OnExecutionEnd hook does the
// same: it must not block, so it only queues the ended execution, and one
// worker runs tasks.AuditRecord over the queue in order (one writer, as the
// audit chain expects). Settle waits until the queue is empty.

// AuditBucket is the default bucket of the local audit records: the name
// the stack gives its audit bucket, in the deployment's account.
func AuditBucket(accountID string) string { return "keyflow-audit-" + accountID }

// auditor is the queue and its worker.
type auditor struct {
	b       *Backend
	handler *tasks.AuditRecord
	hist    *historySource

	mu     sync.Mutex
	queue  []*engine.Result
	busy   bool
	idle   chan struct{} // closed and replaced whenever the queue drains
	wake   chan struct{}
	stored int
	failed []error
}

func newAuditor(b *Backend, store tasks.RecordStore) *auditor {
	a := &auditor{b: b, hist: &historySource{events: map[string][]sfntypes.HistoryEvent{}},
		idle: make(chan struct{}), wake: make(chan struct{}, 1)}
	a.handler = &tasks.AuditRecord{SFN: a.hist, Store: store, Log: b.log, Policy: b.auditPolicy()}
	go a.run()
	return a
}

// enqueue is the OnExecutionEnd hook: it never blocks.
func (a *auditor) enqueue(r *engine.Result) {
	a.mu.Lock()
	a.queue = append(a.queue, r)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *auditor) run() {
	for range a.wake {
		for {
			a.mu.Lock()
			if len(a.queue) == 0 {
				a.busy = false
				close(a.idle)
				a.idle = make(chan struct{})
				a.mu.Unlock()
				break
			}
			r := a.queue[0]
			a.queue = a.queue[1:]
			a.busy = true
			a.mu.Unlock()
			err := a.record(r)
			a.mu.Lock()
			if err != nil {
				a.failed = append(a.failed, err)
			} else {
				a.stored++
			}
			a.mu.Unlock()
		}
	}
}

// record audits one execution at the time it ended, so that the stored
// objects' dates follow the virtual clock.
func (a *auditor) record(r *engine.Result) error {
	events := r.History()
	if len(events) == 0 {
		return nil // the engine keeps no histories (Options.DiscardHistory)
	}
	a.hist.put(r.ExecutionArn, events)
	defer a.hist.drop(r.ExecutionArn)
	var err error
	call := func() {
		_, err = a.handler.Handle(context.Background(), tasks.AuditRecordInput{ExecutionArn: r.ExecutionArn})
	}
	if c := a.b.opts.Clock; c != nil {
		c.during(r.StopDate, call)
	} else {
		call()
	}
	if err != nil {
		a.b.log.Error("auditing an ended execution", "executionArn", r.ExecutionArn, "error", err)
		return fmt.Errorf("local: audit of %s: %w", r.ExecutionArn, err)
	}
	return nil
}

// drain waits until every queued execution was audited.
func (a *auditor) drain(ctx context.Context) error {
	for {
		a.mu.Lock()
		done := len(a.queue) == 0 && !a.busy
		idle := a.idle
		a.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local: audit records still being written: %w", ctx.Err())
		case <-idle:
		}
	}
}

// AuditStatus says how many ended executions were audited and what failed.
type AuditStatus struct {
	Stored int
	Failed []error
}

// AuditStatus reports the local audit so far (zero without a record store).
func (b *Backend) AuditStatus() AuditStatus {
	if b.audit == nil {
		return AuditStatus{}
	}
	b.audit.mu.Lock()
	defer b.audit.mu.Unlock()
	return AuditStatus{Stored: b.audit.stored, Failed: append([]error(nil), b.audit.failed...)}
}

func (b *Backend) auditPolicy() audit.Policy {
	return audit.Policy{AdminsGroup: b.opts.AdminsGroup}
}

// historySource is tasks.SFNAPI over the engine's results: it serves the
// history of an ended execution as GetExecutionHistory pages it.
type historySource struct {
	mu     sync.Mutex
	events map[string][]sfntypes.HistoryEvent
}

func (h *historySource) put(arn string, ev []sfntypes.HistoryEvent) {
	h.mu.Lock()
	h.events[arn] = ev
	h.mu.Unlock()
}

func (h *historySource) drop(arn string) {
	h.mu.Lock()
	delete(h.events, arn)
	h.mu.Unlock()
}

// GetExecutionHistory implements tasks.SFNAPI.
func (h *historySource) GetExecutionHistory(_ context.Context, in *sfn.GetExecutionHistoryInput, _ ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	h.mu.Lock()
	ev, ok := h.events[aws.ToString(in.ExecutionArn)]
	h.mu.Unlock()
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "ExecutionDoesNotExist", Message: fmt.Sprintf("Execution Does Not Exist: '%s'", aws.ToString(in.ExecutionArn))}
	}
	from := 0
	if in.NextToken != nil {
		n, err := strconv.Atoi(*in.NextToken)
		if err != nil || n < 0 || n > len(ev) {
			return nil, &smithy.GenericAPIError{Code: "InvalidToken", Message: "Invalid Token"}
		}
		from = n
	}
	size := int(in.MaxResults)
	if size <= 0 || size > 1000 {
		size = 1000
	}
	to := min(from+size, len(ev))
	out := &sfn.GetExecutionHistoryOutput{Events: ev[from:to]}
	if to < len(ev) {
		out.NextToken = aws.String(strconv.Itoa(to))
	}
	return out, nil
}

// sandboxRecordStore is the audit store on the sandbox's S3, in the
// deployment's account: the bucket is created when missing.
func (b *Backend) sandboxRecordStore(bucket string) (tasks.RecordStore, error) {
	c := b.opts.Sandbox.S3(b.opts.AccountID)
	_, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var mine interface{ ErrorCode() string }
	if err != nil && !(errors.As(err, &mine) && mine.ErrorCode() == "BucketAlreadyOwnedByYou") {
		return nil, fmt.Errorf("local: audit bucket %q: %w", bucket, err)
	}
	return &tasks.S3RecordStore{S3: c, Bucket: bucket}, nil
}
