package tasks

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/keyflow/keyflow/audit"
)

// ---- a fake GetExecutionHistory that pages golden histories 3 at a time ----

type fakeSFN struct {
	mu      sync.Mutex
	execs   map[string][]sfntypes.HistoryEvent
	calls   int
	err     error // returned by every call when set
	noData  bool  // a call without includeExecutionData was seen
	badPage bool
}

const historyPage = 3

func (f *fakeSFN) GetExecutionHistory(_ context.Context, in *sfn.GetExecutionHistoryInput, _ ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if !aws.ToBool(in.IncludeExecutionData) {
		f.noData = true
	}
	ev, ok := f.execs[aws.ToString(in.ExecutionArn)]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "ExecutionDoesNotExist", Message: "Execution Does Not Exist"}
	}
	start := 0
	if in.NextToken != nil {
		n, err := strconv.Atoi(strings.TrimPrefix(*in.NextToken, "tok-"))
		if err != nil {
			f.badPage = true
			return nil, &smithy.GenericAPIError{Code: "InvalidToken", Message: "bad token"}
		}
		start = n
	}
	end := min(start+historyPage, len(ev))
	out := &sfn.GetExecutionHistoryOutput{Events: ev[start:end]}
	if end < len(ev) {
		out.NextToken = aws.String(fmt.Sprintf("tok-%d", end))
	}
	return out, nil
}

func goldenHistory(t *testing.T, name string) []sfntypes.HistoryEvent {
	t.Helper()
	f, err := os.Open("../audit/testdata/histories/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ev, err := audit.DecodeHistory(f)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func execArn(workflow, name string) string {
	return "arn:aws:states:us-east-1:123456789012:execution:keyflow-" + workflow + ":" + name
}

// ---- a fake S3 with conditional writes ----

type s3obj struct {
	body []byte
	etag string
}

type fakeS3 struct {
	mu      sync.Mutex
	objects map[string]s3obj
	puts    []string // keys written
	// failPut fails the next PutObject of that key (after nothing was
	// written), as a crash between two writes would.
	failPut map[string]error
	// racePut stores this body under the key just before the next
	// PutObject of it: a concurrent duplicate that won.
	racePut map[string][]byte
}

func newFakeS3() *fakeS3 {
	return &fakeS3{objects: map[string]s3obj{}, failPut: map[string]error{}, racePut: map[string][]byte{}}
}

func etagOf(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func (f *fakeS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if aws.ToString(in.Bucket) != "audit-bucket" {
		return nil, &s3types.NoSuchBucket{}
	}
	key := aws.ToString(in.Key)
	if b, ok := f.racePut[key]; ok {
		delete(f.racePut, key)
		f.objects[key] = s3obj{b, etagOf(b)}
	}
	if err, ok := f.failPut[key]; ok {
		delete(f.failPut, key)
		return nil, err
	}
	old, exists := f.objects[key]
	if aws.ToString(in.IfNoneMatch) == "*" && exists {
		return nil, &smithy.GenericAPIError{Code: "PreconditionFailed", Message: "At least one of the pre-conditions you specified did not hold"}
	}
	if in.IfMatch != nil && (!exists || old.etag != *in.IfMatch) {
		return nil, &smithy.GenericAPIError{Code: "PreconditionFailed", Message: "At least one of the pre-conditions you specified did not hold"}
	}
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	f.objects[key] = s3obj{b, etagOf(b)}
	f.puts = append(f.puts, key)
	return &s3.PutObjectOutput{ETag: aws.String(etagOf(b))}, nil
}

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &s3types.NoSuchKey{Message: aws.String("The specified key does not exist.")}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(o.body)), ETag: aws.String(o.etag)}, nil
}

func (f *fakeS3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &s3types.NotFound{}
	}
	return &s3.HeadObjectOutput{ETag: aws.String(o.etag)}, nil
}

// ---- the fixture: one handler over a store backend ----

type auditFx struct {
	t      *testing.T
	sfn    *fakeSFN
	store  RecordStore
	s3     *fakeS3 // nil for the memory store
	logBuf *bytes.Buffer
	h      *AuditRecord
}

// records is the stored log, in chain order.
func (f *auditFx) records() []*audit.Record {
	f.t.Helper()
	var raw []byte
	if m, ok := f.store.(*MemoryRecordStore); ok {
		raw = m.Records()
	} else {
		for _, k := range f.s3.puts {
			if k != AuditHeadKey {
				raw = append(raw, f.s3.objects[k].body...)
			}
		}
	}
	recs, err := audit.ReadJSONL(bytes.NewReader(raw))
	if err != nil {
		f.t.Fatal(err)
	}
	return recs
}

func (f *auditFx) head() string {
	h, err := f.store.Head(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

// add makes a golden history available as execution name of workflow.
func (f *auditFx) add(workflow, golden string) string {
	arn := execArn(workflow, golden)
	f.sfn.execs[arn] = goldenHistory(f.t, golden)
	return arn
}

// noLeaks is the leak check of the other handler tests, over the output,
// the error, the log and every stored object.
func (f *auditFx) noLeaks(extra ...string) {
	f.t.Helper()
	hay := append([]string{f.logBuf.String()}, extra...)
	for _, r := range f.records() {
		hay = append(hay, out2json(r))
	}
	for _, h := range hay {
		if LooksLikeSecret(h) || audit.LooksLikeSecret(h) {
			f.t.Fatalf("something shaped like a secret access key in %.300q", h)
		}
	}
}

type auditBackend struct {
	name string
	mk   func() (RecordStore, *fakeS3)
}

var auditBackends = []auditBackend{
	{"memory", func() (RecordStore, *fakeS3) { return &MemoryRecordStore{}, nil }},
	{"s3", func() (RecordStore, *fakeS3) {
		c := newFakeS3()
		return &S3RecordStore{S3: c, Bucket: "audit-bucket"}, c
	}},
}

func newAuditFx(t *testing.T, b auditBackend) *auditFx {
	store, c := b.mk()
	f := &auditFx{t: t, sfn: &fakeSFN{execs: map[string][]sfntypes.HistoryEvent{}}, store: store, s3: c, logBuf: &bytes.Buffer{}}
	f.h = &AuditRecord{SFN: f.sfn, Store: store, Log: slog.New(slog.NewJSONHandler(f.logBuf, nil))}
	return f
}

func TestAuditRecord(t *testing.T) {
	type acase struct {
		name    string
		setup   func(f *auditFx) AuditRecordInput
		wantErr string
		retry   bool
		check   func(f *auditFx, in AuditRecordInput, out *AuditRecordOutput, run int)
	}
	cases := []acase{
		{
			name: "a clean lifecycle is stored as the first record; a retry stores nothing new",
			setup: func(f *auditFx) AuditRecordInput {
				return AuditRecordInput{ExecutionArn: f.add("lifecycle", "lifecycle-clean")}
			},
			retry: true,
			check: func(f *auditFx, in AuditRecordInput, out *AuditRecordOutput, run int) {
				if out.Key != "audit/lifecycle/lifecycle-clean.json" || out.Workflow != "lifecycle" || out.Status != "SUCCEEDED" ||
					out.Prev != "" || len(out.Hash) != 64 || len(out.Breaches) != 0 || out.ExecutionArn != in.ExecutionArn {
					f.t.Fatalf("run %d: output %+v", run, out)
				}
				if out.AlreadyStored != (run == 2) {
					f.t.Fatalf("run %d: alreadyStored = %v", run, out.AlreadyStored)
				}
				recs := f.records()
				if len(recs) != 1 || recs[0].Hash != out.Hash || f.head() != out.Hash {
					f.t.Fatalf("run %d: %d records, head %s, want one record %s", run, len(recs), f.head(), out.Hash)
				}
				if f.sfn.noData {
					f.t.Error("GetExecutionHistory called without includeExecutionData")
				}
				if want := (26 + historyPage - 1) / historyPage; f.sfn.calls != want*run {
					f.t.Errorf("run %d: %d GetExecutionHistory calls, want %d (3 events a page)", run, f.sfn.calls, want*run)
				}
			},
		},
		{
			name: "the chain is extended: each record's prev is the head before it",
			setup: func(f *auditFx) AuditRecordInput {
				for _, g := range []string{"lifecycle-clean", "lifecycle-unused-key"} {
					if _, err := invoke(f.t, f.h.Handle, AuditRecordInput{ExecutionArn: f.add("lifecycle", g)}); err != nil {
						f.t.Fatal(err)
					}
				}
				return AuditRecordInput{ExecutionArn: f.add("quarantine", "quarantine-approved")}
			},
			retry: true,
			check: func(f *auditFx, in AuditRecordInput, out *AuditRecordOutput, run int) {
				recs := f.records()
				if len(recs) != 3 {
					f.t.Fatalf("run %d: %d records, want 3", run, len(recs))
				}
				if out.Key != "audit/quarantine/quarantine-approved.json" || out.Prev != recs[1].Hash || out.Hash != recs[2].Hash || f.head() != out.Hash {
					f.t.Fatalf("run %d: output %+v, records %s %s", run, out, recs[1].Hash, recs[2].Hash)
				}
				if err := audit.VerifyFrom(recs, "", f.head()); err != nil {
					f.t.Fatalf("run %d: stored log does not verify: %v", run, err)
				}
			},
		},
		{
			name: "a breach is reported by code",
			setup: func(f *auditFx) AuditRecordInput {
				return AuditRecordInput{ExecutionArn: f.add("lifecycle", "lifecycle-delete-before-deactivate")}
			},
			retry: true,
			check: func(f *auditFx, in AuditRecordInput, out *AuditRecordOutput, run int) {
				if !slices.Contains(out.Breaches, audit.CodeDeleteBeforeDeactivate) {
					f.t.Fatalf("run %d: breaches %v, want %s", run, out.Breaches, audit.CodeDeleteBeforeDeactivate)
				}
			},
		},
		{
			name: "a secret in the history is reported, never copied",
			setup: func(f *auditFx) AuditRecordInput {
				return AuditRecordInput{ExecutionArn: f.add("lifecycle", "lifecycle-secret-in-output")}
			},
			retry: true,
			check: func(f *auditFx, in AuditRecordInput, out *AuditRecordOutput, run int) {
				if !slices.Contains(out.Breaches, audit.CodeSecretInHistory) {
					f.t.Fatalf("breaches %v, want %s", out.Breaches, audit.CodeSecretInHistory)
				}
			},
		},
		{
			name: "a failed execution is audited too",
			setup: func(f *auditFx) AuditRecordInput {
				return AuditRecordInput{ExecutionArn: f.add("lifecycle", "lifecycle-third-key")}
			},
			check: func(f *auditFx, in AuditRecordInput, out *AuditRecordOutput, run int) {
				if out.Status != "FAILED" || !slices.Contains(out.Breaches, audit.CodeThirdKey) {
					f.t.Fatalf("output %+v", out)
				}
			},
		},
		{
			name: "workflow given in the input names the key",
			setup: func(f *auditFx) AuditRecordInput {
				arn := "arn:aws:states:us-east-1:123456789012:execution:MyRotation:run-1"
				f.sfn.execs[arn] = goldenHistory(f.t, "lifecycle-clean")
				return AuditRecordInput{ExecutionArn: arn, Workflow: "lifecycle"}
			},
			check: func(f *auditFx, in AuditRecordInput, out *AuditRecordOutput, run int) {
				if out.Key != "audit/lifecycle/run-1.json" || out.Workflow != "lifecycle" {
					f.t.Fatalf("output %+v", out)
				}
			},
		},
		{
			name:    "no execution ARN",
			setup:   func(f *auditFx) AuditRecordInput { return AuditRecordInput{} },
			wantErr: "InvalidInput",
		},
		{
			name: "a key path outside audit/ is refused",
			setup: func(f *auditFx) AuditRecordInput {
				return AuditRecordInput{ExecutionArn: execArn("lifecycle", "x"), Workflow: ".."}
			},
			wantErr: "InvalidInput",
		},
		{
			name: "not an execution ARN",
			setup: func(f *auditFx) AuditRecordInput {
				return AuditRecordInput{ExecutionArn: "arn:aws:states:us-east-1:123456789012:stateMachine:keyflow-lifecycle"}
			},
			wantErr: "InvalidInput",
		},
		{
			name:    "an execution that does not exist",
			setup:   func(f *auditFx) AuditRecordInput { return AuditRecordInput{ExecutionArn: execArn("lifecycle", "nope")} },
			wantErr: "HistoryUnavailable",
		},
		{
			name: "throttling is Throttled, for the workflow to retry",
			setup: func(f *auditFx) AuditRecordInput {
				f.sfn.err = &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
				return AuditRecordInput{ExecutionArn: f.add("lifecycle", "lifecycle-clean")}
			},
			wantErr: "Throttled",
		},
		{
			name: "a running execution is not audited yet",
			setup: func(f *auditFx) AuditRecordInput {
				arn := f.add("lifecycle", "lifecycle-clean")
				f.sfn.execs[arn] = f.sfn.execs[arn][:7]
				return AuditRecordInput{ExecutionArn: arn}
			},
			wantErr: "ExecutionNotFinished",
			check: func(f *auditFx, in AuditRecordInput, out *AuditRecordOutput, run int) {
				if len(f.records()) != 0 || f.head() != "" {
					f.t.Fatal("a running execution was stored")
				}
			},
		},
	}
	for _, b := range auditBackends {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					f := newAuditFx(t, b)
					in := c.setup(f)
					runs := 1
					if c.retry {
						runs = 2
					}
					for run := 1; run <= runs; run++ {
						out, err := invoke(t, f.h.Handle, in)
						if got := lambdaErrorType(err); got != c.wantErr {
							t.Fatalf("run %d: error type %q (%v), want %q", run, got, err, c.wantErr)
						}
						if c.check != nil {
							c.check(f, in, out, run)
						}
						f.noLeaks(out2json(out), fmt.Sprint(err))
					}
				})
			}
		})
	}
}

// TestS3RecordStore covers what only S3 can do: a crash between the record
// and the head, a concurrent duplicate, a head moved by another writer.
func TestS3RecordStore(t *testing.T) {
	s3b := auditBackends[1]
	t.Run("a crash after the record, before the head: the retry moves the head once", func(t *testing.T) {
		f := newAuditFx(t, s3b)
		arn := f.add("lifecycle", "lifecycle-clean")
		f.s3.failPut[AuditHeadKey] = errors.New("connection reset")
		if _, err := invoke(t, f.h.Handle, AuditRecordInput{ExecutionArn: arn}); lambdaErrorType(err) != "ServiceError" {
			t.Fatalf("first call: %v", err)
		}
		if f.head() != "" || len(f.records()) != 1 {
			t.Fatalf("head %q, %d records", f.head(), len(f.records()))
		}
		out, err := invoke(t, f.h.Handle, AuditRecordInput{ExecutionArn: arn})
		if err != nil || !out.AlreadyStored || f.head() != out.Hash {
			t.Fatalf("retry: %+v %v, head %q", out, err, f.head())
		}
		out2, err := invoke(t, f.h.Handle, AuditRecordInput{ExecutionArn: f.add("lifecycle", "lifecycle-unused-key")})
		if err != nil || out2.Prev != out.Hash {
			t.Fatalf("next record: %+v %v", out2, err)
		}
		if err := audit.VerifyFrom(f.records(), "", f.head()); err != nil {
			t.Fatal(err)
		}
		var heads int
		for _, k := range f.s3.puts {
			if k == AuditHeadKey {
				heads++
			}
		}
		if heads != 2 {
			t.Errorf("head written %d times, want 2", heads)
		}
	})
	t.Run("a concurrent duplicate wins the record: If-None-Match refuses ours", func(t *testing.T) {
		f := newAuditFx(t, s3b)
		arn := f.add("lifecycle", "lifecycle-clean")
		first, err := invoke(t, f.h.Handle, AuditRecordInput{ExecutionArn: arn})
		if err != nil {
			t.Fatal(err)
		}
		// Replay: the object is removed, then re-appears just before our
		// write, as a concurrent duplicate would put it.
		key := first.Key
		stored := f.s3.objects[key].body
		delete(f.s3.objects, key)
		delete(f.s3.objects, AuditHeadKey) // and the head is the empty chain's
		f.s3.racePut[key] = stored
		out, err := invoke(t, f.h.Handle, AuditRecordInput{ExecutionArn: arn})
		if err != nil || !out.AlreadyStored || out.Hash != first.Hash {
			t.Fatalf("%+v %v", out, err)
		}
		if f.head() != first.Hash {
			t.Fatalf("head %q, want %q", f.head(), first.Hash)
		}
	})
	t.Run("a head moved by another writer is a ChainConflict and nothing is written", func(t *testing.T) {
		f := newAuditFx(t, s3b)
		st := f.store.(*S3RecordStore)
		var buf bytes.Buffer
		rec := &audit.Record{Schema: audit.Schema, ExecutionArn: execArn("lifecycle", "x"), Workflow: "lifecycle", Status: "SUCCEEDED"}
		if _, err := audit.Chain("", []*audit.Record{rec}); err != nil {
			t.Fatal(err)
		}
		if err := audit.WriteJSONL(&buf, []*audit.Record{rec}); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(t.Context(), "audit/lifecycle/x.json", buf.Bytes(), "deadbeef"); lambdaErrorType(err) != "ChainConflict" {
			t.Fatalf("got %v", err)
		}
		if len(f.s3.puts) != 0 {
			t.Fatalf("wrote %v", f.s3.puts)
		}
	})
	t.Run("S3 throttling is Throttled", func(t *testing.T) {
		f := newAuditFx(t, s3b)
		arn := f.add("lifecycle", "lifecycle-clean")
		f.s3.failPut["audit/lifecycle/lifecycle-clean.json"] = &smithy.GenericAPIError{Code: "SlowDown", Message: "Please reduce your request rate."}
		if _, err := invoke(t, f.h.Handle, AuditRecordInput{ExecutionArn: arn}); lambdaErrorType(err) != "Throttled" {
			t.Fatalf("got %T %v", err, err)
		}
	})
}
