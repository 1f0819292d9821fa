package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/audit"
)

// SFNAPI is the Step Functions surface of AuditRecord: it only reads
// histories.
type SFNAPI interface {
	GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, optFns ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error)
}

// RecordStore keeps the hash-chained audit log: one record per execution
// under its key, and the head of the chain (the hash of the last record).
//
// Put stores record under key only when no record is stored there yet and
// the chain's head is still prevHash, then moves the head to the record's
// hash. When a record is already stored under key it stores nothing and
// returns *RecordExists carrying the stored bytes, so a retry returns the
// first record and the chain is extended once. When the head is no longer
// prevHash it returns *ChainConflict and stores nothing (or, if the record
// was written but the head moved under it, says so).
//
// Implementations: S3RecordStore on AWS, and locally over the sandbox's S3
// (persisted in the engine's SQLite file); MemoryRecordStore in tests.
type RecordStore interface {
	Head(ctx context.Context) (prevHash string, err error)
	Put(ctx context.Context, key string, record []byte, prevHash string) error
}

// AuditHeadKey is where the chain head lives in the store.
const AuditHeadKey = "audit/HEAD"

// AuditRecordKey is the store key of one execution's record.
func AuditRecordKey(workflow, executionName string) string {
	return "audit/" + workflow + "/" + executionName + ".json"
}

// AuditRecordInput names the finished execution to audit.
type AuditRecordInput struct {
	ExecutionArn string `json:"executionArn"`
	// Workflow is keyflow's workflow name ("lifecycle", ...); when empty it
	// is the state machine name without "keyflow-".
	Workflow string `json:"workflow,omitempty"`
}

// AuditRecordOutput says which record was stored, where, and what it found.
// It carries breach codes only: the record itself (redacted) is in the store.
type AuditRecordOutput struct {
	ExecutionArn string   `json:"executionArn"`
	Workflow     string   `json:"workflow"`
	Status       string   `json:"status"`
	Key          string   `json:"key"`
	Hash         string   `json:"hash"`
	Prev         string   `json:"prev"`
	Breaches     []string `json:"breaches"`
	// AlreadyStored is a retry: the record was stored by an earlier call
	// and is returned as stored; nothing new was written.
	AlreadyStored bool `json:"alreadyStored"`
}

// AuditRecord turns one finished execution's history into an audit record
// (package audit does the work), chains it after the store's head and
// stores it.
type AuditRecord struct {
	SFN   SFNAPI
	Store RecordStore
	Log   *slog.Logger
	// Policy is passed to audit.Build (admins group, least inactive time).
	Policy audit.Policy
}

// Errors of AuditRecord.

// HistoryUnavailable is an execution whose history could not be read (it
// does not exist, or access was denied). Throttling is Throttled instead.
type HistoryUnavailable struct {
	ExecutionArn string
	Code         string
	Err          error
}

func (e *HistoryUnavailable) Error() string {
	return fmt.Sprintf("tasks: history of %s unavailable: %v", e.ExecutionArn, e.Err)
}

func (e *HistoryUnavailable) Unwrap() error { return e.Err }

// ExecutionNotFinished is an execution still running: its record would be
// incomplete and a stored record is never rewritten, so the workflow retries
// later.
type ExecutionNotFinished struct {
	ExecutionArn string
	Status       string
}

func (e *ExecutionNotFinished) Error() string {
	return fmt.Sprintf("tasks: execution %s is %s, not finished; not audited yet", e.ExecutionArn, e.Status)
}

// ChainConflict is a chain head that moved while a record was being added
// (another writer). When RecordStored is false nothing was written and a
// retry chains the record after the new head. When it is true the record was
// written after a head that is no longer the head: the log forked there and
// a person must look (the audit log expects a single writer).
type ChainConflict struct {
	Key          string
	Expected     string
	Head         string
	RecordStored bool
}

func (e *ChainConflict) Error() string {
	if e.RecordStored {
		return fmt.Sprintf("tasks: audit record %s was stored after head %.12s but the head moved to %.12s: the audit chain forked", e.Key, e.Expected, e.Head)
	}
	return fmt.Sprintf("tasks: audit chain head moved from %.12s to %.12s while storing %s; retry", e.Expected, e.Head, e.Key)
}

// RecordExists is what RecordStore.Put returns when a record is already
// stored under Key; Record is the stored bytes. The handler turns it into an
// AlreadyStored output, never into a failure.
type RecordExists struct {
	Key    string
	Record []byte
}

func (e *RecordExists) Error() string {
	return fmt.Sprintf("tasks: audit record %s is already stored", e.Key)
}

// AuditStoreCorrupt is a stored object that is not what the store wrote.
type AuditStoreCorrupt struct {
	Key    string
	Reason string
}

func (e *AuditStoreCorrupt) Error() string {
	return fmt.Sprintf("tasks: audit store object %s is corrupt: %s", e.Key, e.Reason)
}

func (*HistoryUnavailable) taskError()   {}
func (*ExecutionNotFinished) taskError() {}
func (*ChainConflict) taskError()        {}
func (*RecordExists) taskError()         {}
func (*AuditStoreCorrupt) taskError()    {}

// maxHistoryPages bounds the history read: 25,000 events (AWS's quota) are
// 25 pages of 1,000; a token that never ends is a broken endpoint.
const maxHistoryPages = 1000

// Handle implements the handler.
//
// Errors: InvalidInput, HistoryUnavailable, ExecutionNotFinished,
// ChainConflict, AuditStoreCorrupt, Throttled, ServiceError.
func (h *AuditRecord) Handle(ctx context.Context, in AuditRecordInput) (*AuditRecordOutput, error) {
	name, err := validateExecutionArn(in.ExecutionArn)
	if err != nil {
		return nil, err
	}
	if in.Workflow != "" && !validPathPart(in.Workflow) {
		return nil, &InvalidInput{Field: "workflow", Reason: fmt.Sprintf("%q is not a workflow name", truncate(in.Workflow))}
	}
	log := logger(h.Log).With("handler", "audit-record", "executionArn", in.ExecutionArn)

	events, err := h.history(ctx, in.ExecutionArn)
	if err != nil {
		return nil, err
	}
	rec, err := audit.Build(audit.History{ExecutionArn: in.ExecutionArn, Workflow: in.Workflow, Events: events, Policy: h.Policy})
	if err != nil {
		return nil, &HistoryUnavailable{ExecutionArn: in.ExecutionArn, Err: err}
	}
	if rec.Status == "" || rec.Status == "RUNNING" {
		return nil, &ExecutionNotFinished{ExecutionArn: in.ExecutionArn, Status: rec.Status}
	}
	if !validPathPart(rec.Workflow) {
		return nil, &InvalidInput{Field: "workflow", Reason: fmt.Sprintf("%q (from the state machine name) is not a workflow name; pass workflow", truncate(rec.Workflow))}
	}
	key := AuditRecordKey(rec.Workflow, name)

	prev, err := h.Store.Head(ctx)
	if err != nil {
		return nil, awsErr("audit store Head", err)
	}
	if _, err := audit.Chain(prev, []*audit.Record{rec}); err != nil {
		return nil, &AuditStoreCorrupt{Key: key, Reason: err.Error()}
	}
	var buf bytes.Buffer
	if err := audit.WriteJSONL(&buf, []*audit.Record{rec}); err != nil {
		return nil, &AuditStoreCorrupt{Key: key, Reason: err.Error()}
	}
	already := false
	if err := h.Store.Put(ctx, key, buf.Bytes(), prev); err != nil {
		var ex *RecordExists
		if !errors.As(err, &ex) {
			return nil, awsErr("audit store Put", err)
		}
		stored, err := decodeStoredRecord(ex.Key, ex.Record)
		if err != nil {
			return nil, err
		}
		if stored.ExecutionArn != rec.ExecutionArn {
			return nil, &AuditStoreCorrupt{Key: key, Reason: "holds the record of another execution"}
		}
		rec, already = stored, true
	}
	out := &AuditRecordOutput{
		ExecutionArn: rec.ExecutionArn, Workflow: rec.Workflow, Status: rec.Status,
		Key: key, Hash: rec.Hash, Prev: rec.Prev, Breaches: []string{}, AlreadyStored: already,
	}
	for _, b := range rec.Breaches {
		out.Breaches = append(out.Breaches, b.Code)
	}
	if already {
		log.Info("audit record already stored", "key", key, "hash", out.Hash)
	} else {
		log.Info("stored audit record", "key", key, "hash", out.Hash, "prev", out.Prev, "breaches", len(out.Breaches))
	}
	return out, nil
}

// history reads every page of the execution's history, oldest first.
func (h *AuditRecord) history(ctx context.Context, arn string) ([]sfntypes.HistoryEvent, error) {
	var events []sfntypes.HistoryEvent
	var token *string
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page == maxHistoryPages {
			return nil, &HistoryUnavailable{ExecutionArn: arn, Err: fmt.Errorf("more than %d pages", maxHistoryPages)}
		}
		out, err := h.SFN.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{
			ExecutionArn:         aws.String(arn),
			IncludeExecutionData: aws.Bool(true),
			MaxResults:           1000,
			NextToken:            token,
		})
		if err != nil {
			err = awsErr("GetExecutionHistory", err)
			var se *ServiceError
			if errors.As(err, &se) {
				return nil, &HistoryUnavailable{ExecutionArn: arn, Code: se.Code, Err: se.Err}
			}
			return nil, err
		}
		events = append(events, out.Events...)
		token = out.NextToken
		if aws.ToString(token) == "" {
			break
		}
		if seen[*token] {
			return nil, &HistoryUnavailable{ExecutionArn: arn, Err: errors.New("the history's next token repeats")}
		}
		seen[*token] = true
	}
	if len(events) == 0 {
		return nil, &HistoryUnavailable{ExecutionArn: arn, Err: errors.New("empty history")}
	}
	return events, nil
}

// decodeStoredRecord reads a record the store holds (one JSON Lines line).
func decodeStoredRecord(key string, b []byte) (*audit.Record, error) {
	recs, err := audit.ReadJSONL(bytes.NewReader(b))
	if err != nil || len(recs) != 1 {
		return nil, &AuditStoreCorrupt{Key: key, Reason: "not one audit record"}
	}
	if h, err := audit.HashOf(recs[0]); err != nil || h != recs[0].Hash {
		return nil, &AuditStoreCorrupt{Key: key, Reason: "its hash does not match its content"}
	}
	return recs[0], nil
}

// validateExecutionArn checks a Standard execution ARN
// (arn:<partition>:states:<region>:<account>:execution:<machine>:<name>) and
// returns the execution name.
func validateExecutionArn(arn string) (string, error) {
	bad := func(why string) (string, error) {
		return "", &InvalidInput{Field: "executionArn", Reason: fmt.Sprintf("%q is not a Step Functions execution ARN: %s", truncate(arn), why)}
	}
	if arn == "" {
		return bad("empty")
	}
	if LooksLikeSecret(arn) {
		return "", &SecretDetected{Field: "executionArn"}
	}
	p := strings.Split(arn, ":")
	if len(p) != 8 || p[0] != "arn" || p[2] != "states" || p[5] != "execution" {
		return bad("want arn:aws:states:<region>:<account>:execution:<state machine>:<name>")
	}
	if !validAccountID(p[4]) {
		return bad("bad account id")
	}
	if !validPathPart(p[6]) || !validPathPart(p[7]) {
		return bad("bad state machine or execution name")
	}
	return p[7], nil
}

// validPathPart is a state machine, execution or workflow name that is safe
// as one segment of a store key: AWS's name rules (1 to 80 characters; no
// whitespace, brackets, wildcards or the special characters AWS lists), and
// not "." or "..".
func validPathPart(s string) bool {
	if s == "" || len(s) > 80 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f || (c >= 0x80 && c <= 0x9f) || strings.ContainsRune("<>{}[]?*\"#%\\^|~`$&,;:/", c) {
			return false
		}
	}
	return true
}

// ---- the chain head ----

// auditHead is the JSON of the head object.
type auditHead struct {
	Hash string `json:"hash"`
	Key  string `json:"key"`
}

func decodeHead(b []byte) (auditHead, error) {
	var h auditHead
	if err := json.Unmarshal(b, &h); err != nil {
		return h, &AuditStoreCorrupt{Key: AuditHeadKey, Reason: "not a chain head"}
	}
	return h, nil
}

// linkOf is the prev and hash of stored record bytes.
func linkOf(key string, b []byte) (prev, hash string, err error) {
	var l struct {
		Prev string `json:"prev"`
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &l); err != nil || l.Hash == "" {
		return "", "", &AuditStoreCorrupt{Key: key, Reason: "not an audit record"}
	}
	return l.Prev, l.Hash, nil
}

// ---- in memory ----

// MemoryRecordStore is a RecordStore in memory, for tests and dry runs.
type MemoryRecordStore struct {
	mu      sync.Mutex
	head    auditHead
	records map[string][]byte
	order   []string
}

// Head implements RecordStore.
func (m *MemoryRecordStore) Head(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.head.Hash, nil
}

// Put implements RecordStore.
func (m *MemoryRecordStore) Put(_ context.Context, key string, record []byte, prevHash string) error {
	prev, hash, err := linkOf(key, record)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.records[key]; ok {
		return &RecordExists{Key: key, Record: bytes.Clone(old)}
	}
	if m.head.Hash != prevHash || prev != prevHash {
		return &ChainConflict{Key: key, Expected: prevHash, Head: m.head.Hash}
	}
	if m.records == nil {
		m.records = map[string][]byte{}
	}
	m.records[key] = bytes.Clone(record)
	m.order = append(m.order, key)
	m.head = auditHead{Hash: hash, Key: key}
	return nil
}

// Records is every stored record in the order stored, as JSON Lines.
func (m *MemoryRecordStore) Records() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b []byte
	for _, k := range m.order {
		b = append(b, m.records[k]...)
	}
	return b
}

// ---- S3 ----

// S3API is the S3 surface of S3RecordStore.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// S3RecordStore keeps records under audit/<workflow>/<execution>.json and
// the chain head under audit/HEAD in Bucket. Records are written with
// If-None-Match: * so a record, once stored, is never replaced, and the head
// is moved with If-Match on its ETag (If-None-Match: * for the first), so a
// concurrent writer is refused rather than silently forking the chain. The
// log assumes a single writer (the audit workflow runs one at a time); a
// conflict is reported as ChainConflict.
type S3RecordStore struct {
	S3     S3API
	Bucket string
}

// maxS3Object bounds what the store reads back.
const maxS3Object = audit.MaxRecordBytes + 1

func (s *S3RecordStore) get(ctx context.Context, key string) (body []byte, etag string, found bool, err error) {
	out, err := s.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		if isS3NotFound(err) {
			return nil, "", false, nil
		}
		return nil, "", false, awsErr("GetObject", err)
	}
	defer out.Body.Close()
	body, err = io.ReadAll(io.LimitReader(out.Body, maxS3Object))
	if err != nil {
		return nil, "", false, awsErr("GetObject", err)
	}
	if len(body) >= maxS3Object {
		return nil, "", false, &AuditStoreCorrupt{Key: key, Reason: "too large"}
	}
	return body, aws.ToString(out.ETag), true, nil
}

func (s *S3RecordStore) head(ctx context.Context) (auditHead, string, error) {
	b, etag, found, err := s.get(ctx, AuditHeadKey)
	if err != nil || !found {
		return auditHead{}, "", err
	}
	h, err := decodeHead(b)
	return h, etag, err
}

// Head implements RecordStore.
func (s *S3RecordStore) Head(ctx context.Context) (string, error) {
	h, _, err := s.head(ctx)
	return h.Hash, err
}

// Put implements RecordStore.
func (s *S3RecordStore) Put(ctx context.Context, key string, record []byte, prevHash string) error {
	// A retry: the record is there; finish moving the head if the first
	// call stopped between the record and the head.
	if _, err := s.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)}); err == nil {
		return s.existing(ctx, key)
	} else if !isS3NotFound(err) {
		return awsErr("HeadObject", err)
	}
	head, etag, err := s.head(ctx)
	if err != nil {
		return err
	}
	if head.Hash != prevHash {
		return &ChainConflict{Key: key, Expected: prevHash, Head: head.Hash}
	}
	_, hash, err := linkOf(key, record)
	if err != nil {
		return err
	}
	_, err = s.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: bytes.NewReader(record),
		ContentType: aws.String("application/json"), IfNoneMatch: aws.String("*"),
	})
	if isPreconditionFailed(err) {
		return s.existing(ctx, key)
	} else if err != nil {
		return awsErr("PutObject", err)
	}
	return s.moveHead(ctx, key, etag, prevHash, hash)
}

// existing returns RecordExists for the stored record at key, after moving
// the head to it when the head still points to the record before it.
func (s *S3RecordStore) existing(ctx context.Context, key string) error {
	b, _, found, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	if !found {
		return &AuditStoreCorrupt{Key: key, Reason: "reported present, then not found"}
	}
	prev, hash, err := linkOf(key, b)
	if err != nil {
		return err
	}
	head, etag, err := s.head(ctx)
	if err != nil {
		return err
	}
	if head.Hash == prev {
		if err := s.moveHead(ctx, key, etag, prev, hash); err != nil {
			return err
		}
	}
	return &RecordExists{Key: key, Record: b}
}

// moveHead replaces the head (ETag etag, "" when there is none) with hash.
func (s *S3RecordStore) moveHead(ctx context.Context, key, etag, prev, hash string) error {
	body, _ := json.Marshal(auditHead{Hash: hash, Key: key})
	in := &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(AuditHeadKey), Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"),
	}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	if _, err := s.S3.PutObject(ctx, in); err != nil {
		if isPreconditionFailed(err) {
			now, _, herr := s.head(ctx)
			if herr != nil {
				return herr
			}
			if now.Hash == hash {
				return nil // a concurrent retry of this very call moved it
			}
			return &ChainConflict{Key: key, Expected: prev, Head: now.Hash, RecordStored: true}
		}
		return awsErr("PutObject", err)
	}
	return nil
}

func isS3NotFound(err error) bool {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound", "404":
		return true
	}
	return false
}

// isPreconditionFailed is S3's answer to a failed If-None-Match or If-Match
// (412), or ConditionalRequestConflict (409) for a concurrent conditional
// write.
func isPreconditionFailed(err error) bool {
	switch apiCode(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return false
}
