package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/audit"
)

// recordedHistory reads one of the audit package's recorded histories.
func recordedHistory(t *testing.T, name string) []types.HistoryEvent {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "audit", "testdata", "histories", name+".json"))
	require.NoError(t, err)
	defer f.Close()
	events, err := audit.DecodeHistory(f)
	require.NoError(t, err)
	return events
}

func execArn(workflow, name string) string {
	return "arn:aws:states:us-east-1:123456789012:execution:keyflow-" + workflow + ":" + name
}

// deleteBeforeBuffer tampers with a lifecycle history as a broken workflow
// or handler would have written it: the old key's deletion happened 20
// days before the buffer point it was given. It returns the copy and how
// many deletions it moved.
func deleteBeforeBuffer(t *testing.T, events []types.HistoryEvent) ([]types.HistoryEvent, int) {
	t.Helper()
	out := make([]types.HistoryEvent, len(events))
	copy(out, events)
	moved := 0
	for i := range out {
		d := out[i].LambdaFunctionSucceededEventDetails
		if d == nil || d.Output == nil {
			continue
		}
		var o map[string]any
		if json.Unmarshal([]byte(*d.Output), &o) != nil || o["result"] != "Deleted" {
			continue
		}
		notBefore, err := time.Parse(time.RFC3339, o["notBefore"].(string))
		require.NoError(t, err)
		early := notBefore.Add(-20 * 24 * time.Hour)
		o["deletedAt"] = early.Format(time.RFC3339)
		b, _ := json.Marshal(o)
		s := string(b)
		dd := *d
		dd.Output = &s
		out[i].LambdaFunctionSucceededEventDetails = &dd
		out[i].Timestamp = &early
		moved++
	}
	return out, moved
}

func runAuditOn(t *testing.T, api audit.SFN, o auditOptions) (stdout, stderr string, err error) {
	t.Helper()
	if o.format == "" {
		o.format = "table"
	}
	filter, ferr := o.filter()
	require.NoError(t, ferr)
	var out, errOut bytes.Buffer
	err = runAudit(context.Background(), api, filter, o, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestAuditTamperedHistory: of three executions, the one whose history was
// tampered with (a delete before the buffer) is the only one reported, with
// exactly that breach, and the command exits 1.
func TestAuditTamperedHistory(t *testing.T) {
	x := &audit.Executions{PageSize: 2}
	clean := recordedHistory(t, "lifecycle-clean")
	tampered, moved := deleteBeforeBuffer(t, clean)
	require.Equal(t, 1, moved)
	require.NoError(t, x.Add(audit.History{ExecutionArn: execArn("lifecycle", "clean"), Events: clean}))
	require.NoError(t, x.Add(audit.History{ExecutionArn: execArn("lifecycle", "tampered"), Events: tampered}))
	require.NoError(t, x.Add(audit.History{ExecutionArn: execArn("quarantine", "approved"), Events: recordedHistory(t, "quarantine-approved")}))

	out, _, err := runAuditOn(t, x, auditOptions{})
	var ee *exitError
	require.True(t, errors.As(err, &ee), "error %v", err)
	assert.Equal(t, ExitFailed, ee.code)
	var breaches []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "BREACH ") {
			breaches = append(breaches, line)
		}
	}
	require.Len(t, breaches, 1, out)
	assert.True(t, strings.HasPrefix(breaches[0], "BREACH tampered delete-before-buffer: key AKIAOLDKEY0000000001 was deleted at 2026-01-26T09:00:00Z, before its buffer point 2026-02-15T09:00:00Z (events 22 24)"), breaches[0])
	assert.Contains(t, out, "audited 3 execution(s): 10 action(s), 1 approval(s), 1 breach(es)")

	// The untouched executions alone are clean, and exit 0.
	out, _, err = runAuditOn(t, x, auditOptions{workflows: []string{"quarantine"}})
	require.NoError(t, err)
	assert.Contains(t, out, "audited 1 execution(s): 2 action(s), 1 approval(s), 0 breach(es)")
}

// TestAuditVerify: the JSON Lines export verifies; an edited record and a
// deleted one are each named, and nothing else is.
func TestAuditVerify(t *testing.T) {
	x := &audit.Executions{}
	for i, name := range []string{"lifecycle-clean", "lifecycle-unused-key", "lifecycle-key-already-inactive", "quarantine-approved"} {
		wf := strings.SplitN(name, "-", 2)[0]
		events := recordedHistory(t, name)
		// Distinct start times give the chain a fixed order.
		for j := range events {
			at := events[j].Timestamp.Add(time.Duration(i) * time.Hour)
			events[j].Timestamp = &at
		}
		require.NoError(t, x.Add(audit.History{ExecutionArn: execArn(wf, name), Events: events}))
	}
	out, stderr, err := runAuditOn(t, x, auditOptions{format: "jsonl"})
	require.NoError(t, err, stderr)
	assert.Contains(t, stderr, "audited 4 execution(s)")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4)
	dir := t.TempDir()
	write := func(name string, ls []string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o644))
		return p
	}
	verify := func(path string, extra ...string) (int, string) {
		var o, e bytes.Buffer
		code := Run(append([]string{"audit", "verify", path}, extra...), nil, &o, &e)
		return code, o.String() + e.String()
	}

	code, msg := verify(write("intact.jsonl", lines))
	assert.Equal(t, ExitOK, code, msg)
	assert.Contains(t, msg, "4 record(s), chain intact")

	// Edit record 2: the unused key's deletion now says "Retained".
	edited := append([]string(nil), lines...)
	require.Contains(t, edited[1], `"result":"Deleted"`)
	edited[1] = strings.Replace(edited[1], `"result":"Deleted"`, `"result":"Retained"`, 1)
	code, msg = verify(write("edited.jsonl", edited))
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, msg, "line 2 lifecycle-unused-key: edited:")
	assert.Equal(t, 1, strings.Count(msg, "\nline ")+boolInt(strings.HasPrefix(msg, "line ")), msg)

	// Delete record 3: record 4 no longer follows its predecessor.
	deleted := []string{lines[0], lines[1], lines[3]}
	code, msg = verify(write("deleted.jsonl", deleted))
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, msg, "line 3 quarantine-approved: missing:")
	assert.Equal(t, 1, strings.Count(msg, "line "), msg)

	// Cut off the end: only the head kept apart shows it.
	head := strings.TrimSpace(stderr[strings.Index(stderr, "chain head ")+len("chain head "):])
	code, msg = verify(write("cut.jsonl", lines[:3]), "--head", head)
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, msg, "truncated")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
