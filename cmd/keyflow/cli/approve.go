package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/engine/service"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
)

// callerIdentity is the one STS call approve needs.
type callerIdentity interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// maxReason bounds --reason: it is kept in the execution's history and
// output, whose payloads AWS caps at 256 KiB.
const maxReason = 4096

type approveFlags struct {
	api      apiFlags
	approver string
	reason   string
	account  string
}

func newApproveCmd(d statemachines.Decision) *cobra.Command {
	var f approveFlags
	verb := string(d)
	cmd := &cobra.Command{
		Use:   verb + " EXECUTION_ARN --approver NAME --reason TEXT",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " the approval an execution waits for (quarantine, release)",
		Long: verb + ` answers the approval that an execution (a quarantine or a release)
waits for: it finds the pending task token in the execution's history and
sends SendTaskSuccess with {"decision", "approver", "approverArn", "reason",
"decidedAt"}. Who decided is what sts:GetCallerIdentity says of your
credentials: with --aws the SDK's credentials, otherwise the sandbox
account --account of the local store (--db, default its management
account). --approver is only the name shown beside that identity. The
token is never printed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runApprove(cmd, d, args[0], &f) },
	}
	addAPIFlags(cmd, &f.api)
	cmd.Flags().StringVar(&f.approver, "approver", "", "your name, shown beside the identity STS reports (required)")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why, kept in the execution's output (required)")
	cmd.Flags().StringVar(&f.account, "account", "", "the sandbox account whose identity approves (local store and --endpoint; default: the management account)")
	return cmd
}

func runApprove(cmd *cobra.Command, d statemachines.Decision, arn string, f *approveFlags) error {
	verb := string(d)
	if err := checkExecutionArn(verb, arn); err != nil {
		return err
	}
	if strings.TrimSpace(f.approver) == "" {
		return invalid("%s: --approver NAME is required", verb)
	}
	if strings.TrimSpace(f.reason) == "" {
		return invalid("%s: --reason TEXT is required", verb)
	}
	if len(f.reason) > maxReason || len(f.approver) > 256 {
		return invalid("%s: --reason is limited to %d bytes and --approver to 256", verb, maxReason)
	}
	if f.api.aws && f.account != "" {
		return invalid("%s: --account names a sandbox account; with --aws the identity is your AWS credentials'", verb)
	}
	return withAPI(cmd, &f.api, func(ctx context.Context, api service.API) error {
		desc, err := api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
		if desc.Status != types.ExecutionStatusRunning {
			return fmt.Errorf("%s: execution %q is %s: no approval is waiting", verb, arn, desc.Status)
		}
		events, err := history(ctx, api, arn, false, nil)
		if err != nil {
			return fmt.Errorf("%s: reading the history: %w", verb, err)
		}
		token, err := pendingToken(events)
		if err != nil {
			return fmt.Errorf("%s: execution %q: %w", verb, arn, err)
		}
		stsc, release, err := f.identity(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
		defer release()
		id, err := stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return fmt.Errorf("%s: identifying you (sts:GetCallerIdentity): %w", verb, err)
		}
		answer := map[string]any{
			"decision": verb, "approver": f.approver, "approverArn": aws.ToString(id.Arn),
			"reason": f.reason, "decidedAt": time.Now().UTC().Format(time.RFC3339),
		}
		out, err := json.Marshal(answer)
		if err != nil {
			return err
		}
		if _, err := api.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(string(out))}); err != nil {
			// The service may quote the token it refused: never print it.
			return errors.New(strings.ReplaceAll(fmt.Sprintf("%s: answering %s: %v", verb, arn, err), token, redactedToken))
		}
		answer["executionArn"] = arn
		b, err := json.Marshal(answer)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), string(b))
		return nil
	})
}

// identity returns the STS client whose caller is the approver: the SDK's
// with --aws, else the sandbox account's in the local store.
func (f *approveFlags) identity(ctx context.Context) (callerIdentity, func(), error) {
	if f.api.aws {
		var opts []func(*config.LoadOptions) error
		if f.api.region != "" {
			opts = append(opts, config.WithRegion(f.api.region))
		}
		if f.api.profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(f.api.profile))
		}
		cfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("AWS configuration: %w", err)
		}
		if cfg.Region == "" {
			cfg.Region = "us-east-1"
		}
		return sts.NewFromConfig(cfg), func() {}, nil
	}
	db, err := openDB(f.api.db)
	if err != nil {
		return nil, nil, err
	}
	sb, err := sandbox.New(sandbox.Options{DB: db})
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("opening the sandbox in %s: %w", f.api.db, err)
	}
	account := f.account
	if account == "" {
		account = sb.ManagementAccount()
	}
	return sb.STS(account), func() { db.Close() }, nil
}

// pendingToken finds the one task token the execution waits on: a
// .waitForTaskToken task scheduled and not yet ended.
func pendingToken(events []types.HistoryEvent) (string, error) {
	type open struct{ resource, token string }
	var waiting []open
	closeOne := func(resource *string) {
		for i, w := range waiting {
			if w.resource == aws.ToString(resource) {
				waiting = append(waiting[:i], waiting[i+1:]...)
				return
			}
		}
	}
	for _, e := range events {
		switch {
		case e.TaskScheduledEventDetails != nil:
			d := e.TaskScheduledEventDetails
			if !strings.HasSuffix(aws.ToString(d.Resource), ".waitForTaskToken") {
				continue
			}
			var params any
			if d.Parameters == nil || json.Unmarshal([]byte(*d.Parameters), &params) != nil {
				continue
			}
			if ts := tokensIn(params); len(ts) == 1 {
				waiting = append(waiting, open{aws.ToString(d.Resource), ts[0]})
			}
		case e.TaskSucceededEventDetails != nil:
			closeOne(e.TaskSucceededEventDetails.Resource)
		case e.TaskFailedEventDetails != nil:
			closeOne(e.TaskFailedEventDetails.Resource)
		case e.TaskTimedOutEventDetails != nil:
			closeOne(e.TaskTimedOutEventDetails.Resource)
		case e.TaskStartFailedEventDetails != nil:
			closeOne(e.TaskStartFailedEventDetails.Resource)
		case e.TaskSubmitFailedEventDetails != nil:
			closeOne(e.TaskSubmitFailedEventDetails.Resource)
		}
	}
	switch len(waiting) {
	case 0:
		return "", errors.New("no approval is waiting (no open .waitForTaskToken task with a taskToken in its parameters)")
	case 1:
		return waiting[0].token, nil
	}
	return "", fmt.Errorf("%d approvals are waiting at once; keyflow answers one at a time", len(waiting))
}
