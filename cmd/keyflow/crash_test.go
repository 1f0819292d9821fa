package main_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	_ "modernc.org/sqlite"

	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

// server is one life of `keyflow serve`.
type server struct {
	cmd  *exec.Cmd
	addr string
}

func startServer(t *testing.T, bin, db, addr string) *server {
	t.Helper()
	// A million times faster, a lifecycle's waits last seconds: long
	// enough that every kill finds executions mid-run, however fast the
	// machine. 1 ms of real time is about a quarter of an hour of this
	// clock: executions go dormant in every Wait, so the kills also hit
	// the wake-ups.
	cmd := exec.Command(bin, "serve", "--db", db, "--addr", addr, "--time-scale", "1000000", "--unload-after", "1ms")
	cmd.Env = append(os.Environ(), "KEYFLOW_ACCESS_KEY_ID=crash", "KEYFLOW_SECRET_ACCESS_KEY=crash-test")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, "Step Functions API on") {
				ready <- line
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("keyflow serve did not start within 60s")
	}
	return &server{cmd: cmd, addr: addr}
}

func (s *server) kill9() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeSurvivesKill9: keyflow serve runs key lifecycles (90 days on a
// clock ten million times fast) created and started through the sfn
// client, and is killed with SIGKILL at random moments, again and again.
// After the last restart every execution ends SUCCEEDED with one
// consistent history (ids 1..n, each once, links backwards, one start and
// one end), and every key is rotated exactly: the old key deleted, one new
// key, never three.
func TestServeSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills keyflow serve repeatedly")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "keyflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	db := filepath.Join(dir, "keyflow.db")
	if out, err := exec.Command(bin, "sandbox", "seed", "--db", db, "--accounts", "1", "--users", "60", "--seed", "11").CombinedOutput(); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	due := dueKeys(t, db)
	if len(due) < 10 {
		t.Fatalf("the seed gives %d rotatable keys; the test needs more", len(due))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	addr := freeAddr(t)
	srv := startServer(t, bin, db, addr)
	defer func() { srv.kill9() }()
	client := sfn.New(sfn.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("crash", "crash-test", "")})

	def, err := statemachines.Build(statemachines.NameLifecycle, statemachines.Options{Resources: statemachines.Local("us-east-1", "123456789012")})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(def)
	sm, err := client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("LifecycleUnderTest"),
		Definition: aws.String(string(raw)), RoleArn: aws.String("arn:aws:iam::123456789012:role/keyflow")})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range due {
		in, _ := json.Marshal(k)
		if _, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn,
			Name: aws.String(statemachines.LifecycleExecutionName(k.AccountID, k.UserName, k.AccessKeyID)), Input: aws.String(string(in))}); err != nil {
			t.Fatal(err)
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	kills, interrupted := 0, 0
	for range 6 {
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		if kills == 0 {
			running, err := client.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: sm.StateMachineArn, StatusFilter: types.ExecutionStatusRunning, MaxResults: 1000})
			if err != nil {
				t.Fatal(err)
			}
			interrupted = len(running.Executions)
		}
		srv.kill9()
		kills++
		srv = startServer(t, bin, db, addr)
	}

	// Every execution ends, each exactly once.
	var ended map[string]types.ExecutionStatus
	for {
		ended = map[string]types.ExecutionStatus{}
		p := sfn.NewListExecutionsPaginator(client, &sfn.ListExecutionsInput{StateMachineArn: sm.StateMachineArn, MaxResults: 50})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Executions {
				if _, dup := ended[*e.ExecutionArn]; dup {
					t.Fatalf("%s listed twice", *e.ExecutionArn)
				}
				ended[*e.ExecutionArn] = e.Status
			}
		}
		running := 0
		for _, st := range ended {
			if st == types.ExecutionStatusRunning {
				running++
			}
		}
		if running == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d executions still running", running, len(ended))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if interrupted == 0 {
		t.Fatal("every execution had ended before the first kill: nothing was interrupted")
	}
	if len(ended) != len(due) {
		t.Fatalf("%d executions for %d keys", len(ended), len(due))
	}
	for arn, st := range ended {
		if st != types.ExecutionStatusSucceeded {
			d, _ := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
			t.Errorf("%s: %s %s %s", arn, st, aws.ToString(d.Error), aws.ToString(d.Cause))
			continue
		}
		checkHistory(t, ctx, client, arn)
	}
	srv.kill9()
	checkKeys(t, db, due)
	t.Logf("%d lifecycles (%d running at the first kill), %d kills: all SUCCEEDED, histories consistent, keys rotated", len(due), interrupted, kills)
}

func checkHistory(t *testing.T, ctx context.Context, c *sfn.Client, arn string) {
	t.Helper()
	var evs []types.HistoryEvent
	p := sfn.NewGetExecutionHistoryPaginator(c, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 100})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, page.Events...)
	}
	starts, ends := 0, 0
	for i, e := range evs {
		if e.Id != int64(i+1) || e.PreviousEventId >= e.Id || e.PreviousEventId < 0 {
			t.Fatalf("%s: event %d has id %d and previous %d", arn, i+1, e.Id, e.PreviousEventId)
		}
		if i > 0 && e.Timestamp.Before(*evs[i-1].Timestamp) {
			t.Errorf("%s: event %d goes back in time", arn, e.Id)
		}
		switch e.Type {
		case types.HistoryEventTypeExecutionStarted:
			starts++
		case types.HistoryEventTypeExecutionSucceeded, types.HistoryEventTypeExecutionFailed, types.HistoryEventTypeExecutionAborted:
			ends++
		}
	}
	if starts != 1 || ends != 1 {
		t.Errorf("%s: %d starts and %d ends in %d events", arn, starts, ends, len(evs))
	}
}

func openSandbox(t *testing.T, path string) *sandbox.Sandbox {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sb, err := sandbox.New(sandbox.Options{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func dueKeys(t *testing.T, db string) []tasks.KeyReport {
	t.Helper()
	sb := openSandbox(t, db)
	inv := &tasks.Inventory{Accounts: local.SandboxAccounts{Sandbox: sb}, Now: time.Now}
	out, err := inv.Handle(context.Background(), tasks.InventoryInput{Organization: true, MaxDue: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var due []tasks.KeyReport
	for _, k := range out.Due {
		if k.Action == "rotate" {
			due = append(due, k)
		}
	}
	return due
}

func checkKeys(t *testing.T, db string, due []tasks.KeyReport) {
	t.Helper()
	sb := openSandbox(t, db)
	for _, k := range due {
		out, err := sb.IAM(k.AccountID).ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(k.UserName)})
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for _, key := range out.AccessKeyMetadata {
			if aws.ToString(key.AccessKeyId) == k.AccessKeyID {
				t.Errorf("%s/%s: the old key %s is still there (%s)", k.AccountID, k.UserName, k.AccessKeyID, key.Status)
			}
			if key.Status == iamtypes.StatusTypeActive {
				active++
			}
		}
		if active != 1 || len(out.AccessKeyMetadata) > 2 {
			t.Errorf("%s/%s: %d keys, %d active", k.AccountID, k.UserName, len(out.AccessKeyMetadata), active)
		}
	}
}
