package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/report"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

// executionReader is what the report reads of Step Functions: the audit's
// calls, and DescribeExecution for an MFA execution's input, whose
// graceDeadline is the instant its Wait state waits for.
type executionReader interface {
	audit.SFN
	DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// hygieneOptions are what the hygiene inventory is run with, as the
// schedule runs it.
type hygieneOptions struct {
	policyArn        string
	memberPolicyName string
	graceDays        int
	exemptions       []tasks.Exemption
}

// maxHygienePages bounds the report's walk: 10,000 pages of 200 users is
// more than any Organization's users.
const maxHygienePages = 10000

// gatherHygiene runs the hygiene inventory as a dry run (it reads only)
// and looks up each user's MFA execution: the grace deadline shown is the
// execution's own, not one computed again. api may be nil (no executions
// to read); the page then says the deadlines are unknown. The records are
// the audit of every MFA and hygiene execution, for the breaches.
func gatherHygiene(ctx context.Context, accounts tasks.Accounts, account string, o hygieneOptions, api executionReader, now time.Time) (*report.Hygiene, []*audit.Record, error) {
	h := &tasks.Hygiene{Accounts: accounts, Now: func() time.Time { return now }, PolicyArn: o.policyArn, MemberPolicyName: o.memberPolicyName}
	in := tasks.HygieneInput{AccountID: account, Organization: account == "", Exemptions: o.exemptions, GraceDays: o.graceDays, DryRun: true}
	var pages []*tasks.HygieneOutput
	for {
		out, err := h.Handle(ctx, in)
		if err != nil {
			return nil, nil, fmt.Errorf("report: the hygiene inventory: %w", err)
		}
		for _, f := range out.FailedAccounts {
			return nil, nil, fmt.Errorf("report: account %s cannot be read: %s", f.AccountID, f.Error)
		}
		pages = append(pages, out)
		if out.NextMarker == "" {
			break
		}
		if len(pages) == maxHygienePages {
			return nil, nil, fmt.Errorf("report: the hygiene inventory is still paging after %d pages", len(pages))
		}
		in.Marker = out.NextMarker
	}
	base := tasks.DefaultPasswordBaseline
	hy := &report.Hygiene{GraceDays: pages[0].GraceDays, Baseline: describeBaseline(base)}

	var records []*audit.Record
	mfa := mfaExecutions{}
	if api != nil {
		var err error
		mfa, err = findMFAMachine(ctx, api)
		if err == nil && mfa.machineArn != "" {
			records, err = audit.Collect(ctx, api, audit.Filter{Workflows: []string{statemachines.NameMFA, statemachines.NameHygiene}})
		}
		switch {
		case err != nil:
			hy.Note = "The MFA executions could not be read (" + clipFlag(err.Error()) + "): grace deadlines are unknown."
			records, api = nil, nil
		case mfa.machineArn == "":
			hy.Note = "The MFA workflow is not deployed where the executions were read: nobody has been notified."
		default:
			mfa.notices(records)
			hy.Note = "Grace deadlines are the MFA executions' own (their input's graceDeadline)."
		}
	} else {
		hy.Note = "No executions were read: grace deadlines are unknown."
	}
	for _, p := range pages {
		// A user whose enforcement runs (the inventory's "enforcing",
		// when it could see the executions) is described like the others.
		for _, r := range append(slices.Clone(p.Users), p.Enforcing...) {
			u := report.MFAUser{Account: r.AccountID, Name: r.UserName}
			if r.Action == "release" {
				u.State, u.Detail = report.MFAToRelease, "enrolled (or no console access): the next hygiene run detaches the policy"
				hy.Attached = append(hy.Attached, u)
				continue
			}
			if err := mfa.describe(ctx, api, &u); err != nil {
				return nil, nil, err
			}
			hy.NoMFA = append(hy.NoMFA, u)
		}
		for _, r := range p.Enforced {
			u := report.MFAUser{Account: r.AccountID, Name: r.UserName}
			if err := mfa.describe(ctx, api, &u); err != nil {
				return nil, nil, err
			}
			u.State, u.Detail = report.MFAEnforced, "no MFA device: everything but enrolling one is denied"
			hy.Attached = append(hy.Attached, u)
		}
		for _, r := range p.Exempt {
			d := r.ExemptReason + " (" + r.ExemptOwner + ")"
			if !r.ExemptUntil.IsZero() {
				d += " until " + r.ExemptUntil.UTC().Format("2006-01-02")
			}
			if r.PolicyAttached {
				d += "; the MFA-required policy is attached and stays: exempt users are not touched"
			}
			hy.Exempt = append(hy.Exempt, report.MFAUser{Account: r.AccountID, Name: r.UserName, State: report.MFAExempt, Detail: d})
		}
		for _, pp := range p.PasswordPolicies {
			hy.PasswordPolicies = append(hy.PasswordPolicies, report.PasswordPolicy{Account: pp.AccountID, Present: pp.Present, Compliant: pp.Compliant, Findings: pp.Findings})
		}
	}
	return hy, records, nil
}

// mfaExecutions finds a user's enforcement: every enforcement of a user is
// named from statemachines.MFAEnforcementPrefix and the day it started, so
// the newest execution with the user's prefix is the one that counts.
type mfaExecutions struct {
	machineArn string
	latest     map[string]string    // MFAEnforcementPrefix -> newest execution ARN
	notified   map[string]time.Time // execution ARN -> NotifyEnrol's end
}

func findMFAMachine(ctx context.Context, api executionReader) (mfaExecutions, error) {
	m := mfaExecutions{latest: map[string]string{}, notified: map[string]time.Time{}}
	in := &sfn.ListStateMachinesInput{}
	for m.machineArn == "" {
		out, err := api.ListStateMachines(ctx, in)
		if err != nil {
			return m, err
		}
		for _, sm := range out.StateMachines {
			if aws.ToString(sm.Name) == statemachines.StateMachineName(statemachines.NameMFA) {
				m.machineArn = aws.ToString(sm.StateMachineArn)
			}
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	if m.machineArn == "" {
		return m, nil
	}
	// Step Functions lists newest first: the first execution seen with a
	// prefix is the user's latest enforcement. A start date decides where
	// a store lists otherwise.
	started := map[string]time.Time{}
	ls := &sfn.ListExecutionsInput{StateMachineArn: aws.String(m.machineArn)}
	for {
		out, err := api.ListExecutions(ctx, ls)
		if err != nil {
			return m, err
		}
		for _, x := range out.Executions {
			p, ok := enforcementPrefix(aws.ToString(x.Name))
			if !ok {
				continue
			}
			if at := aws.ToTime(x.StartDate); m.latest[p] == "" || at.After(started[p]) {
				m.latest[p], started[p] = aws.ToString(x.ExecutionArn), at
			}
		}
		if out.NextToken == nil {
			break
		}
		ls.NextToken = out.NextToken
	}
	return m, nil
}

// enforcementPrefix is the MFAEnforcementPrefix an execution name starts
// with, if it is an enforcement's: "<account>-mfa-enforce-<md5>", then
// "-<day>" or (before days were added) nothing.
func enforcementPrefix(name string) (string, bool) {
	acct, rest, ok := strings.Cut(name, "-mfa-enforce-")
	if !ok || len(acct) != 12 || len(rest) < 32 {
		return "", false
	}
	if len(rest) > 32 && rest[32] != '-' {
		return "", false
	}
	return name[:len(acct)+len("-mfa-enforce-")+32], true
}

// notices keeps when each execution told its user how to enrol.
func (m mfaExecutions) notices(records []*audit.Record) {
	for _, r := range records {
		for _, a := range r.Actions {
			if a.State == "NotifyEnrol" && a.Error == "" {
				m.notified[r.ExecutionArn] = a.Time
			}
		}
	}
}

// describe fills u's state, notice and deadline from the user's
// enforcement execution.
func (m mfaExecutions) describe(ctx context.Context, api executionReader, u *report.MFAUser) error {
	if api == nil {
		u.State = report.MFAUnknownGrace
		return nil
	}
	if m.machineArn == "" {
		u.State = report.MFANotNotified
		return nil
	}
	arn, ok := m.latest[statemachines.MFAEnforcementPrefix(u.Account, u.Name)]
	if !ok {
		u.State, u.Detail = report.MFANotNotified, "the next hygiene run tells them how to enrol"
		return nil
	}
	out, err := api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: &arn})
	var none *sfntypes.ExecutionDoesNotExist
	switch {
	case errors.As(err, &none):
		// Listed, then gone: AWS keeps a closed execution 90 days.
		u.State, u.Detail = report.MFANotNotified, "the next hygiene run tells them how to enrol"
		return nil
	case err != nil:
		return fmt.Errorf("report: the MFA execution of %s/%s: %w", u.Account, u.Name, err)
	}
	var input struct {
		GraceDeadline time.Time `json:"graceDeadline"`
		DryRun        bool      `json:"dryRun"`
	}
	_ = json.Unmarshal([]byte(aws.ToString(out.Input)), &input) // a bad input leaves the deadline unknown
	u.Deadline, u.Notified = input.GraceDeadline.UTC(), m.notified[arn].UTC()
	if u.Deadline.IsZero() {
		u.Deadline = time.Time{}
	}
	if u.Notified.IsZero() {
		u.Notified = time.Time{}
	}
	switch {
	case out.Status == sfntypes.ExecutionStatusRunning:
		u.State = report.MFAInGrace
		if u.Notified.IsZero() {
			u.Detail = "the enforcement has started; the notice is on its way"
		}
	case input.DryRun:
		u.State, u.Detail = report.MFANeedsPerson, "the enforcement was a dry run: nothing is enforced"
	case out.Status == sfntypes.ExecutionStatusSucceeded:
		// It ended (the user enrolled, or the policy went on and came
		// off again), and the user has no MFA now: the next run starts
		// a new enforcement, with a new notice and grace period.
		u.State = report.MFANotNotified
		u.Detail = fmt.Sprintf("the last enforcement ended on %s; the next hygiene run starts a new one",
			aws.ToTime(out.StopDate).UTC().Format("2006-01-02"))
	default:
		u.State = report.MFANeedsPerson
		u.Detail = fmt.Sprintf("the enforcement ended %s on %s without the policy; the next hygiene run on a later day starts a new one",
			out.Status, aws.ToTime(out.StopDate).UTC().Format("2006-01-02"))
	}
	return nil
}

func describeBaseline(b tasks.PasswordBaseline) string {
	var classes []string
	for _, c := range []struct {
		name string
		on   bool
	}{{"uppercase", b.RequireUppercase}, {"lowercase", b.RequireLowercase}, {"numbers", b.RequireNumbers}, {"symbols", b.RequireSymbols}} {
		if c.on {
			classes = append(classes, c.name)
		}
	}
	s := fmt.Sprintf("minimum length %d", b.MinimumLength)
	if len(classes) > 0 {
		s += ", " + strings.Join(classes, ", ") + " required"
	}
	s += fmt.Sprintf(", reuse prevention %d", b.ReusePrevention)
	if b.MaxAgeDays > 0 {
		s += fmt.Sprintf(", maximum age %d days", b.MaxAgeDays)
	}
	return s
}

// writeHygiene prints the MFA users, the policy's users, the exempt users
// and the password policies, then the MFA audit's breaches.
func writeHygiene(w io.Writer, h *report.Hygiene, records []*audit.Record) {
	fmt.Fprintf(w, "\nconsole users without MFA: %d, with the MFA-required policy: %d, exempt: %d, password policies below the baseline: %d of %d (grace %d days)\n",
		len(h.NoMFA), len(h.Attached), len(h.Exempt), h.NonCompliant(), len(h.PasswordPolicies), h.GraceDays)
	if h.Note != "" {
		fmt.Fprintln(w, h.Note)
	}
	const rows = 20
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	mfa := func(title string, us []report.MFAUser) {
		if len(us) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s (%d)\n", title, len(us))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tUSER\tSTATE\tNOTIFIED\tGRACE DEADLINE\t")
		for i, u := range us {
			if i == rows {
				fmt.Fprintf(tw, "...\t%d more\t\t\t\t\n", len(us)-rows)
				break
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Account, u.Name, u.State, stamp(u.Notified), stamp(u.Deadline), u.Detail)
		}
		tw.Flush()
	}
	mfa("Console users without MFA", h.NoMFA)
	mfa("Users the MFA-required policy is attached to", h.Attached)
	mfa("Exempt users", h.Exempt)
	fmt.Fprintf(w, "\nPassword policy against the baseline (%s)\n", h.Baseline)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tPOLICY\tFINDINGS")
	for _, p := range h.PasswordPolicies {
		state := "meets the baseline"
		switch {
		case !p.Present:
			state = "none set"
		case !p.Compliant:
			state = "below the baseline"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Account, state, strings.Join(p.Findings, "; "))
	}
	tw.Flush()
	breaches := 0
	for _, r := range records {
		breaches += len(r.Breaches)
	}
	if records != nil {
		fmt.Fprintf(w, "\nMFA audit: %d execution(s), %d breach(es)\n", len(records), breaches)
	}
	for _, r := range records {
		for _, b := range r.Breaches {
			fmt.Fprintf(w, "BREACH %s %s: %s (events %s)\n", executionName(r.ExecutionArn), b.Code, b.Message, strings.Trim(fmt.Sprint(b.Events), "[]"))
		}
	}
}
