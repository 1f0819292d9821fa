package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/report"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
)

// demoOptions size and place the demo.
type demoOptions struct {
	db, html string
	accounts int
	users    int
	// progress, when set, receives the progress bar (stderr on a
	// terminal; nil in tests and pipes, where a bar is noise).
	progress io.Writer
}

// demoStart is the demo's "today" on the virtual clock: fixed, so that the
// same seed tells the same story on every machine.
var demoStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// demoApprover is the named person who approves the quarantine: the
// approver is whoever STS says the caller is, so the demo gives the
// management account's caller this identity.
const demoApprover = "dana.okafor-security"

func newDemoCmd() *cobra.Command {
	o := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The whole product in one command: a sandbox Organization, 90 days of key rotation, a quarantine, the audit and the report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.accounts < 1 || o.accounts > 20 || o.users < 1 || o.users > 500 {
				return invalid("demo: --accounts must be 1 to 20 and --users 1 to 500, got %d and %d", o.accounts, o.users)
			}
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && isTerminal(f) {
				o.progress = f
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			_, err := runDemo(ctx, o, cmd.OutOrStdout())
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.db, "db", ".keyflow/demo.db", "the demo's store `FILE`, made afresh on every run")
	fl.StringVar(&o.html, "html", "keyflow-report.html", "where to write the HTML report")
	fl.IntVar(&o.accounts, "accounts", 3, "member accounts in the sandbox Organization")
	fl.IntVar(&o.users, "users", 30, "IAM users per member account")
	return cmd
}

// demoRun is what the demo leaves behind, for its tests.
type demoRun struct {
	Executions *audit.Executions
	Records    []*audit.Record
	Estate     *report.Estate
}

// collector keeps every execution that ends, in-process: the lifecycles
// the inventory starts are held by no caller.
type collector struct {
	mu      sync.Mutex
	results []*engine.Result
}

func (c *collector) add(r *engine.Result) {
	c.mu.Lock()
	c.results = append(c.results, r)
	c.mu.Unlock()
}

func (c *collector) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.results {
		if strings.Contains(r.ExecutionArn, prefix) {
			n++
		}
	}
	return n
}

func runDemo(ctx context.Context, o demoOptions, w io.Writer) (*demoRun, error) {
	began := time.Now()
	if err := removeDB(o.db); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	db, err := openDB(o.db)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	defer db.Close()
	clock := &local.TaskClock{Fallback: func() time.Time { return demoStart }}
	sb, err := sandbox.New(sandbox.Options{Now: clock.Now, DB: db})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	seed, err := sandbox.Seed(sb, sandbox.SeedOptions{Accounts: o.accounts, UsersPerAccount: o.users, Seed: 1, Now: demoStart})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(w, "keyflow demo: the whole product on the embedded engine and sandbox, virtual clock from %s\n\n", demoStart.Format("2006-01-02"))
	fmt.Fprintf(w, "1. A sandbox Organization in %s: management account %s and %d member accounts in %d OUs;\n",
		o.db, seed.ManagementAccount, len(seed.MemberAccounts), seed.OrganizationalUnits)
	fmt.Fprintf(w, "   %d IAM users with %d access keys (%d older than 45 days), %d users with two keys, %d admin(s), %d exempt.\n",
		seed.Users, seed.Keys, seed.Keys45To60+seed.Keys60To90+seed.Keys90Plus, seed.UsersWithTwoKeys, seed.Admins, seed.Exempt)

	approver := "arn:aws:iam::" + sb.ManagementAccount() + ":user/" + demoApprover
	if err := sb.SetCallerIdentity(sb.ManagementAccount(), approver); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	ended := &collector{}
	b, err := local.New(local.Options{Sandbox: sb, Clock: clock, EngineClock: engine.NewVirtualClock(demoStart),
		OnExecutionEnd: ended.add,
		Approve: func(local.Approval) (statemachines.Decision, string) {
			return statemachines.Approve, sb.ManagementAccount()
		}})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}

	// 2. The daily inventory, and every due key through its lifecycle.
	inv, _ := b.Machine(statemachines.NameInventory)
	res := inv.Run(ctx, "daily-"+demoStart.Format("2006-01-02"), map[string]any{"organization": true})
	if res.Status != engine.StatusSucceeded {
		return nil, fmt.Errorf("demo: the inventory %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	started := time.Now()
	settled, err := settleWithProgress(ctx, b, ended, o.progress)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	lifecycleEnd := demoStart
	failed := 0
	for _, r := range ended.snapshot() {
		if r.StopDate.After(lifecycleEnd) {
			lifecycleEnd = r.StopDate
		}
	}
	for _, st := range settled {
		if st != engine.StatusSucceeded {
			failed++
		}
	}
	fmt.Fprintf(w, "2. The daily inventory found %d keys due; each ran its full lifecycle (new key stored in Secrets Manager,\n", len(settled))
	fmt.Fprintf(w, "   old key deactivated at day 60, deleted at day 90): %d lifecycles, %s of workflow time in %s; %d did not succeed.\n",
		len(settled), report.Duration(lifecycleEnd.Sub(demoStart)), time.Since(started).Round(10*time.Millisecond), failed)

	// 3. A non-admin's IAM write call, quarantined after an approval.
	acct := seed.MemberAccounts[0]
	user, err := plainUserWithKey(ctx, sb, acct)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	q, _ := b.Machine(statemachines.NameQuarantine)
	qres := q.Run(ctx, "cloudtrail-"+user, cloudTrailCall(acct, user, demoStart))
	if qres.Status != engine.StatusSucceeded {
		return nil, fmt.Errorf("demo: the quarantine %s: %s: %s", qres.Status, qres.Error, qres.Cause)
	}
	fmt.Fprintf(w, "3. CloudTrail: %s in account %s called iam:AttachUserPolicy; %s approved the quarantine:\n", user, acct, demoApprover)
	fmt.Fprintf(w, "   the deny policy is attached and the user's keys are inactive.\n")

	// 4. The audit of every execution, through the same path as `keyflow audit`.
	x := &audit.Executions{}
	for _, r := range ended.snapshot() {
		if err := x.Add(audit.History{ExecutionArn: r.ExecutionArn, Events: r.History()}); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	records, err := audit.Collect(ctx, x, audit.Filter{})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	head, err := audit.Chain("", records)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintln(w, "4. The audit of every execution history:")
	byFlow := map[string]int{}
	var actions, approvals, breaches, waits int
	for _, r := range records {
		byFlow[r.Workflow+" "+strings.ToLower(r.Status)]++
		actions += len(r.Actions)
		approvals += len(r.Approvals)
		breaches += len(r.Breaches)
		waits += len(r.Waits)
	}
	var flows []string
	for k, n := range byFlow {
		flows = append(flows, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(flows)
	fmt.Fprintf(w, "   %d executions (%s), %d handler calls, %d waits, %d approval(s), %d breach(es)\n",
		len(records), strings.Join(flows, ", "), actions, waits, approvals, breaches)
	for _, r := range records {
		for _, a := range r.Approvals {
			fmt.Fprintf(w, "   approval: %s by %s at %s\n", a.Decision, a.Approver, a.At.Format(time.RFC3339))
		}
		for _, br := range r.Breaches {
			fmt.Fprintf(w, "   BREACH %s %s: %s\n", executionName(r.ExecutionArn), br.Code, br.Message)
		}
	}
	fmt.Fprintf(w, "   records hash-chained, head %s\n", head)

	// 5. The accounts now, and the report.
	estate, err := report.Gather(ctx, append([]string{sb.ManagementAccount()}, seed.MemberAccounts...),
		func(_ context.Context, id string) (report.IAM, error) { return sb.IAM(id), nil }, report.DefaultPolicy, lifecycleEnd)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := writeAuditHTML(o.html, "keyflow demo: audit and accounts", records, head, estate, lifecycleEnd); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(w, "5. The accounts on %s: %d keys, %d due, %d in their inactive window, %d quarantined user(s),\n",
		lifecycleEnd.Format("2006-01-02"), estate.Keys, len(estate.Due), len(estate.Inactive), len(estate.Quarantined))
	fmt.Fprintf(w, "   %d console users without MFA, %d users with two keys (keys that came of age meanwhile wait for the next daily inventory).\n", len(estate.NoMFA), len(estate.TwoKeys))
	fmt.Fprintln(w)
	path := o.html
	if abs, err := filepath.Abs(o.html); err == nil {
		path = abs
	}
	fmt.Fprintf(w, "The report: %s (open it in a browser; it is one self-contained file).\n", path)
	fmt.Fprintf(w, "Done in %s.\n\n", time.Since(began).Round(10*time.Millisecond))
	fmt.Fprintln(w, "Next:")
	fmt.Fprintf(w, "  go run ./cmd/keyflow report --db %s                # the accounts now, as a table\n", o.db)
	fmt.Fprintln(w, "  go run ./cmd/keyflow graph lifecycle                   # the key lifecycle, as Mermaid")
	fmt.Fprintln(w, "  go run ./cmd/keyflow sandbox seed && go run ./cmd/keyflow start inventory --input '{\"organization\": true}'")
	fmt.Fprintln(w, "  go run ./cmd/keyflow synth -o dist/keyflow.template.json   # then deploy it: see the README")
	fmt.Fprintln(w, "  make test")
	if breaches > 0 {
		return nil, &exitError{code: ExitFailed, err: fmt.Errorf("demo: the audit found %d breach(es)", breaches)}
	}
	return &demoRun{Executions: x, Records: records, Estate: estate}, nil
}

func (c *collector) snapshot() []*engine.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*engine.Result(nil), c.results...)
}

// settleWithProgress waits for the inventory's lifecycles, drawing a bar
// of the ones that ended when out is a terminal.
func settleWithProgress(ctx context.Context, b *local.Backend, ended *collector, out io.Writer) (map[string]string, error) {
	if out == nil {
		return b.Settle(ctx)
	}
	type settled struct {
		m   map[string]string
		err error
	}
	done := make(chan settled, 1)
	go func() {
		m, err := b.Settle(ctx)
		done <- settled{m, err}
	}()
	bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(out), progressbar.OptionSetDescription("lifecycles ended"),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	marker := ":" + statemachines.StateMachineName(statemachines.NameLifecycle) + ":"
	for {
		select {
		case s := <-done:
			bar.Finish()
			return s.m, s.err
		case <-tick.C:
			bar.Set(ended.count(marker))
		}
	}
}

// plainUserWithKey is the first user (by name) of the account who is not
// an admin and has an Active key: the subject of the demo's quarantine.
func plainUserWithKey(ctx context.Context, sb *sandbox.Sandbox, acct string) (string, error) {
	c := sb.IAM(acct)
	users, err := c.ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		return "", err
	}
	var names []string
	for _, u := range users.Users {
		names = append(names, aws.ToString(u.UserName))
	}
	sort.Strings(names)
	for _, n := range names {
		g, err := c.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String(n)})
		if err != nil {
			return "", err
		}
		admin := false
		for _, x := range g.Groups {
			admin = admin || aws.ToString(x.GroupName) == sandbox.SeedAdminsGroup
		}
		keys, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(n)})
		if err != nil {
			return "", err
		}
		for _, k := range keys.AccessKeyMetadata {
			if !admin && k.Status == iamtypes.StatusTypeActive && !strings.HasPrefix(n, "svc-") {
				return n, nil
			}
		}
	}
	return "", errors.New("no user outside the admins group has an active key")
}

// cloudTrailCall is the EventBridge event of a CloudTrail IAM write call.
func cloudTrailCall(acct, user string, at time.Time) map[string]any {
	return map[string]any{
		"source": "aws.iam", "detail-type": "AWS API Call via CloudTrail", "account": acct,
		"detail": map[string]any{
			"eventSource": "iam.amazonaws.com", "eventName": "AttachUserPolicy", "eventTime": at.Format(time.RFC3339),
			"sourceIPAddress": "203.0.113.7",
			"userIdentity":    map[string]any{"type": "IAMUser", "accountId": acct, "userName": user, "arn": "arn:aws:iam::" + acct + ":user/" + user},
		},
	}
}
