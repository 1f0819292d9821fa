package service_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOpenUpgradesAnOlderStore: a store written before executions could
// park, whose events are encoding/json text, opens with nothing lost: the
// history reads back as it was written and the execution is listed.
func TestOpenUpgradesAnOlderStore(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "keyflow.db"))
	for _, stmt := range []string{
		`CREATE TABLE sfn_executions (
		  arn TEXT PRIMARY KEY, sm_arn TEXT NOT NULL, revision INTEGER NOT NULL, name TEXT NOT NULL, input TEXT NOT NULL,
		  status TEXT NOT NULL, start_ms INTEGER NOT NULL, stop_ms INTEGER, output TEXT, error TEXT, cause TEXT,
		  parent TEXT NOT NULL DEFAULT '', wake_ms INTEGER, events INTEGER NOT NULL DEFAULT 0, UNIQUE (sm_arn, name))`,
		`CREATE TABLE sfn_events (exec_arn TEXT NOT NULL, id INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (exec_arn, id)) WITHOUT ROWID`,
	} {
		_, err := db.Exec(stmt)
		require.NoError(t, err)
	}
	const arn = "arn:aws:states:us-east-1:123456789012:execution:Old:one"
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	events := []types.HistoryEvent{
		{Id: 1, Type: types.HistoryEventTypeExecutionStarted, Timestamp: aws.Time(at),
			ExecutionStartedEventDetails: &types.ExecutionStartedEventDetails{Input: aws.String(`{"user":"alice"}`), RoleArn: aws.String("arn:aws:iam::123456789012:role/r")}},
		{Id: 2, PreviousEventId: 1, Type: types.HistoryEventTypeExecutionSucceeded, Timestamp: aws.Time(at.Add(time.Second)),
			ExecutionSucceededEventDetails: &types.ExecutionSucceededEventDetails{Output: aws.String(`{"user":"alice"}`)}},
	}
	_, err := db.Exec(`INSERT INTO sfn_executions (arn, sm_arn, revision, name, input, status, start_ms, stop_ms, output, events)
		VALUES (?, 'arn:aws:states:us-east-1:123456789012:stateMachine:Old', 1, 'one', '{"user":"alice"}', 'SUCCEEDED', ?, ?, '{"user":"alice"}', 2)`,
		arn, at.UnixMilli(), at.Add(time.Second).UnixMilli())
	require.NoError(t, err)
	for _, e := range events {
		b, err := json.Marshal(&e)
		require.NoError(t, err)
		_, err = db.Exec(`INSERT INTO sfn_events (exec_arn, id, body) VALUES (?, ?, ?)`, arn, e.Id, b)
		require.NoError(t, err)
	}

	l := open(t, db, &world{})
	defer l.Close()
	h, err := l.GetExecutionHistory(t.Context(), &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn)})
	require.NoError(t, err)
	require.Len(t, h.Events, 2)
	for i, e := range h.Events {
		assert.Equal(t, events[i].Id, e.Id)
		assert.Equal(t, events[i].Type, e.Type)
		assert.True(t, events[i].Timestamp.Equal(*e.Timestamp), "event %d at %v, was %v", e.Id, e.Timestamp, events[i].Timestamp)
	}
	assert.Equal(t, `{"user":"alice"}`, aws.ToString(h.Events[0].ExecutionStartedEventDetails.Input))
	assert.Equal(t, `{"user":"alice"}`, aws.ToString(h.Events[1].ExecutionSucceededEventDetails.Output))

	var body string
	require.NoError(t, db.QueryRow(`SELECT body FROM sfn_events WHERE exec_arn = ? AND id = 1`, arn).Scan(&body))
	assert.NotContains(t, body, "null", "the upgraded body is wire JSON, without unset members")
}
