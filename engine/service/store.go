package service

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/sfnjson"
)

// schema is the durable store: state machines with every revision of
// their definition (an execution keeps the revision it started on),
// executions, their history events, and the task tokens they wait on. It
// lives in the same SQLite file as the sandbox account.
//
// An execution is parked when its last commit found it with nothing to do
// but wait: until wake_ms, or until one of its tokens is answered. Event
// bodies are the Step Functions wire JSON (sfnjson), which leaves out the
// event's unset members: a few hundred bytes where encoding/json writes
// five kilobytes of nulls.
const schema = `
CREATE TABLE IF NOT EXISTS sfn_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sfn_state_machines (
  arn TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, type TEXT NOT NULL, role_arn TEXT NOT NULL,
  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, revision INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sfn_revisions (
  arn TEXT NOT NULL, revision INTEGER NOT NULL, definition TEXT NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (arn, revision)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sfn_executions (
  arn TEXT PRIMARY KEY, sm_arn TEXT NOT NULL, revision INTEGER NOT NULL, name TEXT NOT NULL, input TEXT NOT NULL,
  status TEXT NOT NULL, start_ms INTEGER NOT NULL, stop_ms INTEGER, output TEXT, error TEXT, cause TEXT,
  parent TEXT NOT NULL DEFAULT '', wake_ms INTEGER, events INTEGER NOT NULL DEFAULT 0, parked INTEGER NOT NULL DEFAULT 0,
  UNIQUE (sm_arn, name));
CREATE INDEX IF NOT EXISTS sfn_executions_by_machine ON sfn_executions (sm_arn, start_ms);
CREATE INDEX IF NOT EXISTS sfn_executions_running ON sfn_executions (status, wake_ms);
CREATE TABLE IF NOT EXISTS sfn_events (
  exec_arn TEXT NOT NULL, id INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (exec_arn, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sfn_tokens (token TEXT PRIMARY KEY, exec_arn TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sfn_tokens_by_execution ON sfn_tokens (exec_arn);
`

// store is the SQL side of the service: every write of an execution is one
// transaction, so a transition and its events commit together.
type store struct {
	db *sql.DB

	// Writes of executions go through one writer (see write): SQLite
	// takes one writer at a time, and thousands of executions that
	// commit at once would otherwise queue in its busy handler and time
	// out.
	wmu     sync.Mutex
	queue   []*writeReq
	writing bool
	stmts   map[string]*sql.Stmt // the writer's, prepared once
}

type writeReq struct {
	fn   func(w *wtx) error
	done chan error
}

// wtx is a write transaction whose statements are parsed once per store,
// not once per execution: parsing was a fifth of a start's cost.
type wtx struct {
	ctx context.Context
	tx  *sql.Tx
	s   *store
}

func (w *wtx) exec(query string, args ...any) error {
	st, ok := w.s.stmts[query]
	if !ok {
		var err error
		if st, err = w.s.db.PrepareContext(w.ctx, query); err != nil {
			return err
		}
		w.s.stmts[query] = st
	}
	_, err := w.tx.StmtContext(w.ctx, st).ExecContext(w.ctx, args...)
	return err
}

// write runs fn in a transaction, grouped with the writes queued by other
// goroutines meanwhile: the first caller writes the queue's batches until
// it is empty, the others wait for their turn's outcome. Each write has a
// savepoint of its own, so one that fails is undone alone; a batch costs
// one commit (one fsync) however many writes it carries.
func (s *store) write(ctx context.Context, fn func(w *wtx) error) error {
	req := &writeReq{fn: fn, done: make(chan error, 1)}
	s.wmu.Lock()
	s.queue = append(s.queue, req)
	if s.writing {
		s.wmu.Unlock()
		return <-req.done
	}
	s.writing = true
	for len(s.queue) > 0 {
		batch := s.queue
		s.queue = nil
		s.wmu.Unlock()
		s.writeBatch(context.WithoutCancel(ctx), batch)
		s.wmu.Lock()
	}
	s.writing = false
	s.wmu.Unlock()
	return <-req.done
}

func (s *store) writeBatch(ctx context.Context, batch []*writeReq) {
	errs := make([]error, len(batch))
	err := func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		w := &wtx{ctx: ctx, tx: tx, s: s}
		for i, r := range batch {
			if err := w.exec(`SAVEPOINT w`); err != nil {
				return err
			}
			if errs[i] = r.fn(w); errs[i] != nil {
				if err := w.exec(`ROLLBACK TO w`); err != nil {
					return err
				}
			}
			if err := w.exec(`RELEASE w`); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	for i, r := range batch {
		if err != nil {
			errs[i] = err
		}
		r.done <- errs[i]
	}
}

func openStore(ctx context.Context, db *sql.DB) (*store, error) {
	for _, stmt := range strings.Split(schema, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("service: creating the store: %w", err)
		}
	}
	s := &store{db: db, stmts: map[string]*sql.Stmt{}}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("service: upgrading the store: %w", err)
	}
	return s, nil
}

// migrate brings a store written by an earlier keyflow up to the schema:
// the parked column, and event bodies in the wire format instead of
// encoding/json's. Nothing is lost: each old body is read and written
// again.
func (s *store) migrate(ctx context.Context) error {
	var format string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM sfn_meta WHERE key = 'events_format'`).Scan(&format)
	if err == nil && format == eventsFormat {
		return nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var hasParked int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('sfn_executions') WHERE name = 'parked'`).Scan(&hasParked); err != nil {
		return err
	}
	if hasParked == 0 {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE sfn_executions ADD COLUMN parked INTEGER NOT NULL DEFAULT 0`); err != nil {
			return err
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT exec_arn, id, body FROM sfn_events`)
	if err != nil {
		return err
	}
	type row struct {
		arn  string
		id   int64
		body []byte
	}
	var old []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.arn, &r.id, &r.body); err != nil {
			rows.Close()
			return err
		}
		old = append(old, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range old {
		var e types.HistoryEvent
		if err := json.Unmarshal(r.body, &e); err != nil {
			return fmt.Errorf("event %d of %s: %w", r.id, r.arn, err)
		}
		b, err := sfnjson.Marshal(&e)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sfn_events SET body = ? WHERE exec_arn = ? AND id = ?`, b, r.arn, r.id); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO sfn_meta (key, value) VALUES ('events_format', ?)`, eventsFormat); err != nil {
		return err
	}
	return tx.Commit()
}

// eventsFormat names the encoding of event bodies in the store.
const eventsFormat = "sfnjson"

// tokenSecret is the store's key for task tokens, made on first use: a
// resumed execution must issue the tokens it issued before.
func (s *store) tokenSecret(ctx context.Context) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM sfn_meta WHERE key = 'token_secret'`).Scan(&b)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO sfn_meta (key, value) VALUES ('token_secret', ?)`, b); err != nil {
		return nil, err
	}
	return s.tokenSecret(ctx)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// machineRow is a state machine as stored.
type machineRow struct {
	arn, name, typ, role string
	created, updated     time.Time
	revision             int64
	definition           string
}

func (s *store) machine(ctx context.Context, arn string) (*machineRow, error) {
	r := &machineRow{}
	var c, u int64
	err := s.db.QueryRowContext(ctx, `SELECT m.arn, m.name, m.type, m.role_arn, m.created_ms, m.updated_ms, m.revision, r.definition
		FROM sfn_state_machines m JOIN sfn_revisions r ON r.arn = m.arn AND r.revision = m.revision
		WHERE m.arn = ? AND m.deleted = 0`, arn).Scan(&r.arn, &r.name, &r.typ, &r.role, &c, &u, &r.revision, &r.definition)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &types.StateMachineDoesNotExist{Message: ptr("State Machine Does Not Exist: '" + arn + "'")}
	}
	if err != nil {
		return nil, err
	}
	r.created, r.updated = fromMS(c), fromMS(u)
	return r, nil
}

func (s *store) revision(ctx context.Context, arn string, rev int64) (string, error) {
	var def string
	err := s.db.QueryRowContext(ctx, `SELECT definition FROM sfn_revisions WHERE arn = ? AND revision = ?`, arn, rev).Scan(&def)
	return def, err
}

// execRow is an execution as stored.
type execRow struct {
	arn, smArn, name, input, status string
	revision                        int64
	start                           time.Time
	stop                            *time.Time
	output, errName, cause          *string
	parent                          string
	events                          int64
}

const execCols = `arn, sm_arn, revision, name, input, status, start_ms, stop_ms, output, error, cause, parent, events`

func scanExec(sc interface{ Scan(...any) error }) (*execRow, error) {
	return scanExecWith(sc)
}

// scanExecWith scans execCols and then the extra columns of a query.
func scanExecWith(sc interface{ Scan(...any) error }, extra ...any) (*execRow, error) {
	r := &execRow{}
	var start int64
	var stop sql.NullInt64
	var out, en, cause sql.NullString
	dst := append([]any{&r.arn, &r.smArn, &r.revision, &r.name, &r.input, &r.status, &start, &stop, &out, &en, &cause, &r.parent, &r.events}, extra...)
	if err := sc.Scan(dst...); err != nil {
		return nil, err
	}
	r.start = fromMS(start)
	if stop.Valid {
		t := fromMS(stop.Int64)
		r.stop = &t
	}
	if out.Valid {
		r.output = &out.String
	}
	if en.Valid {
		r.errName = &en.String
	}
	if cause.Valid {
		r.cause = &cause.String
	}
	return r, nil
}

func (s *store) execution(ctx context.Context, arn string) (*execRow, error) {
	r, err := scanExec(s.db.QueryRowContext(ctx, `SELECT `+execCols+` FROM sfn_executions WHERE arn = ?`, arn))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &types.ExecutionDoesNotExist{Message: ptr("Execution Does Not Exist: '" + arn + "'")}
	}
	return r, err
}

// events reads a history.
func (s *store) events(ctx context.Context, arn string) ([]types.HistoryEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM sfn_events WHERE exec_arn = ? ORDER BY id`, arn)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []types.HistoryEvent
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		e, err := decodeEvent(b)
		if err != nil {
			return nil, fmt.Errorf("service: event of %s: %w", arn, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// journal is the engine's Journal on the store.
type journal struct {
	s   *Local
	rev func(*engine.Machine) (string, int64)
}

func (j journal) Start(ctx context.Context, r *engine.StartRecord) error {
	smArn, rev := j.rev(r.Machine)
	err := j.s.store.write(ctx, func(w *wtx) error {
		return w.exec(`INSERT INTO sfn_executions (arn, sm_arn, revision, name, input, status, start_ms, parent)
			VALUES (?, ?, ?, ?, ?, 'RUNNING', ?, ?)`, r.ExecutionArn, smArn, rev, r.Name, string(r.Input), ms(r.StartDate), r.ParentArn)
	})
	if err == nil {
		return nil
	}
	if !strings.Contains(err.Error(), "UNIQUE") {
		return err
	}
	prev, perr := j.s.store.execution(ctx, r.ExecutionArn)
	if perr != nil {
		return perr
	}
	if prev.status == engine.StatusRunning && sameJSON(prev.input, string(r.Input)) {
		return &engine.AlreadyRunning{ExecutionArn: prev.arn, StartDate: prev.start}
	}
	return &engine.APIError{Name: engine.ErrExecutionAlreadyExists.Name, Message: "Execution Already Exists: '" + r.ExecutionArn + "'"}
}

func (j journal) Commit(ctx context.Context, c *engine.Commit) error {
	return j.s.store.write(ctx, func(w *wtx) error { return commitTx(w, c) })
}

func commitTx(w *wtx, c *engine.Commit) error {
	var err error
	var last int64
	for i := range c.Events {
		b, err := sfnjson.Marshal(&c.Events[i])
		if err != nil {
			return err
		}
		if err := w.exec(`INSERT INTO sfn_events (exec_arn, id, body) VALUES (?, ?, ?)`, c.ExecutionArn, c.Events[i].Id, b); err != nil {
			return fmt.Errorf("service: event %d of %s: %w", c.Events[i].Id, c.ExecutionArn, err)
		}
		last = c.Events[i].Id
	}
	var wake any
	if !c.WakeAt.IsZero() {
		wake = ms(c.WakeAt)
	}
	if r := c.Result; r != nil {
		var out any
		if r.Status == engine.StatusSucceeded {
			b, err := marshalValue(r.Output)
			if err != nil {
				return err
			}
			out = b
		}
		err = w.exec(`UPDATE sfn_executions SET status = ?, stop_ms = ?, output = ?, error = ?, cause = ?, wake_ms = NULL,
			parked = 0, events = MAX(events, ?) WHERE arn = ?`, r.Status, ms(r.StopDate), out, nullIfEmpty(r.Error), nullIfEmpty(r.Cause), last, c.ExecutionArn)
	} else {
		err = w.exec(`UPDATE sfn_executions SET wake_ms = ?, parked = ?, events = MAX(events, ?) WHERE arn = ?`, wake, c.Idle, last, c.ExecutionArn)
	}
	if err != nil {
		return err
	}
	if err := w.exec(`DELETE FROM sfn_tokens WHERE exec_arn = ?`, c.ExecutionArn); err != nil {
		return err
	}
	for _, tok := range c.Tokens {
		if err := w.exec(`INSERT OR REPLACE INTO sfn_tokens (token, exec_arn) VALUES (?, ?)`, tok, c.ExecutionArn); err != nil {
			return err
		}
	}
	return nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func ptr[T any](v T) *T { return &v }
