package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/service"
	"github.com/keyflow/keyflow/sandbox"
)

// seeded is a store that keyflow sandbox seed filled.
func seeded(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "keyflow.db")
	code, _, errOut := run("sandbox", "seed", "--db", db)
	require.Equal(t, ExitOK, code, errOut)
	return db
}

type listed struct {
	Executions []struct {
		ExecutionArn string `json:"executionArn"`
		Name         string `json:"name"`
		Status       string `json:"status"`
	} `json:"executions"`
}

func listExecutions(t *testing.T, args ...string) listed {
	t.Helper()
	code, out, errOut := run(append([]string{"executions"}, append(args, "--json")...)...)
	require.Equal(t, ExitOK, code, errOut)
	var l listed
	require.NoError(t, json.Unmarshal([]byte(out), &l), out)
	return l
}

// TestStartInventory runs the inventory on the local store: the durable
// service runs it and every lifecycle it starts, and afterwards the
// read-only commands find them all in the store.
func TestStartInventory(t *testing.T) {
	db := seeded(t)
	code, out, errOut := run("start", "inventory", "--db", db, "--input", `{"organization":true}`)
	require.Equal(t, ExitOK, code, out+errOut)
	var res struct {
		Status string
		Output map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, "SUCCEEDED", res.Status)
	assert.Contains(t, errOut, "0 did not succeed")

	inv := listExecutions(t, "inventory", "--db", db)
	require.Len(t, inv.Executions, 1)
	assert.Equal(t, "SUCCEEDED", inv.Executions[0].Status)
	lc := listExecutions(t, "lifecycle", "--db", db)
	assert.NotEmpty(t, lc.Executions, "the lifecycles the inventory started are in the store")
	for _, e := range lc.Executions {
		assert.Equal(t, "SUCCEEDED", e.Status, e.Name)
	}

	code, table, errOut := run("history", inv.Executions[0].ExecutionArn, "--db", db)
	require.Equal(t, ExitOK, code, errOut)
	assert.Regexp(t, `(?m)^1\s+0\s+\S+\s+ExecutionStarted`, table)
	assert.Contains(t, table, "ExecutionSucceeded")

	// Nothing this run started is left RUNNING, so the next start is free
	// to run the store.
	code, out, errOut = run("start", "inventory", "--db", db, "--dry-run", "--input", `{"organization":true}`)
	require.Equal(t, ExitOK, code, out+errOut)
	assert.Len(t, listExecutions(t, "keyflow-inventory-dry-run", "--db", db).Executions, 1, "a dry run has its own state machine")
}

// TestStartQuarantineRejected answers the quarantine's approval with
// --approve reject: the answer, as keyflow reject puts it, names the
// approver's STS identity, and the task token is printed nowhere.
func TestStartQuarantineRejected(t *testing.T) {
	db := seeded(t)
	d, err := openDB(db)
	require.NoError(t, err)
	sb, err := sandbox.New(sandbox.Options{DB: d})
	require.NoError(t, err)
	approver := "arn:aws:iam::" + sb.ManagementAccount() + ":user/security-oncall"
	require.NoError(t, sb.SetCallerIdentity(sb.ManagementAccount(), approver))
	orgs, err := sb.Organizations().ListAccounts(t.Context(), &organizations.ListAccountsInput{})
	require.NoError(t, err)
	var acct string
	for _, a := range orgs.Accounts {
		if id := aws.ToString(a.Id); id != sb.ManagementAccount() {
			acct = id
			break
		}
	}
	require.NotEmpty(t, acct)
	user, err := plainUserWithKey(t.Context(), sb, acct)
	require.NoError(t, err)
	require.NoError(t, d.Close())

	in, err := json.Marshal(cloudTrailCall(acct, user, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)))
	require.NoError(t, err)
	code, out, errOut := run("start", "quarantine", "--db", db, "--input", string(in), "--approve", "reject", "--name", "reject-"+user)
	require.Equal(t, ExitOK, code, out+errOut)
	var res struct {
		Status string
		Output struct {
			Approval map[string]string `json:"approval"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, "SUCCEEDED", res.Status)
	a := res.Output.Approval
	assert.Equal(t, "reject", a["decision"])
	assert.Equal(t, approver, a["approver"])
	assert.Equal(t, approver, a["approverArn"])
	assert.NotEmpty(t, a["decidedAt"])

	q := listExecutions(t, "quarantine", "--db", db)
	require.Len(t, q.Executions, 1)
	assert.Equal(t, "reject-"+user, q.Executions[0].Name)
	code, hist, errOut := run("history", q.Executions[0].ExecutionArn, "--db", db, "--json")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, hist, redactedToken, "the token was asked for, and its place is marked")
	assert.Contains(t, hist, `\"decision\":\"reject\"`)

	// The audit reads the same store: one record, no breach, the approver named.
	code, rec, errOut := run("audit", "--workflow", "quarantine", "--format", "jsonl", "--db", db)
	require.Equal(t, ExitOK, code, rec+errOut)
	lines := strings.Split(strings.TrimSpace(rec), "\n")
	require.Len(t, lines, 1, rec)
	assert.Contains(t, lines[0], "reject-"+user)
	assert.Contains(t, lines[0], approver)
}

// TestStartIsRefusedWhileTheStoreIsRun: one process runs a store's
// executions; start names the way through the one that does.
func TestStartIsRefusedWhileTheStoreIsRun(t *testing.T) {
	db := seeded(t)
	lock, err := lockStore(db, "keyflow serve, pid 1, on http://127.0.0.1:8099")
	require.NoError(t, err)
	code, out, errOut := run("start", "inventory", "--db", db)
	assert.Equal(t, ExitFailed, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "in use by another keyflow process (keyflow serve, pid 1, on http://127.0.0.1:8099)")
	assert.Contains(t, errOut, "--endpoint http://127.0.0.1:8083")
	_, err = lockStore(db, "a second writer")
	assert.ErrorIs(t, err, errStoreBusy)

	// Reading takes no lock (this store has no state machines yet).
	_, _, errOut = run("executions", "inventory", "--db", db)
	assert.Contains(t, errOut, `no state machine named "inventory"`)

	lock.release()
	code, out, errOut = run("start", "lifecycle", "--db", db, "--dry-run", "--input", `{"accountId":"111111111111","userName":"nobody","accessKeyId":"AKIANOBODY","deactivateAt":"2026-01-01T00:00:00Z","deleteAt":"2026-02-01T00:00:00Z"}`)
	assert.NotEqual(t, ExitInvalid, code, out+errOut)
	assert.NotContains(t, errOut, "in use")
}

// TestStartRefusesRunningExecutions: executions left RUNNING by an
// earlier process would be fast-forwarded on the virtual clock, so start
// refuses them unless told to carry them on, and then does.
func TestStartRefusesRunningExecutions(t *testing.T) {
	db := seeded(t)
	d, err := openDB(db)
	require.NoError(t, err)
	l, err := service.Open(t.Context(), service.Options{DB: d, Engine: engine.Options{Clock: engine.NewRealClock()}})
	require.NoError(t, err)
	sm, err := l.CreateStateMachine(t.Context(), &sfn.CreateStateMachineInput{Name: aws.String("Patient"),
		Definition: aws.String(`{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":31536000,"End":true}}}`), RoleArn: aws.String(localRoleArn)})
	require.NoError(t, err)
	_, err = l.StartExecution(t.Context(), &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String("a-year")})
	require.NoError(t, err)
	l.Close()
	require.NoError(t, d.Close())

	code, _, errOut := run("start", "inventory", "--db", db)
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, errOut, "has RUNNING executions (arn:aws:states:us-east-1:123456789012:execution:Patient:a-year")

	code, out, errOut := run("start", "inventory", "--db", db, "--resume-running", "--input", `{"organization":true}`)
	require.Equal(t, ExitOK, code, out+errOut)
	p := listExecutions(t, "Patient", "--db", db)
	require.Len(t, p.Executions, 1)
	assert.Equal(t, "SUCCEEDED", p.Executions[0].Status, "the year-long wait ended on the virtual clock")
}

// syncBuffer is a bytes.Buffer that serve's goroutine writes while the
// test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveInProcess runs keyflow serve on db in this process, on a clock ten
// million times fast (a 90-day lifecycle in about a second), until the
// test ends; it returns the endpoint and a function that stops the server
// and returns once it has let go of the store.
func serveInProcess(t *testing.T, db string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "keyflow", "AWS_SECRET_ACCESS_KEY": "keyflow-start-test", "AWS_SESSION_TOKEN": "", "AWS_REGION": "us-east-1",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "credentials"), "AWS_ENDPOINT_URL": "",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newServeCmd()
	var stderr syncBuffer
	cmd.SetOut(&stderr)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"--db", db, "--addr", addr, "--time-scale", "10000000", "--access-key-id", "keyflow", "--secret-access-key", "keyflow-start-test"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, stderr.String())
		}
		done <- nil // a second stop returns at once
	}
	t.Cleanup(stop)
	url := "http://" + addr
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve ended: %v\n%s", err, stderr.String())
		default:
		}
		return strings.Contains(stderr.String(), "Step Functions API on")
	}, 60*time.Second, 10*time.Millisecond)
	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	return url, stop
}

// TestStartOnServe starts through a running keyflow serve: the start
// alone, then with --wait to the end; meanwhile the store is serve's, and
// a start on it directly is refused with the way through serve.
func TestStartOnServe(t *testing.T) {
	db := seeded(t)
	url, stop := serveInProcess(t, db)

	code, out, errOut := run("start", "inventory", "--endpoint", url, "--name", "no-wait")
	require.Equal(t, ExitOK, code, out+errOut)
	var started struct {
		ExecutionArn string  `json:"executionArn"`
		StartDate    float64 `json:"startDate"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &started), out)
	assert.Equal(t, "arn:aws:states:us-east-1:123456789012:execution:keyflow-inventory:no-wait", started.ExecutionArn)
	assert.NotZero(t, started.StartDate)

	code, out, errOut = run("start", "inventory", "--endpoint", url, "--wait", "--input", `{"organization":true}`)
	require.Equal(t, ExitOK, code, out+errOut)
	var res struct{ Status string }
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, "SUCCEEDED", res.Status)
	assert.Contains(t, errOut, "keyflow: started arn:aws:states:us-east-1:123456789012:execution:keyflow-inventory:")

	code, _, errOut = run("start", "inventory", "--db", db)
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, errOut, "keyflow serve, pid")
	assert.Contains(t, errOut, "on "+url)

	code, _, errOut = run("start", "lifecycle", "--endpoint", url, "--state-machine-arn", "arn:aws:states:us-east-1:123456789012:stateMachine:nosuch")
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, errOut, "StateMachineDoesNotExist")

	// Once serve has ended, its lock is gone.
	stop()
	lock, err := lockStore(db, "after serve")
	require.NoError(t, err)
	lock.release()
}

func TestStartRefuses(t *testing.T) {
	rows := []struct {
		name string
		args []string
	}{
		{"unknown workflow", []string{"start", "nope"}},
		{"unknown backend", []string{"start", "lifecycle", "--backend", "gcp"}},
		{"unknown decision", []string{"start", "quarantine", "--approve", "maybe"}},
		{"bad JSON", []string{"start", "lifecycle", "--input", "{not json"}},
		{"two sides", []string{"start", "lifecycle", "--aws", "--endpoint", "http://127.0.0.1:1"}},
		{"handlers here, engine there", []string{"start", "lifecycle", "--endpoint", "http://127.0.0.1:1", "--backend", "aws"}},
		{"approve on a server", []string{"start", "quarantine", "--endpoint", "http://127.0.0.1:1", "--approve", "approve"}},
		{"topic on a server", []string{"start", "quarantine", "--endpoint", "http://127.0.0.1:1", "--topic", "arn:aws:sns:us-east-1:1:t"}},
		{"resume on a server", []string{"start", "quarantine", "--endpoint", "http://127.0.0.1:1", "--resume-running"}},
		{"state machine ARN locally", []string{"start", "lifecycle", "--state-machine-arn", "arn:aws:states:us-east-1:1:stateMachine:x"}},
		{"not a state machine ARN", []string{"start", "lifecycle", "--endpoint", "http://127.0.0.1:1", "--state-machine-arn", "keyflow-lifecycle"}},
		{"quarantine dry run on a server", []string{"start", "quarantine", "--endpoint", "http://127.0.0.1:1", "--dry-run"}},
		{"dry run of a list", []string{"start", "inventory", "--endpoint", "http://127.0.0.1:1", "--dry-run", "--input", "[1]"}},
		{"aws backend without a topic", []string{"start", "lifecycle", "--backend", "aws"}},
		{"no workflow", []string{"start"}},
		{"unknown flag", []string{"start", "lifecycle", "--frobnicate"}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "k.db")
			code, out, errOut := run(append(r.args, "--db", db)...)
			assert.Equal(t, ExitInvalid, code, fmt.Sprintf("%s %s", out, errOut))
			assert.NotEmpty(t, errOut)
		})
	}
}
