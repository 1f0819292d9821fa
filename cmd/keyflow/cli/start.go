package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/service"
	"github.com/keyflow/keyflow/report"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/tasks"
)

// localRoleArn is the role keyflow's workflows are registered with in the
// local store, as keyflow serve registers them by default.
const localRoleArn = "arn:aws:iam::123456789012:role/keyflow-local"

// The local store's region and account, in every ARN of its executions.
const localRegion, localAccount = "us-east-1", "123456789012"

// dryRunSuffix names the state machine a local --dry-run starts on: the
// workflow built with DryRun, kept apart so that keyflow-quarantine and
// the others stay exactly the definitions keyflow serve runs.
const dryRunSuffix = "-dry-run"

type startFlags struct {
	api                                            apiFlags
	input, backend, name, approve, approver, topic string
	stateMachineArn                                string
	dryRun, wait, resumeRunning                    bool
}

func newStartCmd() *cobra.Command {
	var f startFlags
	cmd := &cobra.Command{
		Use:   "start NAME",
		Short: "Start a workflow (" + strings.Join(statemachines.Names(), ", ") + ") on the local store, a keyflow serve or AWS",
		Long: `start starts one keyflow workflow through the Step Functions API, like the
other execution commands, on one of three sides:

  - the local store (--db, the default): the durable service runs it in
    this process, on the virtual clock (a 90-day lifecycle ends at once,
    its history dated as on AWS), with the handlers on the sandbox account
    that keyflow sandbox seed fills. start waits for the end and prints one
    JSON object as keyflow run does; the execution stays in the store, so
    keyflow executions, history and audit show it. An inventory also
    waits for the lifecycles it starts. start takes the store's lock, so
    it is refused while keyflow serve runs the store: use --endpoint then.
    It also refuses when executions of an earlier run are still RUNNING
    in the store, since the virtual clock would fast-forward them (their
    waits end, their approvals time out to the default decision); pass
    --resume-running to let it, or finish them with keyflow serve.
  - a running keyflow serve (--endpoint URL) or AWS Step Functions (--aws,
    with the SDK's usual profile, region and AWS_ENDPOINT_URL settings):
    StartExecution on the workflow's state machine (keyflow-NAME, found
    with ListStateMachines, or --state-machine-arn), printing the
    executionArn and startDate; with --wait it polls until the end and
    prints the same result object. The server runs the handlers and its
    own clock.

Approvals (quarantine, release) on the local store are answered with
--approve approve|reject as the identity that sts:GetCallerIdentity reports
for --approver's sandbox account (default: the management account); the
answer carries decision, approver, approverArn, reason and decidedAt, as
keyflow approve puts them. Without --approve nobody answers and the
workflow's default decision applies at its timeout. On a server, answer
with keyflow approve|reject EXECUTION_ARN.

--backend aws keeps the handlers-on-AWS run: the engine in this process on
the virtual clock, nothing recorded in the store, every handler on the
default AWS SDK configuration (AWS_ENDPOINT_URL points them at moto or
LocalStack), notifications to --topic.

Exit 0 when the execution succeeded (or, without --wait on a server, was
started), 1 when it failed, timed out or was aborted, 2 when the command
line or the input is invalid. Progress (the current state and the
workflow's clock) goes to stderr when it is a terminal.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: statemachines.Names(),
		RunE:      func(cmd *cobra.Command, args []string) error { return runStart(cmd, args[0], &f) },
	}
	addAPIFlags(cmd, &f.api)
	fl := cmd.Flags()
	fl.StringVar(&f.input, "input", "{}", "the execution's input: JSON, a file, or - for stdin")
	fl.StringVar(&f.backend, "backend", "sandbox", "where the handlers run without --endpoint/--aws: sandbox (the durable local service) or aws (in-process engine, handlers on AWS)")
	fl.StringVar(&f.name, "name", "", "the execution's name (lifecycle: derived from the key by default)")
	fl.StringVar(&f.approve, "approve", "", "answer approvals (local store): approve or reject")
	fl.StringVar(&f.approver, "approver", "", "the sandbox account whose identity approves (default: the management account)")
	fl.StringVar(&f.topic, "topic", "", "SNS topic ARN for notifications (--backend aws; sandbox: the seeded topic)")
	fl.StringVar(&f.stateMachineArn, "state-machine-arn", "", "the state machine to start (--endpoint, --aws; default: keyflow-NAME by name)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "report what each handler would do and change nothing")
	fl.BoolVar(&f.wait, "wait", false, "--endpoint, --aws: wait for the end and print the result (the local store always waits)")
	fl.BoolVar(&f.resumeRunning, "resume-running", false, "local store: run the store's RUNNING executions too, on the virtual clock")
	return cmd
}

// startRequest is a checked command line: what to start, with which input.
type startRequest struct {
	workflow string
	input    any
	name     string
	decision statemachines.Decision
}

func runStart(cmd *cobra.Command, workflow string, f *startFlags) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := checkStart(workflow, f, cmd.InOrStdin())
	if err != nil {
		return err
	}
	switch {
	case f.api.aws || f.api.endpoint != "":
		return startRemote(ctx, cmd, f, req)
	case f.backend == "aws":
		return startInProcessAWS(ctx, cmd, f, req)
	}
	return startLocal(ctx, cmd, f, req)
}

// checkStart refuses a bad command line before anything is opened or
// started: each refusal is ExitInvalid.
func checkStart(workflow string, f *startFlags, stdin io.Reader) (*startRequest, error) {
	if _, err := statemachines.Build(workflow, statemachines.Options{}); err != nil {
		return nil, invalid("start: %v", err)
	}
	input, err := readInput(f.input, stdin)
	if err != nil {
		return nil, invalid("start: %v", err)
	}
	req := &startRequest{workflow: workflow, input: input, name: startName(workflow, f.name, input)}
	switch f.approve {
	case "":
	case "approve", "reject":
		req.decision = statemachines.Decision(f.approve)
	default:
		return nil, invalid("start: --approve must be approve or reject, got %q", f.approve)
	}
	if f.backend != "sandbox" && f.backend != "aws" {
		return nil, invalid("start: --backend must be sandbox or aws, got %q", f.backend)
	}
	remote := f.api.aws || f.api.endpoint != ""
	switch {
	case f.api.aws && f.api.endpoint != "":
		return nil, invalid("start: --aws and --endpoint exclude each other")
	case remote && f.backend == "aws":
		return nil, invalid("start: --backend aws runs the handlers in this process; with --endpoint or --aws the server runs them")
	case remote && req.decision != "":
		return nil, invalid("start: --approve answers in this process; on a server answer with keyflow approve|reject EXECUTION_ARN")
	case remote && f.topic != "":
		return nil, invalid("start: --topic is for --backend aws; a server has its own topic")
	case remote && f.resumeRunning:
		return nil, invalid("start: --resume-running is for the local store; a server runs its executions itself")
	case !remote && f.stateMachineArn != "":
		return nil, invalid("start: --state-machine-arn needs --endpoint or --aws")
	case f.backend == "aws" && f.topic == "":
		return nil, invalid("start: --backend aws needs --topic (the notifications' SNS topic ARN)")
	case f.backend == "aws" && f.resumeRunning:
		return nil, invalid("start: --resume-running is for the local store; --backend aws records nothing there")
	}
	if f.stateMachineArn != "" && (!strings.HasPrefix(f.stateMachineArn, "arn:") || !strings.Contains(f.stateMachineArn, ":stateMachine:")) {
		return nil, invalid("start: --state-machine-arn %q is not a state machine ARN", truncateArg(f.stateMachineArn))
	}
	if remote && f.dryRun {
		// On a server the definition is the deployed one: a dry run is
		// asked for in the input, which every workflow but quarantine
		// merges over its defaults.
		if workflow == statemachines.NameQuarantine {
			return nil, invalid("start: quarantine's dry run is fixed in its definition; on a server deploy a dry-run state machine and pass --state-machine-arn")
		}
		obj, ok := input.(map[string]any)
		if !ok {
			return nil, invalid("start: --dry-run needs an object input")
		}
		obj["dryRun"] = true
	}
	return req, nil
}

// startName is --name, or for a lifecycle the name the inventory
// gives the key's execution, so that a key is never rotated twice at once.
func startName(workflow, name string, input any) string {
	if name != "" || workflow != statemachines.NameLifecycle {
		return name
	}
	in, _ := input.(map[string]any)
	a, _ := in["accountId"].(string)
	u, _ := in["userName"].(string)
	k, _ := in["accessKeyId"].(string)
	if a != "" && u != "" && k != "" {
		return statemachines.LifecycleExecutionName(a, u, k)
	}
	return ""
}

// startRemote starts on keyflow serve or AWS through the sfn client.
func startRemote(ctx context.Context, cmd *cobra.Command, f *startFlags, req *startRequest) error {
	return withAPI(cmd, &f.api, func(ctx context.Context, api service.API) error {
		arn := f.stateMachineArn
		if arn == "" {
			var err error
			if arn, err = stateMachineArn(ctx, api, statemachines.StateMachineName(req.workflow)); err != nil {
				return fmt.Errorf("start: %w", err)
			}
		}
		in, err := data.Marshal(req.input)
		if err != nil {
			return invalid("start: encoding the input: %v", err)
		}
		start := &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Input: aws.String(string(in))}
		if req.name != "" {
			start.Name = aws.String(req.name)
		}
		out, err := api.StartExecution(ctx, start)
		if err != nil {
			return fmt.Errorf("start: %w", err)
		}
		if !f.wait {
			return writeJSON(cmd.OutOrStdout(), &sfn.StartExecutionOutput{ExecutionArn: out.ExecutionArn, StartDate: out.StartDate})
		}
		// stdout keeps its one result object; where it runs goes to stderr.
		fmt.Fprintf(cmd.ErrOrStderr(), "keyflow: started %s\n", aws.ToString(out.ExecutionArn))
		desc, err := waitForEnd(ctx, api, aws.ToString(out.ExecutionArn), nil, newRunProgress(cmd.ErrOrStderr()))
		if err != nil {
			return fmt.Errorf("start: waiting for %s: %w", aws.ToString(out.ExecutionArn), err)
		}
		return printDescribed(cmd.OutOrStdout(), desc)
	})
}

// startLocal runs the execution on the durable service over the local
// store, as keyflow serve would but on the virtual clock, holding the
// store's lock so that no other process runs its executions meanwhile.
func startLocal(ctx context.Context, cmd *cobra.Command, f *startFlags, req *startRequest) error {
	path := f.api.db
	lock, err := lockStore(path, fmt.Sprintf("keyflow start %s, pid %d", req.workflow, os.Getpid()))
	if errors.Is(err, errStoreBusy) {
		return &exitError{code: ExitFailed, err: fmt.Errorf("start: %s: %w; while keyflow serve runs this store, start through it: keyflow start %s --endpoint http://127.0.0.1:8083 (its --addr)", path, err, req.workflow)}
	}
	if err != nil {
		return fmt.Errorf("start: %s: %w", path, err)
	}
	defer lock.release()
	if !f.resumeRunning {
		if err := refuseRunning(ctx, path); err != nil {
			return err
		}
	}
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Now().UTC().Truncate(time.Second)
	clock := &local.TaskClock{Fallback: func() time.Time { return now }}
	sb, err := sandbox.New(sandbox.Options{Now: clock.Now, DB: db})
	if err != nil {
		return fmt.Errorf("start: opening the sandbox in %s: %w", path, err)
	}
	approverAccount := f.approver
	if approverAccount == "" {
		approverAccount = sb.ManagementAccount()
	}
	smName := statemachines.StateMachineName(req.workflow)
	if f.dryRun {
		smName += dryRunSuffix
	}
	// The name is fixed before the start, so that the approval hook,
	// which may run before StartExecution returns, knows its execution.
	name := req.name
	if name == "" {
		name = uuid.NewString()
	}
	smArn := fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", localRegion, localAccount, smName)
	execArn := fmt.Sprintf("arn:aws:states:%s:%s:execution:%s:%s", localRegion, localAccount, smName, name)

	var svc *service.Local
	track := newRunTracker()
	o := local.Options{Sandbox: sb, Clock: clock, EngineClock: engine.NewVirtualClock(now), Region: localRegion, AccountID: localAccount,
		OpenEngine: func(eo engine.Options) (*engine.Engine, error) {
			eo.OnExecutionStart = track.started(eo.OnExecutionStart)
			var err error
			if svc, err = service.Open(ctx, service.Options{DB: db, Engine: eo}); err != nil {
				return nil, err
			}
			return svc.Engine(), nil
		},
		OnExecutionEnd: track.ended,
	}
	var answer struct {
		sync.Mutex
		err error
	}
	if req.decision != "" {
		o.Approve = func(a local.Approval) (statemachines.Decision, string) {
			// Only this run's approval: resumed executions of earlier
			// runs are someone else's decision.
			if a.ExecutionArn == execArn {
				err := answerApproval(ctx, svc, sb, a, req.decision, approverAccount)
				answer.Lock()
				answer.err = err
				answer.Unlock()
			}
			return "", "" // answered through the API, not by the backend
		}
	}
	b, err := local.New(o)
	if svc != nil {
		defer svc.Close()
	}
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// Every workflow, as keyflow serve registers them (an inventory starts
	// lifecycles by ARN), and a --dry-run's own machine beside them.
	if err := registerWorkflows(ctx, svc, localRoleArn); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if f.dryRun {
		if err := putWorkflow(ctx, svc, req.workflow, smName, statemachines.Options{DryRun: true}, localRoleArn); err != nil {
			return fmt.Errorf("start: %w", err)
		}
	}
	in, err := data.Marshal(req.input)
	if err != nil {
		return invalid("start: encoding the input: %v", err)
	}
	started, err := svc.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(smArn), Name: aws.String(name), Input: aws.String(string(in))})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	desc, err := waitForEnd(ctx, svc, aws.ToString(started.ExecutionArn), track.wake, newRunProgress(cmd.ErrOrStderr()))
	if err != nil {
		return fmt.Errorf("start: waiting for %s: %w", aws.ToString(started.ExecutionArn), err)
	}
	answer.Lock()
	if answer.err != nil {
		// The approval then timed out to the workflow's default
		// decision, which the output says; the reason goes to stderr.
		fmt.Fprintf(cmd.ErrOrStderr(), "keyflow: answering the approval: %v\n", answer.err)
	}
	answer.Unlock()
	if err := printDescribed(cmd.OutOrStdout(), desc); err != nil {
		return err
	}
	// Every lifecycle an inventory started, and every audit record, before
	// the store is let go: what this process started, it finishes.
	ended, err := b.Settle(ctx)
	if err != nil {
		return &exitError{code: ExitFailed, err: err}
	}
	if err := track.settle(ctx); err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("start: %w", err)}
	}
	if req.workflow == statemachines.NameInventory && desc.Status == types.ExecutionStatusSucceeded {
		if err := reportLifecycles(cmd.ErrOrStderr(), ended); err != nil {
			return err
		}
	}
	if desc.Status != types.ExecutionStatusSucceeded {
		return &exitError{code: ExitFailed}
	}
	return nil
}

// refuseRunning refuses to run the store while executions of an earlier
// run are RUNNING in it: opened on the virtual clock, the service would
// resume them too, and their waits would end and their approvals time out
// at once.
func refuseRunning(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil // a new store runs nothing yet
	}
	api, release, err := localAPI(ctx, path)
	if err != nil {
		return err
	}
	defer release()
	p := sfn.NewListStateMachinesPaginator(api, &sfn.ListStateMachinesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("start: listing state machines: %w", err)
		}
		for _, m := range page.StateMachines {
			running, err := api.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: m.StateMachineArn, StatusFilter: types.ExecutionStatusRunning, MaxResults: 1})
			if err != nil {
				return fmt.Errorf("start: listing executions: %w", err)
			}
			if len(running.Executions) > 0 {
				return &exitError{code: ExitFailed, err: fmt.Errorf("start: %s has RUNNING executions (%s, and maybe more); on the virtual clock their waits would end and their approvals time out at once: "+
					"run keyflow serve and start with --endpoint, or pass --resume-running to carry them on here", path, aws.ToString(running.Executions[0].ExecutionArn))}
			}
		}
	}
	return nil
}

// answerApproval answers this run's approval through the API, with what
// keyflow approve|reject sends: the approver is the STS identity of the
// sandbox account, and the decision is dated at the execution's time when
// it asked, since the virtual clock answers at once.
func answerApproval(ctx context.Context, api service.API, sb *sandbox.Sandbox, a local.Approval, d statemachines.Decision, approverAccount string) error {
	id, err := sb.STS(approverAccount).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("identifying the approver (sts:GetCallerIdentity in %s): %w", approverAccount, err)
	}
	at := a.RequestedAt
	if at.IsZero() {
		at = time.Now().UTC()
	}
	out, err := json.Marshal(map[string]any{
		"decision": string(d), "approver": aws.ToString(id.Arn), "approverArn": aws.ToString(id.Arn),
		"reason": "answered by keyflow start --approve " + string(d), "decidedAt": at.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	if _, err := api.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(a.Token), Output: aws.String(string(out))}); err != nil {
		// The service may quote the token it refused: never print it.
		return errors.New(strings.ReplaceAll(err.Error(), a.Token, redactedToken))
	}
	return nil
}

// runTracker knows every execution this process started (the one asked
// for and those its tasks started) and which ended, so that start lets go
// of the store only when none of them is left half-way.
type runTracker struct {
	mu      sync.Mutex
	running map[string]bool
	wake    chan struct{} // one pending wake-up for waitForEnd and settle
}

func newRunTracker() *runTracker {
	return &runTracker{running: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// started wraps the engine's OnExecutionStart hook.
func (t *runTracker) started(next func(*engine.Execution)) func(*engine.Execution) {
	return func(x *engine.Execution) {
		t.mu.Lock()
		t.running[x.Arn()] = true
		t.mu.Unlock()
		if next != nil {
			next(x)
		}
	}
}

// ended is the engine's OnExecutionEnd: it must not block.
func (t *runTracker) ended(r *engine.Result) {
	t.mu.Lock()
	delete(t.running, r.ExecutionArn)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// settle waits until every execution this process started has ended.
func (t *runTracker) settle(ctx context.Context) error {
	for {
		t.mu.Lock()
		n := len(t.running)
		t.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d executions this run started are still running: %w", n, ctx.Err())
		case <-t.wake:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Polling DescribeExecution: the first look soon, then less and less
// often, as AWS throttles DescribeExecution beyond a few calls a second.
const (
	firstPoll = 50 * time.Millisecond
	maxPoll   = 5 * time.Second
)

// waitForEnd polls DescribeExecution until the execution has ended, with
// back-off; wake, when not nil, ends a pause early (the local engine's
// end hook).
func waitForEnd(ctx context.Context, api service.API, arn string, wake <-chan struct{}, prog *runProgress) (*sfn.DescribeExecutionOutput, error) {
	delay := firstPoll
	for {
		d, err := api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			return nil, err
		}
		if d.Status != types.ExecutionStatusRunning && d.Status != types.ExecutionStatusPendingRedrive {
			prog.done()
			return d, nil
		}
		prog.update(ctx, api, arn, d.StartDate)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			prog.done()
			return nil, ctx.Err()
		case <-wake:
			t.Stop()
		case <-t.C:
		}
		delay = min(2*delay, maxPoll)
	}
}

// printDescribed prints an ended execution as keyflow run prints a result:
// status, output (keys sorted) or error and cause.
func printDescribed(w io.Writer, d *sfn.DescribeExecutionOutput) error {
	res := runResult{Status: string(d.Status), Error: aws.ToString(d.Error), Cause: aws.ToString(d.Cause)}
	if d.Status == types.ExecutionStatusSucceeded && d.Output != nil {
		v, err := data.Parse([]byte(*d.Output))
		if err != nil {
			return fmt.Errorf("start: the execution's output is not JSON: %w", err)
		}
		if res.Output, err = data.Marshal(v); err != nil {
			return err
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// runProgress shows, on a terminal only, where a running execution is:
// its last event's state and how much of the workflow's clock has passed
// (days, on a 90-day lifecycle).
type runProgress struct{ bar *progressbar.ProgressBar }

func newRunProgress(stderr io.Writer) *runProgress {
	file, ok := stderr.(*os.File)
	if !ok || !isTerminal(file) {
		return nil
	}
	return &runProgress{bar: progressbar.NewOptions(-1, progressbar.OptionSetWriter(file), progressbar.OptionSpinnerType(14),
		progressbar.OptionSetDescription("starting"), progressbar.OptionClearOnFinish())}
}

func (p *runProgress) update(ctx context.Context, api service.API, arn string, start *time.Time) {
	if p == nil {
		return
	}
	h, err := api.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), ReverseOrder: true, MaxResults: 1})
	if err != nil || len(h.Events) == 0 {
		return // progress is a courtesy: the poll itself reports errors
	}
	e := h.Events[0]
	where := stateName(e)
	if where == "" {
		where = string(e.Type)
	}
	if e.Timestamp != nil && start != nil {
		where += ", " + report.Duration(e.Timestamp.Sub(*start)) + " of workflow time"
	}
	p.bar.Describe(where)
	_ = p.bar.Add(1)
}

func (p *runProgress) done() {
	if p != nil {
		_ = p.bar.Finish()
	}
}

// startInProcessAWS is --backend aws: the engine here on the virtual clock,
// the handlers on the default AWS configuration. Nothing goes to the local
// store: its executions are the sandbox's, which keyflow serve resumes
// with sandbox handlers.
func startInProcessAWS(ctx context.Context, cmd *cobra.Command, f *startFlags, req *startRequest) error {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("start: AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	now := time.Now().UTC().Truncate(time.Second)
	o := local.Options{EngineClock: engine.NewVirtualClock(now), Workflows: statemachines.Options{DryRun: f.dryRun},
		Accounts: tasks.NewAWSAccounts(cfg, ""), STS: sts.NewFromConfig(cfg), TopicArn: f.topic}
	if req.decision != "" {
		o.Approve = func(local.Approval) (statemachines.Decision, string) { return req.decision, "" }
	}
	b, err := local.New(o)
	if err != nil {
		return err
	}
	m, _ := b.Machine(req.workflow)
	res := m.Run(ctx, req.name, req.input)
	line, err := resultLine(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), string(line))
	if req.workflow == statemachines.NameInventory && res.Status == engine.StatusSucceeded {
		ended, err := b.Settle(ctx)
		if err != nil {
			return &exitError{code: ExitFailed, err: err}
		}
		if err := reportLifecycles(cmd.ErrOrStderr(), ended); err != nil {
			return err
		}
	}
	if res.Status != engine.StatusSucceeded {
		return &exitError{code: ExitFailed}
	}
	return nil
}

// reportLifecycles says how the lifecycles an inventory started ended, and
// fails the command when one did not succeed.
func reportLifecycles(stderr io.Writer, ended map[string]string) error {
	failed := 0
	for _, st := range ended {
		if st != engine.StatusSucceeded {
			failed++
		}
	}
	fmt.Fprintf(stderr, "keyflow: %d lifecycle executions ran, %d did not succeed\n", len(ended), failed)
	if failed > 0 {
		return &exitError{code: ExitFailed}
	}
	return nil
}
