package statemachines

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/keyflow/keyflow/states"
)

// MFAExecutionName is the name of a user's MFA execution.
//
// An enforcement is named by account, user and the UTC day of the hygiene
// inventory that found the user (checkedAt, RFC 3339): two runs on one day
// start one enforcement (the second start is ExecutionAlreadyExists,
// caught), and once it has ended a later day's run can start a new one for
// a user who lost MFA again. On other days the inventory itself keeps a
// second one from starting while the first runs: it lists the running
// enforcements (MFAEnforcementPrefix) and reports their users as
// "enforcing" instead of starting them (tasks.Hygiene).
//
// A release carries the inventory's whole time, so a user who loses and
// regains MFA can be released again. The user name is hashed as in
// LifecycleExecutionName; a name is at most 68 characters.
func MFAExecutionName(action, accountID, userName, checkedAt string) string {
	if action == "release" {
		sum := md5.Sum([]byte(accountID + "/" + userName + "/" + checkedAt))
		return fmt.Sprintf("%s-mfa-release-%s", accountID, hex.EncodeToString(sum[:]))
	}
	day, _, _ := strings.Cut(checkedAt, "T")
	return MFAEnforcementPrefix(accountID, userName) + "-" + day
}

// MFAEnforcementPrefix is what every enforcement of one user is named
// from: the executions of the user's enforcements are those whose names
// start with it (followed by "-" and a day, or nothing: the names before
// the day was added).
func MFAEnforcementPrefix(accountID, userName string) string {
	sum := md5.Sum([]byte(accountID + "/" + userName))
	return fmt.Sprintf("%s-mfa-enforce-%s", accountID, hex.EncodeToString(sum[:]))
}

// The same names as intrinsics over an MFA report, with $.checkedAt added
// by the hygiene machine's ItemSelector.
const (
	mfaEnforceNameExpr = "States.Format('{}-mfa-enforce-{}-{}', $.accountId, States.Hash(States.Format('{}/{}', $.accountId, $.userName), 'MD5'), " +
		"States.ArrayGetItem(States.StringSplit($.checkedAt, 'T'), 0))"
	mfaReleaseNameExpr = "States.Format('{}-mfa-release-{}', $.accountId, States.Hash(States.Format('{}/{}/{}', $.accountId, $.userName, $.checkedAt), 'MD5'))"
)

// MFA enforces MFA on one console user, one Standard execution per user.
// Its input is one user of the hygiene inventory (a tasks.MFAReport):
// accountId, userName, graceDeadline (RFC 3339), and optionally action and
// dryRun.
//
//	CheckMFA → (enrolled, or no console access: DetachIfAttached → end)
//	  → NotifyEnrol (how to enrol, and the deadline) → WaitForEnrolment
//	  (until graceDeadline) → RecheckMFA → (enrolled: end)
//	  → AttachPolicy → NotifyEnforced
//
// The user is told before anything happens and has the whole grace period;
// AttachPolicy's handler refuses to act before the deadline and reads the
// user again, so an enrolment a second before is honoured. Every task
// retries Throttled; every failure tells the security team and fails the
// execution with MFAEnforcementFailed, leaving the user as they were.
func MFA(o Options) (*states.Definition, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	r := o.Resources
	user := func(extra map[string]any) map[string]any {
		return merge(map[string]any{"accountId.$": "$.accountId", "userName.$": "$.userName"}, extra)
	}
	notify := func(event string, extra map[string]any) map[string]any {
		return user(merge(map[string]any{"event": event, "dryRun.$": "$.dryRun"}, extra))
	}
	defaults := fmt.Sprintf(`{"action":"enforce","dryRun":%t}`, o.DryRun)
	enrolled := states.Or(
		states.Compare("$.mfa.mfaEnabled", "BooleanEquals", true),
		states.Compare("$.mfa.consoleAccess", "BooleanEquals", false),
	)

	m := states.NewMachine("keyflow MFA: tell a console user without MFA how to enrol, wait out the grace period, then attach the MFA-required policy; detach it once they enrol").
		StartAt("Prepare")
	m.Pass("Prepare").
		Comment("Fill the optional fields (action, dryRun) so every later path exists.").
		Parameters(map[string]any{"user.$": "States.JsonMerge(States.StringToJson('" + defaults + "'), $, false)"}).
		OutputPath("$.user").
		Next("CheckMFA")
	m.Task("CheckMFA", r.CheckMFA).
		Parameters(user(nil)).
		ResultPath("$.mfa").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "CheckFailed", "$.error").
		Next("Enrolled?")
	m.Choice("Enrolled?").
		Comment("Enrolled, or no console access any more: nothing to enforce; take the policy off if it is on.").
		When(enrolled, "PolicyAttached?").
		When(states.Compare("$.mfa.policyAttached", "BooleanEquals", true), "AlreadyEnforced").
		Default("DryRun?")
	m.Succeed("AlreadyEnforced").Comment("The policy is on and the user still has no MFA: an earlier execution enforced it.")
	m.Choice("PolicyAttached?").
		When(states.Compare("$.mfa.policyAttached", "BooleanEquals", true), "DetachPolicy").
		Default("Compliant")
	m.Succeed("Compliant")
	m.Task("DetachPolicy", r.EnforceMFA).
		Parameters(user(map[string]any{"action": "detach", "dryRun.$": "$.dryRun"})).
		ResultPath("$.enforcement").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "DetachFailed", "$.error").
		Next("NotifyReleased")
	m.Task("NotifyReleased", r.Notify).
		Parameters(notify("MFAReleased", nil)).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "NotifyFailed", "$.error").
		Next("Released")
	m.Succeed("Released")

	m.Choice("DryRun?").
		Comment("A dry run reports the user and stops: waiting a week to change nothing helps nobody.").
		When(states.Compare("$.dryRun", "BooleanEquals", true), "DryRunDone").
		Default("NotifyEnrol")
	m.Succeed("DryRunDone")
	m.Task("NotifyEnrol", r.Notify).
		Comment("The user's only warning: how to enrol, and by when.").
		Parameters(notify("MFARequired", map[string]any{
			"detail.$": "States.Format('enrol an MFA device before {}; after that, every action except enrolling one is denied', $.graceDeadline)",
		})).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "NotifyFailed", "$.error").
		Next("WaitForEnrolment")
	m.Wait("WaitForEnrolment").TimestampPath("$.graceDeadline").Next("RecheckMFA")
	m.Task("RecheckMFA", r.CheckMFA).
		Parameters(user(nil)).
		ResultPath("$.mfa").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "CheckFailed", "$.error").
		Next("StillWithoutMFA?")
	m.Choice("StillWithoutMFA?").
		When(enrolled, "PolicyAttached?").
		When(states.Compare("$.mfa.policyAttached", "BooleanEquals", true), "AlreadyEnforced").
		Default("AttachPolicy")
	m.Task("AttachPolicy", r.EnforceMFA).
		Comment("The handler refuses before the deadline and reads the user again: an enrolment since the check wins.").
		Parameters(user(map[string]any{"action": "attach", "graceDeadline.$": "$.graceDeadline", "dryRun.$": "$.dryRun"})).
		ResultPath("$.enforcement").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "AttachFailed", "$.error").
		Next("Attached?")
	m.Choice("Attached?").
		When(states.Compare("$.enforcement.changed", "BooleanEquals", true), "NotifyEnforced").
		Default("Compliant")
	m.Task("NotifyEnforced", r.Notify).
		Parameters(notify("MFAEnforced", nil)).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "NotifyFailed", "$.error").
		Next("Enforced")
	m.Succeed("Enforced")

	// What is left to finish, for the security team; names and dates only.
	failed := func(state, step, what string) {
		m.Pass(state).
			Parameters(map[string]any{"step": step, "error.$": "$.error.Error",
				"detail.$": "States.Format('" + step + " failed ({}) for user {}: " + what + "', $.error.Error, $.userName)"}).
			ResultPath("$.failure").
			Next("NotifyFailure")
	}
	failed("CheckFailed", "CheckMFA", "nothing was changed. Left to finish: find out why and run the hygiene inventory again")
	failed("AttachFailed", "AttachPolicy", "the MFA-required policy may not be attached. Left to finish: attach it if the user still has no MFA device")
	failed("DetachFailed", "DetachPolicy", "the MFA-required policy may still be attached. Left to finish: detach it")
	failed("NotifyFailed", "Notify", "the user may not have been told. Left to finish: tell the user")
	m.Task("NotifyFailure", r.Notify).
		Parameters(notify("WorkflowFailed", map[string]any{"detail.$": "$.failure.detail"})).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "MFAEnforcementFailed", "$.notifyError").
		Next("MFAEnforcementFailed")
	m.Fail("MFAEnforcementFailed", "MFAEnforcementFailed", "").CausePath("$.failure.detail")
	return m.Build()
}

// Hygiene is the account hygiene inventory: it reports console users
// without MFA and each account's password policy against the baseline,
// starts one MFA execution per user to enforce or release, and, when
// setPasswordPolicy is true, brings non-compliant password policies up to
// the baseline. A dry run starts and sets nothing.
//
// It pages like the key inventory: each Inventory call reads at most
// maxUsers users (tasks.DefaultHygienePageUsers when 0) and returns a
// nextMarker, and the machine loops until there is none, so no payload
// grows with the size of an account or an Organization. Each page's
// starts stay in this history (an inline Map), where the audit checks them
// against the page's exempt users.
func Hygiene(o Options) (*states.Definition, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	r := o.Resources
	defaults := fmt.Sprintf(`{"accountId":"","organization":false,"organizationalUnitIds":[],"exemptions":[],"graceDays":%d,"dryRun":%t,"setPasswordPolicy":false,"maxUsers":0}`,
		int(o.MFAGracePeriod/(24*time.Hour)), o.DryRun)

	start := states.NewMachine("").StartAt("Item")
	start.Pass("Item").
		Comment("The user's report with the run's time and dry-run flag; a release has no grace deadline, so no field is picked by path.").
		Parameters(map[string]any{"item.$": "States.JsonMerge($.user, $.run, false)"}).
		OutputPath("$.item").
		Next("Release?")
	start.Choice("Release?").
		When(states.Compare("$.action", "StringEquals", "release"), "StartRelease").
		Default("StartEnforcement")
	startTask := func(name, nameExpr, already string) {
		start.Task(name, "arn:aws:states:::states:startExecution").
			Parameters(map[string]any{"StateMachineArn": r.MFAStateMachine, "Name.$": nameExpr, "Input.$": "$"}).
			ResultPath("").
			Retry(states.Retrier{
				ErrorEquals:     []string{"StepFunctions.ThrottlingException", "StepFunctions.SdkClientException", "StepFunctions.AWSStepFunctionsException"},
				IntervalSeconds: states.Int(1), MaxAttempts: states.Int(6), BackoffRate: states.Float(2),
				MaxDelaySeconds: states.Int(30), JitterStrategy: "FULL",
			}).
			Catch([]string{"StepFunctions.ExecutionAlreadyExistsException"}, already, "").
			End()
	}
	startTask("StartEnforcement", mfaEnforceNameExpr, "AlreadyEnforcing")
	startTask("StartRelease", mfaReleaseNameExpr, "AlreadyReleasing")
	start.Succeed("AlreadyEnforcing").Comment("An enforcement of this user started today already: one a day, and the inventory reports a running one instead of starting another.")
	start.Succeed("AlreadyReleasing")

	setPolicy := states.NewMachine("").StartAt("Compliant?")
	setPolicy.Choice("Compliant?").
		When(states.Compare("$.report.compliant", "BooleanEquals", true), "AlreadyCompliant").
		Default("SetPasswordPolicy")
	setPolicy.Succeed("AlreadyCompliant")
	setPolicy.Task("SetPasswordPolicy", r.SetPasswordPolicy).
		Parameters(map[string]any{"accountId.$": "$.report.accountId", "baseline.$": "$.report.baseline", "dryRun.$": "$.dryRun"}).
		ResultSelector(map[string]any{"changed.$": "$.changed"}).
		Retry(throttled()...).
		End()

	m := states.NewMachine("keyflow hygiene: find console users without MFA, start one MFA enforcement (or release) per user, and report the password policy against the baseline").
		StartAt("Prepare")
	m.Pass("Prepare").
		Comment("The input overrides the defaults field by field; progress adds up the pages.").
		Parameters(map[string]any{
			"request.$": "States.JsonMerge(States.StringToJson('" + defaults + "'), $, false)",
			"progress": map[string]any{"marker": "", "pages": 0, "consoleUsers": 0, "started": 0, "enforced": 0, "enforcing": 0, "exempt": 0,
				"failedAccounts": 0, "passwordPolicies": 0},
		}).
		Next("Inventory")
	req := map[string]any{"marker.$": "$.progress.marker"}
	for _, f := range []string{"accountId", "organization", "organizationalUnitIds", "exemptions", "graceDays", "dryRun", "maxUsers"} {
		req[f+".$"] = "$.request." + f
	}
	m.Task("Inventory", r.Hygiene).
		Comment("One page: at most maxUsers users read, from where the last page ended, so the report stays far under the 256 KiB payload quota.").
		Parameters(req).
		ResultSelector(map[string]any{
			"checkedAt.$": "$.checkedAt", "users.$": "$.users", "dryRun.$": "$.dryRun", "consoleUsers.$": "$.consoleUsers",
			"enforced.$": "States.ArrayLength($.enforced)", "enforcing.$": "States.ArrayLength($.enforcing)", "exempt.$": "States.ArrayLength($.exempt)",
			"passwordPolicies.$": "$.passwordPolicies", "failedAccounts.$": "States.ArrayLength($.failedAccounts)",
			"nextMarker.$": "$.nextMarker",
		}).
		ResultPath("$.report").
		Retry(throttled()...).
		Next("DryRun?")
	m.Choice("DryRun?").
		When(states.Compare("$.report.dryRun", "BooleanEquals", true), "MorePages?").
		Default("StartMFA")
	m.Map("StartMFA", start).
		ItemsPath("$.report.users").
		ItemSelector(map[string]any{
			"user.$": "$$.Map.Item.Value",
			"run":    map[string]any{"checkedAt.$": "$.report.checkedAt", "dryRun.$": "$.report.dryRun"},
		}).
		MaxConcurrency(int64(o.StartConcurrency)).
		ResultPath("").
		Next("SetPasswordPolicy?")
	m.Choice("SetPasswordPolicy?").
		When(states.Compare("$.request.setPasswordPolicy", "BooleanEquals", true), "SetPasswordPolicies").
		Default("MorePages?")
	m.Map("SetPasswordPolicies", setPolicy).
		ItemsPath("$.report.passwordPolicies").
		ItemSelector(map[string]any{"report.$": "$$.Map.Item.Value", "dryRun.$": "$.report.dryRun"}).
		MaxConcurrency(int64(o.StartConcurrency)).
		ResultPath("").
		Next("MorePages?")
	m.Choice("MorePages?").
		When(states.Compare("$.report.nextMarker", "StringEquals", ""), "Summary").
		Default("NextPage")
	// sums adds this page's counts to progress.
	sums := func(extra map[string]any) map[string]any {
		return merge(map[string]any{
			"pages.$":            "States.MathAdd($.progress.pages, 1)",
			"consoleUsers.$":     "States.MathAdd($.progress.consoleUsers, $.report.consoleUsers)",
			"started.$":          "States.MathAdd($.progress.started, States.ArrayLength($.report.users))",
			"enforced.$":         "States.MathAdd($.progress.enforced, $.report.enforced)",
			"enforcing.$":        "States.MathAdd($.progress.enforcing, $.report.enforcing)",
			"exempt.$":           "States.MathAdd($.progress.exempt, $.report.exempt)",
			"failedAccounts.$":   "States.MathAdd($.progress.failedAccounts, $.report.failedAccounts)",
			"passwordPolicies.$": "States.MathAdd($.progress.passwordPolicies, States.ArrayLength($.report.passwordPolicies))",
		}, extra)
	}
	m.Pass("NextPage").
		Comment("The page's users are started: carry on after them.").
		Parameters(sums(map[string]any{"marker.$": "$.report.nextMarker"})).
		ResultPath("$.progress").
		Next("Inventory")
	m.Pass("Summary").
		Comment("Counts only: the users are in each page's Inventory output in the history.").
		Parameters(sums(map[string]any{"checkedAt.$": "$.report.checkedAt", "dryRun.$": "$.report.dryRun"})).
		End()
	return m.Build()
}
