package service

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/engine"
)

// schema is the durable store: state machines with every revision of
// their definition (an execution keeps the revision it started on),
// executions, their history events, and the task tokens they wait on. It
// lives in the same SQLite file as the sandbox account.
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
  parent TEXT NOT NULL DEFAULT '', wake_ms INTEGER, events INTEGER NOT NULL DEFAULT 0,
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
	return &store{db: db}, nil
}

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
	r := &execRow{}
	var start int64
	var stop sql.NullInt64
	var out, en, cause sql.NullString
	if err := sc.Scan(&r.arn, &r.smArn, &r.revision, &r.name, &r.input, &r.status, &start, &stop, &out, &en, &cause, &r.parent, &r.events); err != nil {
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

// events reads a history; the bodies are the JSON of sfn/types.HistoryEvent.
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
		var e types.HistoryEvent
		if err := json.Unmarshal(b, &e); err != nil {
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
	_, err := j.s.store.db.ExecContext(ctx, `INSERT INTO sfn_executions (arn, sm_arn, revision, name, input, status, start_ms, parent)
		VALUES (?, ?, ?, ?, ?, 'RUNNING', ?, ?)`, r.ExecutionArn, smArn, rev, r.Name, string(r.Input), ms(r.StartDate), r.ParentArn)
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
	tx, err := j.s.store.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var last int64
	for i := range c.Events {
		b, err := json.Marshal(&c.Events[i])
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sfn_events (exec_arn, id, body) VALUES (?, ?, ?)`, c.ExecutionArn, c.Events[i].Id, b); err != nil {
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
		_, err = tx.ExecContext(ctx, `UPDATE sfn_executions SET status = ?, stop_ms = ?, output = ?, error = ?, cause = ?, wake_ms = NULL,
			events = MAX(events, ?) WHERE arn = ?`, r.Status, ms(r.StopDate), out, nullIfEmpty(r.Error), nullIfEmpty(r.Cause), last, c.ExecutionArn)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE sfn_executions SET wake_ms = ?, events = MAX(events, ?) WHERE arn = ?`, wake, last, c.ExecutionArn)
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sfn_tokens WHERE exec_arn = ?`, c.ExecutionArn); err != nil {
		return err
	}
	for _, tok := range c.Tokens {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO sfn_tokens (token, exec_arn) VALUES (?, ?)`, tok, c.ExecutionArn); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func ptr[T any](v T) *T { return &v }
