package tasks

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// HygieneInput chooses the accounts, as for the key inventory, and the MFA
// and password-policy settings.
type HygieneInput struct {
	AccountID             string      `json:"accountId,omitempty"`
	Organization          bool        `json:"organization,omitempty"`
	OrganizationalUnitIDs []string    `json:"organizationalUnitIds,omitempty"`
	Exemptions            []Exemption `json:"exemptions,omitempty"`
	// GraceDays (DefaultMFAGraceDays) is how long a user found without MFA
	// has to enrol: each report's graceDeadline is checkedAt plus this.
	GraceDays        int               `json:"graceDays,omitempty"`
	PasswordBaseline *PasswordBaseline `json:"passwordBaseline,omitempty"`
	DryRun           bool              `json:"dryRun,omitempty"`
	// MaxUsers (DefaultHygienePageUsers) bounds one call: it reads at most
	// this many users (and counts each account's password policy as one),
	// so that its output stays far below Step Functions' 256 KiB payload
	// quota however large the account.
	MaxUsers int `json:"maxUsers,omitempty"`
	// Marker carries on where the previous call stopped (its NextMarker),
	// in one account or across an Organization.
	Marker string `json:"marker,omitempty"`
}

// DefaultHygienePageUsers is how many users one hygiene call reads: a
// report is at most about 600 bytes (names, an exemption's reason), so a
// page is at most about 120 KB.
const DefaultHygienePageUsers = 200

// maxHygienePageUsers is the largest page asked for: IAM's own page limit.
const maxHygienePageUsers = 1000

// MFAReport is a console user without MFA, or a user whose MFA policy can
// come off.
type MFAReport struct {
	AccountID string `json:"accountId"`
	UserName  string `json:"userName"`
	// Action is "enforce" (console access, no MFA, policy not attached:
	// notify, wait, attach), "enforcing" (the same, but an enforcement of
	// the user is running: its grace period runs, nothing is started),
	// "enforced" (the policy is already attached and the user still has no
	// MFA), "release" (the policy is attached but the user has enrolled, or
	// has no console access any more: detach it) or "exempt".
	Action           string    `json:"action"`
	ConsoleAccess    bool      `json:"consoleAccess"`
	MFAEnabled       bool      `json:"mfaEnabled"`
	PolicyAttached   bool      `json:"policyAttached"`
	PasswordLastUsed time.Time `json:"passwordLastUsed,omitzero"`
	GraceDeadline    time.Time `json:"graceDeadline,omitzero"`
	ExemptReason     string    `json:"exemptReason,omitempty"`
	ExemptOwner      string    `json:"exemptOwner,omitempty"`
	ExemptUntil      time.Time `json:"exemptUntil,omitzero"`
	DryRun           bool      `json:"dryRun,omitempty"`
}

// HygieneOutput is the account hygiene report: the users the MFA workflow
// acts on (Users, actions enforce and release), those it reports only
// (Enforcing: an enforcement is running; Enforced; Exempt), and each
// account's password policy against the baseline.
type HygieneOutput struct {
	CheckedAt        time.Time              `json:"checkedAt"`
	GraceDays        int                    `json:"graceDays"`
	Accounts         []string               `json:"accounts"`
	FailedAccounts   []AccountFailure       `json:"failedAccounts"`
	ConsoleUsers     int                    `json:"consoleUsers"`
	Users            []MFAReport            `json:"users"`
	Enforced         []MFAReport            `json:"enforced"`
	Enforcing        []MFAReport            `json:"enforcing"`
	Exempt           []MFAReport            `json:"exempt"`
	LapsedExemptions []Exemption            `json:"lapsedExemptions"`
	PasswordPolicies []PasswordPolicyReport `json:"passwordPolicies"`
	DryRun           bool                   `json:"dryRun"`
	// NextMarker is where the next call (with it as Marker) carries on;
	// empty when every account was read to its end. An account's password
	// policy is reported on the page that reads its first users.
	NextMarker string `json:"nextMarker"`
}

// Hygiene is the account hygiene inventory: console users without MFA and
// the password policy. It reads only; the MFA workflow acts on its Users.
// It is a handler of its own, beside the key Inventory, so that a slow
// console walk (three calls per user) never delays key rotation.
// It pages: one call reads at most MaxUsers users, and the workflow loops
// on NextMarker.
type Hygiene struct {
	Accounts Accounts
	Now      func() time.Time
	Log      *slog.Logger
	// PolicyArn and MemberPolicyName: as CheckMFA's.
	PolicyArn        string
	MemberPolicyName string
	// Executions lists the running executions of MFAStateMachineArn (the
	// MFA workflow), in the deployment's own account. A user without MFA
	// whose enforcement is running is reported as "enforcing" and not
	// started again: an enforcement is named by the day it starts
	// (statemachines.MFAExecutionName), so the name alone keeps only the
	// runs of one day from starting a second. Required unless DryRun.
	Executions         ExecutionsAPI
	MFAStateMachineArn string
}

// ExecutionsAPI is the Step Functions surface of Hygiene.
type ExecutionsAPI interface {
	ListExecutions(ctx context.Context, in *sfn.ListExecutionsInput, optFns ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error)
}

// MFAEnforcementPrefix is how every MFA enforcement execution of a user is
// named: this, "-" and the day it started. statemachines.MFAExecutionName
// builds the names (a test there keeps the two equal; tasks must not
// import it).
func MFAEnforcementPrefix(accountID, userName string) string {
	sum := md5.Sum([]byte(accountID + "/" + userName))
	return fmt.Sprintf("%s-mfa-enforce-%s", accountID, hex.EncodeToString(sum[:]))
}

// runningEnforcements are the MFA enforcements in progress, by
// MFAEnforcementPrefix, listed once per call and only when a user needs
// them.
type runningEnforcements struct {
	h      *Hygiene
	listed bool
	names  map[string]bool
}

func (r *runningEnforcements) running(ctx context.Context, accountID, userName string) (bool, error) {
	if r.h.Executions == nil || r.h.MFAStateMachineArn == "" {
		return false, nil // a dry run without them: nothing is started anyway
	}
	if !r.listed {
		r.names = map[string]bool{}
		in := &sfn.ListExecutionsInput{StateMachineArn: aws.String(r.h.MFAStateMachineArn), StatusFilter: sfntypes.ExecutionStatusRunning, MaxResults: 1000}
		for {
			out, err := r.h.Executions.ListExecutions(ctx, in)
			if err != nil {
				return false, awsErr("ListExecutions", err)
			}
			for _, x := range out.Executions {
				name := aws.ToString(x.Name)
				// The day after the prefix ("-2026-03-01"), if any: the
				// names from before the day was added have none.
				if i := len(name) - len("-2006-01-02"); i > 0 && name[i] == '-' {
					if _, err := time.Parse("2006-01-02", name[i+1:]); err == nil {
						name = name[:i]
					}
				}
				r.names[name] = true
			}
			if out.NextToken == nil {
				break
			}
			in.NextToken = out.NextToken
		}
		r.listed = true
	}
	return r.names[MFAEnforcementPrefix(accountID, userName)], nil
}

// Handle implements the handler.
//
// Errors: InvalidInput, AccountUnavailable (single-account mode), Throttled,
// ServiceError.
func (h *Hygiene) Handle(ctx context.Context, in HygieneInput) (*HygieneOutput, error) {
	inv := InventoryInput{AccountID: in.AccountID, Organization: in.Organization, OrganizationalUnitIDs: in.OrganizationalUnitIDs, Exemptions: in.Exemptions}
	if err := inv.validate(); err != nil {
		return nil, err
	}
	if in.GraceDays < 0 || in.GraceDays > 365 {
		return nil, &InvalidInput{Field: "graceDays", Reason: fmt.Sprintf("%d is outside 0 to 365", in.GraceDays)}
	}
	if in.MaxUsers < 0 || in.MaxUsers > maxHygienePageUsers {
		return nil, &InvalidInput{Field: "maxUsers", Reason: fmt.Sprintf("%d is outside 0 to %d", in.MaxUsers, maxHygienePageUsers)}
	}
	from, fromMarker, err := parseHygieneMarker(in.Marker)
	if err != nil {
		return nil, err
	}
	if !in.Organization && from != "" && from != in.AccountID {
		return nil, &InvalidInput{Field: "marker", Reason: fmt.Sprintf("continues account %s, not %s", from, in.AccountID)}
	}
	base := DefaultPasswordBaseline
	if in.PasswordBaseline != nil {
		base = *in.PasswordBaseline
	}
	if err := base.validate(); err != nil {
		return nil, err
	}
	if _, err := mfaPolicyFor(h.PolicyArn, h.MemberPolicyName, "000000000000"); err != nil {
		return nil, err
	}
	if !in.DryRun && (h.Executions == nil || h.MFAStateMachineArn == "") {
		return nil, &InvalidInput{Field: "mfaStateMachineArn",
			Reason: "no MFA state machine configured (KEYFLOW_MFA_STATE_MACHINE_ARN): running enforcements cannot be told apart, and each day's run would start another"}
	}
	now := clock(h.Now)
	grace := orDefault(in.GraceDays, DefaultMFAGraceDays)
	out := &HygieneOutput{
		CheckedAt: now, GraceDays: grace, DryRun: in.DryRun, Accounts: []string{}, FailedAccounts: []AccountFailure{},
		Users: []MFAReport{}, Enforced: []MFAReport{}, Enforcing: []MFAReport{}, Exempt: []MFAReport{}, LapsedExemptions: []Exemption{}, PasswordPolicies: []PasswordPolicyReport{},
	}
	var live []Exemption
	for _, e := range in.Exemptions {
		if !e.Expires.After(now) {
			out.LapsedExemptions = append(out.LapsedExemptions, e)
			continue
		}
		live = append(live, e)
	}
	type account struct {
		id  string
		ous []string
	}
	accounts := []account{{id: in.AccountID}}
	if in.Organization {
		orgc, err := h.Accounts.Organizations(ctx)
		if err != nil {
			return nil, err
		}
		paths, err := walkOrganization(ctx, orgc)
		if err != nil {
			return nil, err
		}
		accounts = accounts[:0]
		for id, ous := range paths {
			if len(in.OrganizationalUnitIDs) > 0 && !intersects(ous, in.OrganizationalUnitIDs) {
				continue
			}
			accounts = append(accounts, account{id, ous})
		}
		sort.Slice(accounts, func(i, j int) bool { return accounts[i].id < accounts[j].id })
	}
	log := logger(h.Log).With("handler", "hygiene")
	deadline := now.Add(time.Duration(grace) * 24 * time.Hour)
	// budget is what is left of this page: each user read and each
	// password policy reported counts one.
	budget := orDefault(in.MaxUsers, DefaultHygienePageUsers)
	running := &runningEnforcements{h: h}
	for _, a := range accounts {
		marker := ""
		switch {
		case a.id < from:
			continue // read on an earlier page
		case a.id == from:
			marker = fromMarker
		}
		if budget <= 0 {
			out.NextMarker = a.id
			break
		}
		c, err := h.Accounts.IAM(ctx, a.id)
		var next string
		if err == nil {
			next, err = h.hygieneAccount(ctx, c, a.id, a.ous, live, base, deadline, in.DryRun, marker, &budget, running, out)
		}
		if err != nil {
			if !in.Organization || ctx.Err() != nil {
				return nil, err
			}
			log.Warn("account skipped", "accountId", a.id, "error", err.Error())
			out.FailedAccounts = append(out.FailedAccounts, AccountFailure{AccountID: a.id, Error: err.Error(), ErrorType: errorType(err)})
			budget--
			continue
		}
		out.Accounts = append(out.Accounts, a.id)
		if next != "" {
			out.NextMarker = a.id + ":" + next
			break
		}
	}
	log.Info("hygiene done", "accounts", len(out.Accounts), "consoleUsers", out.ConsoleUsers, "users", len(out.Users), "enforcing", len(out.Enforcing), "exempt", len(out.Exempt),
		"more", out.NextMarker != "")
	return out, nil
}

// parseHygieneMarker splits a NextMarker: the account to carry on in and,
// after a colon, the IAM marker within it (none: from its first user).
func parseHygieneMarker(m string) (account, iamMarker string, err error) {
	if m == "" {
		return "", "", nil
	}
	account, iamMarker, _ = strings.Cut(m, ":")
	if !validAccountID(account) {
		return "", "", &InvalidInput{Field: "marker", Reason: fmt.Sprintf("%q is not a hygiene marker (account[:marker])", truncate(m))}
	}
	return account, iamMarker, nil
}

// hygieneAccount reads one account from marker into out until the account
// ends or the budget is spent, and returns the IAM marker to carry on from
// (empty: the account is done). The password policy is read on the
// account's first page only, so that it is reported once.
func (h *Hygiene) hygieneAccount(ctx context.Context, c IAMAPI, accountID string, ous []string, exemptions []Exemption,
	base PasswordBaseline, deadline time.Time, dryRun bool, marker string, budget *int, running *runningEnforcements, out *HygieneOutput) (string, error) {
	var pp *PasswordPolicyReport
	if marker == "" {
		cur, err := readPasswordPolicy(ctx, c)
		if err != nil {
			return "", err
		}
		r := comparePasswordPolicy(accountID, cur, base)
		pp = &r
		*budget--
	}
	arn, err := mfaPolicyFor(h.PolicyArn, h.MemberPolicyName, accountID)
	if err != nil {
		return "", err
	}
	var users []MFAReport
	var enforced, enforcing, exempt []MFAReport
	consoleUsers := 0
	in := &iam.ListUsersInput{}
	if marker != "" {
		in.Marker = aws.String(marker)
	}
	next := ""
	for {
		// At least one user a call: a page spent on the password policy
		// alone must still move on.
		in.MaxItems = aws.Int32(int32(max(1, *budget)))
		page, err := c.ListUsers(ctx, in)
		if err != nil {
			return "", awsErr("ListUsers", err)
		}
		*budget -= len(page.Users)
		for _, u := range page.Users {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			name := aws.ToString(u.UserName)
			st, err := readMFAState(ctx, c, accountID, name, arn)
			if _, gone := err.(*UserNotFound); gone {
				continue // deleted while we listed
			} else if err != nil {
				return "", err
			}
			if st.ConsoleAccess {
				consoleUsers++
			}
			r := MFAReport{AccountID: accountID, UserName: name, ConsoleAccess: st.ConsoleAccess, MFAEnabled: st.MFAEnabled,
				PolicyAttached: st.PolicyAttached, PasswordLastUsed: aws.ToTime(u.PasswordLastUsed).UTC(), DryRun: dryRun}
			if u.PasswordLastUsed == nil {
				r.PasswordLastUsed = time.Time{}
			}
			switch {
			case st.PolicyAttached && (st.MFAEnabled || !st.ConsoleAccess):
				r.Action = "release"
			case st.PolicyAttached:
				r.Action = "enforced"
			case st.ConsoleAccess && !st.MFAEnabled:
				r.Action, r.GraceDeadline = "enforce", deadline
			default:
				continue
			}
			// An exempt user is reported and never touched, not even to take
			// the policy off: whoever owns the exemption owns the user.
			ex, err := (&Inventory{}).exemption(ctx, c, accountID, name, ous, exemptions)
			if err != nil {
				return "", err
			}
			if ex != nil {
				r.Action, r.GraceDeadline = "exempt", time.Time{}
				r.ExemptReason, r.ExemptOwner, r.ExemptUntil = ex.Reason, ex.Owner, ex.Expires
				exempt = append(exempt, r)
				continue
			}
			if r.Action == "enforced" {
				enforced = append(enforced, r)
				continue
			}
			if r.Action == "enforce" {
				on, err := running.running(ctx, accountID, name)
				if err != nil {
					return "", err
				}
				if on {
					// Its own grace deadline stands; the one computed
					// here would be a second, later one.
					r.Action, r.GraceDeadline = "enforcing", time.Time{}
					enforcing = append(enforcing, r)
					continue
				}
			}
			users = append(users, r)
		}
		if !page.IsTruncated || page.Marker == nil {
			break
		}
		in.Marker = page.Marker
		if *budget <= 0 {
			next = aws.ToString(page.Marker)
			break
		}
	}
	out.ConsoleUsers += consoleUsers
	out.Users = append(out.Users, users...)
	out.Enforced = append(out.Enforced, enforced...)
	out.Enforcing = append(out.Enforcing, enforcing...)
	out.Exempt = append(out.Exempt, exempt...)
	if pp != nil {
		out.PasswordPolicies = append(out.PasswordPolicies, *pp)
	}
	return next, nil
}
