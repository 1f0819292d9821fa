package tasks

// The test harness: one handler table, two backends. Every case runs against
// the embedded sandbox and against moto_server through the real SDK clients
// (and AWSAccounts' real AssumeRole path), each case in a fresh account.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/keyflow/keyflow/sandbox"
)

// ---- moto_server, one per test binary ----

var moto struct {
	once sync.Once
	cmd  *exec.Cmd
	url  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if moto.cmd != nil && moto.cmd.Process != nil {
		// moto_server was started in its own process group: stop it and
		// its children by the group id, which is its own pid.
		_ = syscall.Kill(-moto.cmd.Process.Pid, syscall.SIGTERM)
		_ = moto.cmd.Wait()
	}
	os.Exit(code)
}

// motoURL starts moto_server on a free port the first time it is needed, or
// skips the test saying why it cannot.
func motoURL(t *testing.T) string {
	t.Helper()
	moto.once.Do(func() {
		bin, err := exec.LookPath("moto_server")
		if err != nil {
			moto.err = fmt.Errorf("moto_server not on PATH (pip install 'moto[server]'): %v", err)
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			moto.err = err
			return
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			moto.err = err
			return
		}
		moto.cmd = cmd
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := http.Get(url + "/moto-api/")
			if err == nil {
				resp.Body.Close()
				moto.url = url
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		moto.err = errors.New("moto_server did not answer within 30s")
	})
	if moto.err != nil {
		t.Skipf("moto run skipped: %v", moto.err)
	}
	return moto.url
}

// ---- the two backends ----

type adminIAM interface {
	IAMAPI
	CreateUser(ctx context.Context, in *iam.CreateUserInput, optFns ...func(*iam.Options)) (*iam.CreateUserOutput, error)
	CreateGroup(ctx context.Context, in *iam.CreateGroupInput, optFns ...func(*iam.Options)) (*iam.CreateGroupOutput, error)
	AddUserToGroup(ctx context.Context, in *iam.AddUserToGroupInput, optFns ...func(*iam.Options)) (*iam.AddUserToGroupOutput, error)
	AttachUserPolicy(ctx context.Context, in *iam.AttachUserPolicyInput, optFns ...func(*iam.Options)) (*iam.AttachUserPolicyOutput, error)
	GetUserPolicy(ctx context.Context, in *iam.GetUserPolicyInput, optFns ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error)
}

type adminSM interface {
	SecretsManagerAPI
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	GetResourcePolicy(ctx context.Context, in *secretsmanager.GetResourcePolicyInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetResourcePolicyOutput, error)
}

type adminSNS interface {
	SNSAPI
	CreateTopic(ctx context.Context, in *sns.CreateTopicInput, optFns ...func(*sns.Options)) (*sns.CreateTopicOutput, error)
}

// fx is one test case's world: a backend, a fresh account in it, a clock,
// a log, and the secrets the fixtures saw (for the leak checks).
type fx struct {
	t        *testing.T
	backend  string
	acct     string
	accounts Accounts // what handlers get (with fault injection)
	faults   *faults
	iam      func(acct string) adminIAM
	sm       func(acct string) adminSM
	sns      func(acct string) adminSNS
	now      func() time.Time
	advance  func(time.Duration)
	// useKey makes the key "used now" as AWS would record it.
	useKey func(id, secret string)
	// outbox is every published message and sent email (sandbox only;
	// moto: nil).
	outbox  func() []string
	sb      *sandbox.Sandbox
	logBuf  *bytes.Buffer
	log     *slog.Logger
	secrets []string
	// running are the names of the MFA executions Hygiene finds running.
	running []string
}

type backend struct {
	name string
	mk   func(t *testing.T) *fx
}

func backends() []backend {
	return []backend{{"sandbox", newSandboxFx}, {"moto", newMotoFx}}
}

var t0 = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

func newSandboxFx(t *testing.T) *fx {
	var mu sync.Mutex
	now := t0
	clockFn := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sb, err := sandbox.New(sandbox.Options{Now: clockFn})
	if err != nil {
		t.Fatal(err)
	}
	acct := "222233334444"
	if err := sb.AddAccount(acct, "test"); err != nil {
		t.Fatal(err)
	}
	f := &fx{
		t: t, backend: "sandbox", acct: acct, sb: sb, now: clockFn,
		advance: func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() },
		iam:     func(a string) adminIAM { return sb.IAM(a) },
		sm:      func(a string) adminSM { return sb.SecretsManager(a) },
		sns:     func(a string) adminSNS { return sb.SNS(a) },
	}
	f.useKey = func(id, _ string) {
		if err := sb.RecordKeyUse(id, "s3", clockFn()); err != nil {
			t.Fatal(err)
		}
	}
	// The outbox is everything sent: SNS messages and SES email.
	f.outbox = func() []string {
		var out []string
		for _, m := range sb.Outbox() {
			b, _ := json.Marshal(m)
			out = append(out, string(b))
		}
		for _, m := range sb.Mail() {
			b, _ := json.Marshal(m)
			out = append(out, string(b))
		}
		return out
	}
	f.finish(sandboxAccounts{sb})
	return f
}

// sandboxAccounts is the few lines the CLI glue writes: the sandbox's
// clients for an account.
type sandboxAccounts struct{ sb *sandbox.Sandbox }

func (s sandboxAccounts) IAM(_ context.Context, a string) (IAMAPI, error) { return s.sb.IAM(a), nil }
func (s sandboxAccounts) SecretsManager(_ context.Context, a string) (SecretsManagerAPI, error) {
	return s.sb.SecretsManager(a), nil
}
func (s sandboxAccounts) SNS(_ context.Context, a string) (SNSAPI, error) { return s.sb.SNS(a), nil }
func (s sandboxAccounts) Organizations(context.Context) (OrganizationsAPI, error) {
	return s.sb.Organizations(), nil
}

const motoHome = "123456789012" // moto's default account

func motoConfig(t *testing.T, url string) aws.Config {
	cfg, err := config.LoadDefaultConfig(t.Context(),
		config.WithRegion("us-east-1"),
		config.WithBaseEndpoint(url),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		// The SDK retries moto's occasional dropped keep-alive connection.
		config.WithRetryMaxAttempts(3),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newMotoFx(t *testing.T) *fx {
	url := motoURL(t)
	cfg := motoConfig(t, url)
	real := &AWSAccounts{Config: cfg, Home: motoHome}
	// A fresh account per case: moto keeps one state per account id, and
	// AssumeRole into it (the real AWSAccounts path) lands our calls there.
	acct := fmt.Sprintf("%012d", 100000000000+rand.Int64N(800000000000))
	var mu sync.Mutex
	offset := time.Duration(0)
	cfgOf := func(a string) aws.Config {
		c, err := real.config(t.Context(), a)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f := &fx{
		t: t, backend: "moto", acct: acct,
		// moto stamps keys with the wall clock; the handlers' clock is the
		// wall clock moved by advance.
		now:     func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().UTC().Add(offset) },
		advance: func(d time.Duration) { mu.Lock(); offset += d; mu.Unlock() },
		iam:     func(a string) adminIAM { return iam.NewFromConfig(cfgOf(a)) },
		sm:      func(a string) adminSM { return secretsmanager.NewFromConfig(cfgOf(a)) },
		sns:     func(a string) adminSNS { return sns.NewFromConfig(cfgOf(a)) },
	}
	f.useKey = func(id, secret string) {
		// moto records last use when a request signed with the key arrives.
		c := cfg.Copy()
		c.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
		if _, err := sts.NewFromConfig(c).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatal(err)
		}
	}
	f.finish(real)
	return f
}

func (f *fx) finish(inner Accounts) {
	f.logBuf = &bytes.Buffer{}
	f.log = slog.New(slog.NewJSONHandler(&lockedWriter{w: f.logBuf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.faults = &faults{}
	f.accounts = faultyAccounts{inner: inner, f: f.faults}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ---- fixtures ----

type userSpec struct {
	groups []string
	tags   map[string]string
	keys   int
	// inactive makes the first n keys Inactive.
	inactive int
	policies []string // inline policy names
}

// user creates an IAM user and returns its key ids, oldest first.
func (f *fx) user(name string, s userSpec) []string {
	f.t.Helper()
	ctx := f.t.Context()
	c := f.iam(f.acct)
	var tags []iamtypes.Tag
	for k, v := range s.tags {
		tags = append(tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if _, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Tags: tags}); err != nil {
		f.t.Fatal(err)
	}
	for _, g := range s.groups {
		_, err := c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(g)})
		if err != nil && apiCode(err) != "EntityAlreadyExists" {
			f.t.Fatal(err)
		}
		if _, err := c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(g), UserName: aws.String(name)}); err != nil {
			f.t.Fatal(err)
		}
	}
	for _, p := range s.policies {
		if _, err := c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(p),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)}); err != nil {
			f.t.Fatal(err)
		}
	}
	var ids []string
	for i := 0; i < s.keys; i++ {
		id, _ := f.key(name)
		if i < s.inactive {
			f.setStatus(name, id, iamtypes.StatusTypeInactive)
		}
		ids = append(ids, id)
	}
	return ids
}

// key creates an access key outside the handlers, remembering its secret
// for the leak checks.
func (f *fx) key(user string) (string, string) {
	f.t.Helper()
	out, err := f.iam(f.acct).CreateAccessKey(f.t.Context(), &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	if err != nil {
		f.t.Fatal(err)
	}
	secret := aws.ToString(out.AccessKey.SecretAccessKey)
	f.secrets = append(f.secrets, secret)
	return aws.ToString(out.AccessKey.AccessKeyId), secret
}

func (f *fx) setStatus(user, id string, st iamtypes.StatusType) {
	f.t.Helper()
	if _, err := f.iam(f.acct).UpdateAccessKey(f.t.Context(), &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(id), Status: st}); err != nil {
		f.t.Fatal(err)
	}
}

// keys is the user's keys as "ID:Status", sorted by id.
func (f *fx) keys(user string) map[string]string {
	f.t.Helper()
	ks, err := listKeys(f.t.Context(), f.iam(f.acct), f.acct, user)
	if err != nil {
		f.t.Fatal(err)
	}
	m := map[string]string{}
	for _, k := range ks {
		m[aws.ToString(k.AccessKeyId)] = string(k.Status)
	}
	return m
}

func (f *fx) tags(user string) map[string]string {
	f.t.Helper()
	m, err := userTags(f.t.Context(), f.iam(f.acct), f.acct, user)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fx) inlinePolicies(user string) []string {
	f.t.Helper()
	out, err := f.iam(f.acct).ListUserPolicies(f.t.Context(), &iam.ListUserPoliciesInput{UserName: aws.String(user)})
	if err != nil {
		f.t.Fatal(err)
	}
	sort.Strings(out.PolicyNames)
	return out.PolicyNames
}

// topic creates the notification topic in the case's account.
func (f *fx) topic() string {
	f.t.Helper()
	out, err := f.sns(f.acct).CreateTopic(f.t.Context(), &sns.CreateTopicInput{Name: aws.String("keyflow-notifications")})
	if err != nil {
		f.t.Fatal(err)
	}
	return aws.ToString(out.TopicArn)
}

// state is a normalized picture of a user, equal for two runs that ended in
// the same state although the new keys' ids differ: the original keys by id,
// the new ones by status only, tags, inline policies, and whether the secret
// holds an existing active key.
func (f *fx) state(user string, original []string) string {
	f.t.Helper()
	ks := f.keys(user)
	var parts []string
	for id, st := range ks {
		if i := slices.Index(original, id); i >= 0 {
			parts = append(parts, fmt.Sprintf("orig%d=%s", i, st))
		} else {
			parts = append(parts, "new="+st)
		}
	}
	sort.Strings(parts)
	tagKeys := []string{}
	for k := range f.tags(user) {
		tagKeys = append(tagKeys, k)
	}
	sort.Strings(tagKeys)
	secret := "no-secret"
	if d, err := describeSecret(f.t.Context(), f.sm(f.acct), DefaultSecretName(f.acct, user)); err != nil {
		f.t.Fatal(err)
	} else if d != nil {
		secret = "secret-stale"
		for id, st := range ks {
			if isCurrent(d, id) && st == "Active" {
				secret = "secret-current"
			}
		}
	}
	return fmt.Sprintf("keys=%v tags=%v policies=%v %s", parts, tagKeys, f.inlinePolicies(user), secret)
}

// ---- running handlers as Lambda does ----

// invoke runs a handler through aws-lambda-go: JSON in, JSON out, and the
// error whose type name Lambda reports.
func invoke[In, Out any](t *testing.T, h func(context.Context, In) (*Out, error), in In) (*Out, error) {
	t.Helper()
	payload, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := lambda.NewHandler(h).Invoke(t.Context(), payload)
	if err != nil {
		return nil, err
	}
	var out Out
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("output %s: %v", raw, err)
	}
	return &out, nil
}

// lambdaErrorType is the error type aws-lambda-go reports (lambda/errors.go).
func lambdaErrorType(err error) string {
	if err == nil {
		return ""
	}
	rt := reflect.TypeOf(err)
	if rt.Kind() == reflect.Pointer {
		return rt.Elem().Name()
	}
	return rt.Name()
}

// tcase is one row of a handler table.
type tcase[In, Out any] struct {
	name    string
	setup   func(f *fx) In
	wantErr string // the Lambda error type, "" for success
	check   func(f *fx, in In, out *Out)
	// sandboxOnly names why the case cannot run on moto (time travel for
	// key ages, outbox, a known moto gap).
	sandboxOnly string
	// retry runs the handler a second time with the same input and checks
	// again: every handler must be idempotent.
	retry bool
}

func runTable[In, Out any](t *testing.T, mk func(f *fx) func(context.Context, In) (*Out, error), cases []tcase[In, Out]) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					if b.name == "moto" && c.sandboxOnly != "" {
						t.Skip("sandbox only: " + c.sandboxOnly)
					}
					f := b.mk(t)
					in := c.setup(f)
					runs := 1
					if c.retry {
						runs = 2
					}
					for i := 0; i < runs; i++ {
						out, err := invoke(t, mk(f), in)
						if got := lambdaErrorType(err); got != c.wantErr {
							t.Fatalf("run %d: error type %q (%v), want %q", i+1, got, err, c.wantErr)
						}
						if c.check != nil {
							c.check(f, in, out)
						}
						f.noLeaks(out2json(out), fmt.Sprint(err))
					}
				})
			}
		})
	}
}

func out2json(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// noLeaks fails when any secret the fixture saw, or anything shaped like a
// secret access key, appears in extra, the log or the outbox.
func (f *fx) noLeaks(extra ...string) {
	f.t.Helper()
	hay := append([]string{f.logBuf.String()}, extra...)
	if f.outbox != nil {
		hay = append(hay, f.outbox()...)
	}
	for _, h := range hay {
		for _, s := range f.secrets {
			if strings.Contains(h, s) {
				f.t.Fatalf("a secret access key leaked into %.200q", h)
			}
		}
		if LooksLikeSecret(h) {
			f.t.Fatalf("something shaped like a secret access key in %.300q", h)
		}
	}
}

// ---- fault injection ----

// faults makes chosen calls fail, before or after they take effect (a lost
// response), to prove a retry finishes the job.
type faults struct {
	mu    sync.Mutex
	calls []string // every call made, in order
	plan  map[int]fault
	// opFault is the operation failOp targets (plan[-1]).
	opFault string
}

type fault struct {
	after bool
	err   error
}

var errThrottle = &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}

// failAt makes the n-th call (0-based, over all calls) fail.
func (fs *faults) failAt(n int, ft fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.plan == nil {
		fs.plan = map[int]fault{}
	}
	fs.plan[n] = ft
}

// failOp makes the next call of op fail.
func (fs *faults) failOp(op string, ft fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.plan == nil {
		fs.plan = map[int]fault{}
	}
	fs.plan[-1] = ft
	fs.opFault = op
}

func (fs *faults) reset() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.calls, fs.plan, fs.opFault = nil, nil, ""
}

func (fs *faults) take(op string) (fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := len(fs.calls)
	fs.calls = append(fs.calls, op)
	if ft, ok := fs.plan[n]; ok {
		delete(fs.plan, n)
		return ft, true
	}
	if fs.opFault == op {
		ft := fs.plan[-1]
		delete(fs.plan, -1)
		fs.opFault = ""
		return ft, true
	}
	return fault{}, false
}

func call[T any](fs *faults, op string, fn func() (T, error)) (T, error) {
	ft, ok := fs.take(op)
	var zero T
	if ok && !ft.after {
		return zero, ft.err
	}
	out, err := fn()
	if ok && err == nil {
		return zero, ft.err
	}
	return out, err
}
