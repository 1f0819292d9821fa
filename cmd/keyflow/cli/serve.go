package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/api"
	"github.com/keyflow/keyflow/engine/service"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

// The local credentials `keyflow serve` accepts unless told others: the
// API binds to loopback, and these only keep out requests that were not
// meant for it.
const (
	defaultLocalAccessKeyID = "keyflow"
	defaultLocalSecret      = "keyflow-local"
)

type serveFlags struct {
	addr, db    string
	timeScale   float64
	accessKeyID string
	secret      string
	allowRemote bool
	roleArn     string
	unloadAfter time.Duration
}

func newServeCmd() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the Step Functions API on the durable local engine (127.0.0.1:8083)",
		Long: `serve runs keyflow's workflows on the durable engine, with the handlers on
the sandbox account, and answers the Step Functions JSON API, so the sfn
client of any SDK and "aws stepfunctions --endpoint-url" work against it.
Executions, timers, task tokens and histories live in the store (--db):
kill the process at any moment and start it again, and every execution
carries on where it was. The clock is real; --time-scale N runs it N times
faster (a 90-day lifecycle in 90 days/N). An execution with nothing to do
for longer than --unload-after (real time: a Wait, an approval) is kept in
the store only, and taken back when it is due or its token is answered,
so a process keeps a hundred thousand waiting executions in a few
megabytes. One process runs a store's executions: serve holds an
exclusive lock on <db>.lock while it runs, and a keyflow start on the same
store is refused (start --endpoint speaks to this server instead).
Requests must be signed with the
local credentials (--access-key-id, --secret-access-key, or
KEYFLOW_ACCESS_KEY_ID and KEYFLOW_SECRET_ACCESS_KEY).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd, f) },
	}
	cmd.Flags().StringVar(&f.addr, "addr", "127.0.0.1:8083", "the address to listen on")
	cmd.Flags().StringVar(&f.db, "db", defaultDB, "the local store")
	cmd.Flags().Float64Var(&f.timeScale, "time-scale", 1, "run the clock this many times faster than real time")
	cmd.Flags().StringVar(&f.accessKeyID, "access-key-id", envOr("KEYFLOW_ACCESS_KEY_ID", defaultLocalAccessKeyID), "the access key id requests must be signed with")
	cmd.Flags().StringVar(&f.secret, "secret-access-key", envOr("KEYFLOW_SECRET_ACCESS_KEY", defaultLocalSecret), "the secret they must be signed with")
	cmd.Flags().BoolVar(&f.allowRemote, "allow-remote", false, "listen on an address other than loopback")
	cmd.Flags().DurationVar(&f.unloadAfter, "unload-after", service.DefaultUnloadAfter, "keep an execution that has nothing to do for longer than this in the store only (negative: keep all in memory)")
	cmd.Flags().StringVar(&f.roleArn, "role-arn", localRoleArn, "the role the built-in workflows are registered with")
	return cmd
}

// serveNote is what a refused keyflow start reads in the store's lock.
func serveNote(addr string) string {
	return fmt.Sprintf("keyflow serve, pid %d, on http://%s", os.Getpid(), addr)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func serve(cmd *cobra.Command, f *serveFlags) error {
	if f.timeScale <= 0 {
		return invalid("serve: --time-scale must be positive, got %v", f.timeScale)
	}
	if f.unloadAfter == 0 {
		return invalid("serve: --unload-after must not be 0; a negative value keeps every execution in memory")
	}
	host, _, err := net.SplitHostPort(f.addr)
	if err != nil {
		return invalid("serve: --addr %q: %v", f.addr, err)
	}
	if ip := net.ParseIP(host); !f.allowRemote && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return invalid("serve: %q is not a loopback address; pass --allow-remote to listen there", f.addr)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Held until serve returns (the kernel drops it if the process dies):
	// a keyflow start on the same store is refused meanwhile and told to
	// use this process's --endpoint.
	lock, err := lockStore(f.db, serveNote(f.addr))
	if err != nil {
		return fmt.Errorf("serve: %s: %w", f.db, err)
	}
	defer lock.release()

	var clock engine.Clock = engine.NewRealClock()
	if f.timeScale != 1 {
		clock = engine.NewScaledClock(f.timeScale)
	}
	db, err := openDB(f.db)
	if err != nil {
		return err
	}
	defer db.Close()
	tc := &local.TaskClock{Fallback: clock.Now}
	sb, err := sandbox.New(sandbox.Options{Now: tc.Now, DB: db})
	if err != nil {
		return fmt.Errorf("serve: opening the sandbox in %s: %w", f.db, err)
	}
	var svc *service.Local
	// opened is svc once Open has returned: executions it resumes may run
	// handlers before that.
	var opened atomic.Pointer[service.Local]
	_, err = local.New(local.Options{Sandbox: sb, Clock: tc, EngineClock: clock,
		// The hygiene inventory asks the store which MFA enforcements
		// run: the engine alone does not know the dormant ones.
		Executions: local.ExecutionsFunc(func(ctx context.Context, in *sfn.ListExecutionsInput, o ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
			s := opened.Load()
			if s == nil {
				return nil, &tasks.Throttled{Op: "ListExecutions", Err: errors.New("the local service is still opening")}
			}
			return s.ListExecutions(ctx, in, o...)
		}),
		OpenEngine: func(eo engine.Options) (*engine.Engine, error) {
			var err error
			svc, err = service.Open(ctx, service.Options{DB: db, Engine: eo, UnloadAfter: f.unloadAfter})
			if err != nil {
				return nil, err
			}
			opened.Store(svc)
			return svc.Engine(), nil
		}})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer svc.Close()
	if err := registerWorkflows(ctx, svc, f.roleArn); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	h, err := api.New(api.Options{Service: svc, Credentials: aws.Credentials{AccessKeyID: f.accessKeyID, SecretAccessKey: f.secret}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if a := ln.Addr().String(); a != f.addr {
		lock.note(serveNote(a)) // port 0: the port the kernel chose
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(cmd.ErrOrStderr(), "keyflow serve: the Step Functions API on http://%s (store %s, clock x%v)\n", ln.Addr(), f.db, f.timeScale)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	fmt.Fprintln(cmd.ErrOrStderr(), "keyflow serve: stopped; running executions carry on at the next start")
	return nil
}

// registerWorkflows makes keyflow's workflows state machines of the store,
// as the template does on AWS: created, or updated when their definition
// changed.
func registerWorkflows(ctx context.Context, svc service.API, roleArn string) error {
	for _, w := range statemachines.Names() {
		if err := putWorkflow(ctx, svc, w, statemachines.StateMachineName(w), statemachines.Options{}, roleArn); err != nil {
			return err
		}
	}
	return nil
}

// putWorkflow creates the state machine name from workflow, or updates it.
func putWorkflow(ctx context.Context, api service.API, workflow, name string, o statemachines.Options, roleArn string) error {
	o.Resources = statemachines.Local(localRegion, localAccount)
	def, err := statemachines.Build(workflow, o)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(def)
	if err != nil {
		return err
	}
	_, err = api.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String(name), Definition: aws.String(string(raw)), RoleArn: aws.String(roleArn)})
	var exists *types.StateMachineAlreadyExists
	if errors.As(err, &exists) {
		arn := fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", localRegion, localAccount, name)
		_, err = api.UpdateStateMachine(ctx, &sfn.UpdateStateMachineInput{StateMachineArn: aws.String(arn), Definition: aws.String(string(raw)), RoleArn: aws.String(roleArn)})
	}
	if err != nil {
		return fmt.Errorf("registering %s: %w", name, err)
	}
	return nil
}
