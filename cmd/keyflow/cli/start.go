package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

type startFlags struct {
	input, db, backend, name, approve, approver, topic string
	dryRun                                             bool
}

func newStartCmd() *cobra.Command {
	var f startFlags
	cmd := &cobra.Command{
		Use:   "start NAME",
		Short: "Run a workflow (" + strings.Join(statemachines.Names(), ", ") + ") locally on the virtual clock",
		Long: `start runs one keyflow workflow on the embedded engine, on the virtual
clock (a 90-day lifecycle ends at once, its history dated as on AWS), and
prints one JSON object as keyflow run does. With --backend sandbox (the
default) the handlers work on the sandbox account in the local store, which
keyflow sandbox seed fills; with --backend aws they call AWS through the
default SDK configuration (AWS_ENDPOINT_URL points them at moto or
LocalStack). An inventory waits for the lifecycles it starts.

Approvals (quarantine, release) are answered with --approve approve|reject
as the identity that sts:GetCallerIdentity reports for --approver's account
(the sandbox) or for your credentials (AWS); without --approve nobody
answers and the workflow's default decision applies at its timeout.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: statemachines.Names(),
		RunE:      func(cmd *cobra.Command, args []string) error { return runStart(cmd, args[0], f) },
	}
	cmd.Flags().StringVar(&f.input, "input", "{}", "the execution's input: JSON, a file, or - for stdin")
	cmd.Flags().StringVar(&f.db, "db", defaultDB, "the local store (sandbox backend)")
	cmd.Flags().StringVar(&f.backend, "backend", "sandbox", "sandbox or aws")
	cmd.Flags().StringVar(&f.name, "name", "", "the execution's name (lifecycle: derived from the key by default)")
	cmd.Flags().StringVar(&f.approve, "approve", "", "answer approvals: approve or reject")
	cmd.Flags().StringVar(&f.approver, "approver", "", "the sandbox account whose identity approves (default: the management account)")
	cmd.Flags().StringVar(&f.topic, "topic", "", "SNS topic ARN for notifications (aws backend; sandbox: the seeded topic)")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "report what each handler would do and change nothing")
	return cmd
}

func runStart(cmd *cobra.Command, workflow string, f startFlags) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if _, err := statemachines.Build(workflow, statemachines.Options{}); err != nil {
		return invalid("start: %v", err)
	}
	input, err := readInput(f.input, cmd.InOrStdin())
	if err != nil {
		return invalid("start: %v", err)
	}
	var decision statemachines.Decision
	switch f.approve {
	case "":
	case "approve", "reject":
		decision = statemachines.Decision(f.approve)
	default:
		return invalid("start: --approve must be approve or reject, got %q", f.approve)
	}
	now := time.Now().UTC().Truncate(time.Second)
	o := local.Options{EngineClock: engine.NewVirtualClock(now), Workflows: statemachines.Options{DryRun: f.dryRun}}
	approverAccount := f.approver
	switch f.backend {
	case "sandbox":
		db, err := openDB(f.db)
		if err != nil {
			return err
		}
		defer db.Close()
		clock := &local.TaskClock{Fallback: func() time.Time { return now }}
		sb, err := sandbox.New(sandbox.Options{Now: clock.Now, DB: db})
		if err != nil {
			return fmt.Errorf("start: opening the sandbox in %s: %w", f.db, err)
		}
		o.Sandbox, o.Clock = sb, clock
		if approverAccount == "" {
			approverAccount = sb.ManagementAccount()
		}
	case "aws":
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("start: AWS configuration: %w", err)
		}
		if cfg.Region == "" {
			cfg.Region = "us-east-1"
		}
		o.Accounts = tasks.NewAWSAccounts(cfg, "")
		o.STS = sts.NewFromConfig(cfg)
		o.TopicArn = f.topic
		if o.TopicArn == "" {
			return invalid("start: --backend aws needs --topic (the notifications' SNS topic ARN)")
		}
	default:
		return invalid("start: --backend must be sandbox or aws, got %q", f.backend)
	}
	if decision != "" {
		o.Approve = func(local.Approval) (statemachines.Decision, string) { return decision, approverAccount }
	}
	b, err := local.New(o)
	if err != nil {
		return err
	}
	m, _ := b.Machine(workflow)
	name := f.name
	if in, ok := input.(map[string]any); ok && name == "" && workflow == statemachines.NameLifecycle {
		a, _ := in["accountId"].(string)
		u, _ := in["userName"].(string)
		k, _ := in["accessKeyId"].(string)
		if a != "" && u != "" && k != "" {
			name = statemachines.LifecycleExecutionName(a, u, k)
		}
	}
	res := m.Run(ctx, name, input)
	line, err := resultLine(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), string(line))
	if workflow == statemachines.NameInventory && res.Status == engine.StatusSucceeded {
		ended, err := b.Settle(ctx)
		if err != nil {
			return &exitError{code: ExitFailed, err: err}
		}
		failed := 0
		for _, st := range ended {
			if st != engine.StatusSucceeded {
				failed++
			}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "keyflow: %d lifecycle executions ran, %d did not succeed\n", len(ended), failed)
		if failed > 0 {
			return &exitError{code: ExitFailed}
		}
	}
	if res.Status != engine.StatusSucceeded {
		return &exitError{code: ExitFailed}
	}
	return nil
}
