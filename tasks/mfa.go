package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// DefaultMFAPolicyName is the name the member template gives its copy of
// the MFA-required policy (from policy.MFARequired) in every member
// account, and so the one EnforceMFA attaches there unless told otherwise.
// The central stack's own copy has a name CloudFormation makes up: a member
// stack deployed in the central account too would otherwise clash with it.
const DefaultMFAPolicyName = "keyflow-mfa-required"

// DefaultMFAGraceDays is how long a console user without MFA has to enrol
// after the first notice.
const DefaultMFAGraceDays = 7

// MFAState is a user's console and MFA state, and whether the MFA-required
// policy is attached.
type MFAState struct {
	AccountID      string    `json:"accountId"`
	UserName       string    `json:"userName"`
	ConsoleAccess  bool      `json:"consoleAccess"`
	MFAEnabled     bool      `json:"mfaEnabled"`
	MFADevices     int       `json:"mfaDevices"`
	PolicyArn      string    `json:"policyArn"`
	PolicyAttached bool      `json:"policyAttached"`
	CheckedAt      time.Time `json:"checkedAt"`
}

// CheckMFAInput names the user.
type CheckMFAInput struct {
	AccountID string `json:"accountId"`
	UserName  string `json:"userName"`
}

// CheckMFA reads a user's console access (login profile), MFA devices and
// whether the MFA-required policy is attached. It changes nothing.
type CheckMFA struct {
	Accounts Accounts
	Now      func() time.Time
	Log      *slog.Logger
	// PolicyArn is the central stack's MFA-required policy (the template
	// passes it in the environment), used as is in its own account.
	// MemberPolicyName (DefaultMFAPolicyName when empty) is the member
	// stacks' copy, found in any other account under that name.
	PolicyArn        string
	MemberPolicyName string
}

// Handle implements the handler.
//
// Errors: InvalidInput, UserNotFound, AccountUnavailable, Throttled,
// ServiceError.
func (h *CheckMFA) Handle(ctx context.Context, in CheckMFAInput) (*MFAState, error) {
	if err := validateUser(in.AccountID, in.UserName); err != nil {
		return nil, err
	}
	arn, err := mfaPolicyFor(h.PolicyArn, h.MemberPolicyName, in.AccountID)
	if err != nil {
		return nil, err
	}
	c, err := h.Accounts.IAM(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	st, err := readMFAState(ctx, c, in.AccountID, in.UserName, arn)
	if err != nil {
		return nil, err
	}
	st.CheckedAt = clock(h.Now)
	logger(h.Log).Info("mfa checked", "handler", "check-mfa", "accountId", in.AccountID, "userName", in.UserName,
		"consoleAccess", st.ConsoleAccess, "mfaEnabled", st.MFAEnabled, "policyAttached", st.PolicyAttached)
	return st, nil
}

// readMFAState is the three reads CheckMFA, EnforceMFA and the hygiene
// inventory share.
func readMFAState(ctx context.Context, c IAMAPI, accountID, userName, policyArn string) (*MFAState, error) {
	st := &MFAState{AccountID: accountID, UserName: userName, PolicyArn: policyArn}
	_, err := c.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String(userName)})
	switch {
	case err == nil:
		st.ConsoleAccess = true
	case isNoSuchEntity(err):
		// No login profile, or no user: ListMFADevices tells which.
	default:
		return nil, awsErr("GetLoginProfile", err)
	}
	p := iam.NewListMFADevicesPaginator(c, &iam.ListMFADevicesInput{UserName: aws.String(userName)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if isNoSuchEntity(err) {
				return nil, &UserNotFound{AccountID: accountID, UserName: userName}
			}
			return nil, awsErr("ListMFADevices", err)
		}
		st.MFADevices += len(page.MFADevices)
	}
	st.MFAEnabled = st.MFADevices > 0
	ap := iam.NewListAttachedUserPoliciesPaginator(c, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(userName)})
	for ap.HasMorePages() {
		page, err := ap.NextPage(ctx)
		if err != nil {
			if isNoSuchEntity(err) {
				return nil, &UserNotFound{AccountID: accountID, UserName: userName}
			}
			return nil, awsErr("ListAttachedUserPolicies", err)
		}
		for _, ap := range page.AttachedPolicies {
			if aws.ToString(ap.PolicyArn) == policyArn {
				st.PolicyAttached = true
			}
		}
	}
	return st, nil
}

// mfaPolicyFor is the MFA policy's ARN in accountID. configured is the
// central stack's policy, whose account is the central one: there it is
// used as is. Every other account has the member stack's copy, named
// memberName (DefaultMFAPolicyName when empty). The two cannot share a
// name: the member template may be deployed in the central account too, and
// one account cannot hold two policies of one name.
func mfaPolicyFor(configured, memberName, accountID string) (string, error) {
	if configured == "" {
		return "", &InvalidInput{Field: "policyArn", Reason: "no MFA-required policy configured (KEYFLOW_MFA_POLICY_ARN)"}
	}
	parts := strings.SplitN(configured, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "policy/") {
		return "", &InvalidInput{Field: "policyArn", Reason: fmt.Sprintf("%q is not an IAM policy ARN", truncate(configured))}
	}
	if memberName == "" {
		memberName = DefaultMFAPolicyName
	}
	if !validPolicyName(memberName) {
		return "", &InvalidInput{Field: "memberPolicyName", Reason: fmt.Sprintf("%q is not an IAM policy name (KEYFLOW_MFA_MEMBER_POLICY_NAME)", truncate(memberName))}
	}
	if parts[4] == accountID {
		return configured, nil
	}
	parts[4], parts[5] = accountID, "policy/"+memberName
	return strings.Join(parts, ":"), nil
}

// validPolicyName is IAM's rule for a managed policy's name: 1 to 128 of
// letters, digits and +=,.@-_.
func validPolicyName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+=,.@-_", r)) {
			return false
		}
	}
	return true
}

// EnforceMFAInput says whether to attach or detach the MFA-required policy.
type EnforceMFAInput struct {
	AccountID string `json:"accountId"`
	UserName  string `json:"userName"`
	// Action is "attach" or "detach".
	Action string `json:"action"`
	// GraceDeadline is when the user's grace period ends; attach refuses
	// to act before it, whatever called it.
	GraceDeadline time.Time `json:"graceDeadline,omitzero"`
	DryRun        bool      `json:"dryRun,omitempty"`
}

// Results of EnforceMFA.
const (
	ResultAttached        = "attached"
	ResultAlreadyAttached = "already-attached"
	ResultEnrolled        = "enrolled" // attach skipped: the user has MFA now
	ResultNoConsole       = "no-console-access"
	ResultDetached        = "detached"
	ResultNotAttached     = "not-attached"
	ResultWouldAttach     = "would-attach"
	ResultWouldDetach     = "would-detach"
)

// EnforceMFAOutput says what was done.
type EnforceMFAOutput struct {
	AccountID string    `json:"accountId"`
	UserName  string    `json:"userName"`
	Action    string    `json:"action"`
	Result    string    `json:"result"`
	Changed   bool      `json:"changed"`
	PolicyArn string    `json:"policyArn"`
	At        time.Time `json:"at"`
	DryRun    bool      `json:"dryRun"`
}

// EnforceMFA attaches the MFA-required policy to a console user who still
// has no MFA device, or detaches it. Both are idempotent: attaching an
// attached policy and detaching a detached one report so and succeed.
// Attach reads the user again first: someone who enrolled a minute ago is
// not locked out by a check made before.
type EnforceMFA struct {
	Accounts Accounts
	Now      func() time.Time
	Log      *slog.Logger
	// PolicyArn and MemberPolicyName: as CheckMFA's.
	PolicyArn        string
	MemberPolicyName string
}

// GracePeriodNotOver is an attach asked for before the user's deadline.
type GracePeriodNotOver struct {
	UserName      string
	GraceDeadline time.Time
	Now           time.Time
}

func (e *GracePeriodNotOver) Error() string {
	return fmt.Sprintf("tasks: grace period of user %q ends at %s, it is %s", e.UserName,
		e.GraceDeadline.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}

// PolicyNotFound is an MFA-required policy that does not exist in the
// account: the member stack was not deployed there.
type PolicyNotFound struct {
	AccountID string
	PolicyArn string
}

func (e *PolicyNotFound) Error() string {
	return fmt.Sprintf("tasks: policy %q not found in account %s", e.PolicyArn, e.AccountID)
}

// Handle implements the handler.
//
// Errors: InvalidInput, UserNotFound, PolicyNotFound, GracePeriodNotOver,
// AccountUnavailable, Throttled, ServiceError.
func (h *EnforceMFA) Handle(ctx context.Context, in EnforceMFAInput) (*EnforceMFAOutput, error) {
	if err := validateUser(in.AccountID, in.UserName); err != nil {
		return nil, err
	}
	if in.Action != "attach" && in.Action != "detach" {
		return nil, &InvalidInput{Field: "action", Reason: fmt.Sprintf("%q is neither attach nor detach", truncate(in.Action))}
	}
	now := clock(h.Now)
	if in.Action == "attach" {
		if in.GraceDeadline.IsZero() {
			return nil, &InvalidInput{Field: "graceDeadline", Reason: "attach needs the user's grace deadline"}
		}
		if now.Before(in.GraceDeadline) {
			return nil, &GracePeriodNotOver{UserName: in.UserName, GraceDeadline: in.GraceDeadline, Now: now}
		}
	}
	arn, err := mfaPolicyFor(h.PolicyArn, h.MemberPolicyName, in.AccountID)
	if err != nil {
		return nil, err
	}
	c, err := h.Accounts.IAM(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	st, err := readMFAState(ctx, c, in.AccountID, in.UserName, arn)
	if err != nil {
		return nil, err
	}
	out := &EnforceMFAOutput{AccountID: in.AccountID, UserName: in.UserName, Action: in.Action, PolicyArn: arn, At: now, DryRun: in.DryRun}
	log := logger(h.Log).With("handler", "enforce-mfa", "accountId", in.AccountID, "userName", in.UserName, "action", in.Action)
	switch {
	case in.Action == "attach" && st.PolicyAttached:
		out.Result = ResultAlreadyAttached
	case in.Action == "attach" && st.MFAEnabled:
		out.Result = ResultEnrolled
	case in.Action == "attach" && !st.ConsoleAccess:
		out.Result = ResultNoConsole
	case in.Action == "attach" && in.DryRun:
		out.Result = ResultWouldAttach
	case in.Action == "attach":
		if _, err := c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(in.UserName), PolicyArn: aws.String(arn)}); err != nil {
			if isNoSuchEntity(err) {
				return nil, &PolicyNotFound{AccountID: in.AccountID, PolicyArn: arn}
			}
			return nil, awsErr("AttachUserPolicy", err)
		}
		out.Result, out.Changed = ResultAttached, true
	case !st.PolicyAttached:
		out.Result = ResultNotAttached
	case in.DryRun:
		out.Result = ResultWouldDetach
	default:
		if _, err := c.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String(in.UserName), PolicyArn: aws.String(arn)}); err != nil && !isNoSuchEntity(err) {
			// NoSuchEntity: detached between our read and now, which is
			// what we wanted.
			return nil, awsErr("DetachUserPolicy", err)
		}
		out.Result, out.Changed = ResultDetached, true
	}
	log.Info("mfa policy", "result", out.Result, "changed", out.Changed)
	return out, nil
}
