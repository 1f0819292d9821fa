package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/report"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/tasks"
)

type reportFlags struct {
	db      string
	aws     bool
	account string
	html    string
	policy  report.Policy
	// The hygiene inventory's settings, as the schedule passes them.
	mfaPolicyArn string
	mfaMember    string
	graceDays    int
	exemptions   string
}

func newReportCmd() *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report [--db FILE | --aws] [--account ID] [--html FILE]",
		Short: "The state of the account(s) now: keys by age, keys due, inactive keys, quarantined users, users with two keys, MFA enforcement (grace deadlines, the MFA-required policy, exemptions, breaches) and the password policy against the baseline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			p := f.policy
			if p.RotationDays <= 0 || p.InactiveDays <= p.RotationDays || p.BufferDays <= p.InactiveDays {
				return invalid("report: --rotation-days %d, --inactive-days %d, --buffer-days %d: want 0 < rotation < inactive < buffer", p.RotationDays, p.InactiveDays, p.BufferDays)
			}
			if f.aws && !cmd.Flags().Changed("mfa-policy-arn") {
				// CloudFormation names the central stack's MFA policy: no
				// default can find it, and a wrong one would report the
				// central account's enforced users as unenforced.
				return invalid("report: --aws needs --mfa-policy-arn, the central stack's MFARequiredPolicyArn output")
			}
			now := time.Now().UTC().Truncate(time.Second)
			var (
				accounts tasks.Accounts
				records  []*audit.Record
			)
			if f.aws {
				cfg, err := config.LoadDefaultConfig(ctx)
				if err != nil {
					return fmt.Errorf("report: AWS configuration: %w", err)
				}
				if cfg.Region == "" {
					cfg.Region = "us-east-1"
				}
				accounts = tasks.NewAWSAccounts(cfg, "")
			} else {
				db, err := openDB(f.db)
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				defer db.Close()
				sb, err := sandbox.New(sandbox.Options{DB: db, Now: func() time.Time { return now }})
				if err != nil {
					return fmt.Errorf("report: opening the sandbox in %s: %w", f.db, err)
				}
				accounts = local.SandboxAccounts{Sandbox: sb}
			}
			var exemptions []tasks.Exemption
			if err := json.Unmarshal([]byte(f.exemptions), &exemptions); err != nil {
				return invalid("report: --exemptions: %v", err)
			}
			e, err := gatherEstate(ctx, accounts, f.account, p, now)
			if err != nil {
				return err
			}
			// The executions are read where the workflows run: the same
			// store, or AWS. Without them the page says the deadlines are
			// unknown rather than guessing them.
			var api executionReader
			if c, release, err := (&apiFlags{db: f.db, aws: f.aws}).client(ctx); err == nil {
				defer release()
				api = c
			}
			o := hygieneOptions{policyArn: f.mfaPolicyArn, memberPolicyName: f.mfaMember, graceDays: f.graceDays, exemptions: exemptions}
			if e.Hygiene, records, err = gatherHygiene(ctx, accounts, f.account, o, api, now); err != nil {
				return err
			}
			writeEstate(cmd.OutOrStdout(), e)
			writeHygiene(cmd.OutOrStdout(), e.Hygiene, records)
			if f.html != "" {
				head, err := audit.Chain("", records)
				if err != nil {
					return err
				}
				if err := writeAuditHTML(f.html, "keyflow report", records, head, e, now); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", f.html)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.db, "db", defaultDB, "the local store `FILE` whose sandbox is reported")
	fl.BoolVar(&f.aws, "aws", false, "report the AWS account(s) of the default SDK configuration (the Organization's through the member role)")
	fl.StringVar(&f.account, "account", "", "one account `ID` instead of the whole Organization")
	fl.StringVar(&f.html, "html", "", "also write the HTML report, with the key-age chart, to `FILE`")
	fl.IntVar(&f.policy.RotationDays, "rotation-days", report.DefaultPolicy.RotationDays, "a key is due at this age")
	fl.IntVar(&f.policy.InactiveDays, "inactive-days", report.DefaultPolicy.InactiveDays, "a rotated key is deactivated at this age")
	fl.IntVar(&f.policy.BufferDays, "buffer-days", report.DefaultPolicy.BufferDays, "a deactivated key is deleted at this age")
	// The central stack's policy is named by CloudFormation, so on AWS it
	// must be given; the default suits the sandbox, where every account's
	// copy has the member name. Any other account's copy is found by
	// --mfa-member-policy-name, as the stack's functions find it.
	fl.StringVar(&f.mfaPolicyArn, "mfa-policy-arn", "arn:aws:iam::000000000000:policy/"+tasks.DefaultMFAPolicyName,
		"the central stack's MFA-required policy (`ARN`); with --aws, give the stack's MFARequiredPolicyArn output, or the central account's users are read against the wrong policy")
	fl.StringVar(&f.mfaMember, "mfa-member-policy-name", tasks.DefaultMFAPolicyName, "the MFA-required policy's `NAME` in the member accounts (the stacks' MemberMFAPolicyName)")
	fl.IntVar(&f.graceDays, "mfa-grace-days", tasks.DefaultMFAGraceDays, "days a console user without MFA has to enrol")
	fl.StringVar(&f.exemptions, "exemptions", "[]", "the exemptions the hygiene inventory honours, as the template's Exemptions `JSON`")
	return cmd
}

// iamReader is what report.Gather reads; the sandbox's IAM and *iam.Client
// both have it, though tasks.IAMAPI (what Accounts promises) does not list
// the MFA and login-profile calls the handlers never make.
func iamReader(ctx context.Context, accounts tasks.Accounts, id string) (report.IAM, error) {
	c, err := accounts.IAM(ctx, id)
	if err != nil {
		return nil, err
	}
	r, ok := c.(report.IAM)
	if !ok {
		return nil, fmt.Errorf("the IAM client of account %s cannot list MFA devices", id)
	}
	return r, nil
}

// gatherEstate lists the accounts as the inventory does (every ACTIVE
// account of the Organization, or the one named) and reads each.
func gatherEstate(ctx context.Context, accounts tasks.Accounts, account string, p report.Policy, now time.Time) (*report.Estate, error) {
	ids := []string{account}
	if account == "" {
		inv := &tasks.Inventory{Accounts: accounts, Now: func() time.Time { return now }}
		out, err := inv.Handle(ctx, tasks.InventoryInput{Organization: true, DryRun: true, RotationDays: p.RotationDays,
			InactiveDays: p.InactiveDays, BufferDays: p.BufferDays})
		if err != nil {
			return nil, fmt.Errorf("report: listing the Organization's accounts: %w", err)
		}
		ids = out.Accounts
		for _, f := range out.FailedAccounts {
			return nil, fmt.Errorf("report: account %s cannot be read: %s", f.AccountID, f.Error)
		}
	}
	return report.Gather(ctx, ids, func(ctx context.Context, id string) (report.IAM, error) { return iamReader(ctx, accounts, id) }, p, now)
}

// writeEstate prints the estate as a person scans it: the figures, the
// age buckets, then the lists, each cut at a screenful.
func writeEstate(w io.Writer, e *report.Estate) {
	fmt.Fprintf(w, "%d account(s), %d user(s), %d access key(s) at %s\n", len(e.Accounts), e.Users, e.Keys, e.At.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY AGE (DAYS)\tKEYS\t")
	for _, b := range e.Buckets {
		due := ""
		if b.Due {
			due = "due"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", b.Label, b.Count, due)
	}
	tw.Flush()
	fmt.Fprintf(w, "keys due: %d, in their inactive window: %d, quarantined users: %d, console users without MFA: %d, users with two keys: %d\n",
		len(e.Due), len(e.Inactive), len(e.Quarantined), len(e.NoMFA), len(e.TwoKeys))
	const rows = 20
	keys := func(title string, ks []report.Key) {
		if len(ks) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s (%d)\n", title, len(ks))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tUSER\tKEY\tSTATUS\tAGE\tNEXT")
		for i, k := range ks {
			if i == rows {
				fmt.Fprintf(tw, "...\t%d more\t\t\t\t\n", len(ks)-rows)
				break
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", k.Account, k.User, k.ID, k.Status, k.AgeDays, k.Next)
		}
		tw.Flush()
	}
	users := func(title string, us []report.User) {
		if len(us) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s (%d)\n", title, len(us))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tUSER\t")
		for i, u := range us {
			if i == rows {
				fmt.Fprintf(tw, "...\t%d more\t\n", len(us)-rows)
				break
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Account, u.Name, u.Detail)
		}
		tw.Flush()
	}
	keys("Keys due", e.Due)
	keys("Keys in their inactive window", e.Inactive)
	users("Quarantined users", e.Quarantined)
	if e.Hygiene == nil { // writeHygiene lists them with what keyflow does
		users("Console users without MFA", e.NoMFA)
	}
	users("Users with two keys", e.TwoKeys)
}
