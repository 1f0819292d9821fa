package statemachines

import (
	"fmt"

	"github.com/keyflow/keyflow/states"
)

// approvalResource is the Lambda integration with a task token: Step
// Functions invokes the function (Notify, which sends the approval request)
// and waits for SendTaskSuccess. The token goes to the function in its
// payload (so it is in the execution history, readable only with
// states:GetExecutionHistory), never into the message: `keyflow approve`
// finds it in the history and answers as the caller's own IAM identity.
const approvalResource = "arn:aws:states:::lambda:invoke.waitForTaskToken"

// Quarantine is started by an EventBridge rule on CloudTrail IAM write calls
// made by IAM users; its input is that event ({"detail": {"userIdentity":
// {"accountId", "userName"}, "eventName", "eventSource", "eventTime",
// "sourceIPAddress"}}).
//
// It gathers the evidence (the user's groups, policies and active keys, from
// a dry run of the Quarantine handler, which also refuses any member of the
// admins group), ends at once for an admin, and otherwise asks the approvers
// with a task token. The answer ({"decision", "approver", "decidedAt"}, sent
// by `keyflow approve|reject`, the approver taken from
// sts:GetCallerIdentity) or, after ApprovalTimeout or ApprovalHeartbeat, the
// DefaultDecision, is kept in the output under "approval", beside
// "evidence" and "quarantine" (the snapshot that Release undoes).
func Quarantine(o Options) (*states.Definition, error) {
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

	m := states.NewMachine("keyflow quarantine: on an IAM write call by a non-admin IAM user, ask approvers and quarantine the user on approval").
		StartAt("Subject")
	m.Pass("Subject").
		Comment("Who made which call: the subject of every later state.").
		Parameters(map[string]any{
			"accountId.$": "$.detail.userIdentity.accountId",
			"userName.$":  "$.detail.userIdentity.userName",
			"call": map[string]any{
				"eventName.$": "$.detail.eventName", "eventSource.$": "$.detail.eventSource",
				"eventTime.$": "$.detail.eventTime", "sourceIPAddress.$": "$.detail.sourceIPAddress",
			},
			"dryRun": o.DryRun,
		}).
		Next("GatherEvidence")
	m.Task("GatherEvidence", r.Quarantine).
		Comment("A dry run of Quarantine changes nothing and returns the user's groups, policies and active keys; it refuses an admin with NotQuarantinable.").
		Parameters(user(map[string]any{"deactivateKeys": !o.KeepKeysActive, "dryRun": true})).
		ResultSelector(map[string]any{
			"groups.$": "$.snapshot.groups", "attachedPolicyArns.$": "$.snapshot.attachedPolicyArns",
			"inlinePolicyNames.$": "$.snapshot.inlinePolicyNames", "activeAccessKeyIds.$": "$.snapshot.activeAccessKeyIds",
			"takenAt.$": "$.snapshot.takenAt", "alreadyQuarantined.$": "States.ArrayContains(States.Array('AlreadyQuarantined'), $.result)",
		}).
		ResultPath("$.evidence").
		Retry(throttled()...).
		Catch([]string{"NotQuarantinable"}, "CallerIsAdmin", "$.refused").
		Catch([]string{"UserNotFound"}, "UserGone", "$.refused").
		Catch([]string{"States.ALL"}, "GatherEvidenceFailed", "$.error").
		Next("AdminCheck")
	m.Pass("AdminCheck").
		Parameters(map[string]any{"isAdmin.$": fmt.Sprintf("States.ArrayContains($.evidence.groups, '%s')", o.AdminsGroup)}).
		ResultPath("$.admin").
		Next("Admin?")
	m.Choice("Admin?").
		When(states.Compare("$.admin.isAdmin", "BooleanEquals", true), "CallerIsAdmin").
		Default("AskApproval")
	m.Succeed("CallerIsAdmin").Comment("Admins are trusted with IAM writes: nothing to decide.")
	m.Succeed("UserGone").Comment("The user no longer exists: nothing left to quarantine.")

	m.Task("AskApproval", approvalResource).
		Comment("Notify sends the request (evidence and how to answer); the token is in the payload, never in the message.").
		Parameters(map[string]any{
			"FunctionName": r.Notify,
			"Payload": notify("ApprovalRequested", map[string]any{
				"taskToken.$": "$$.Task.Token", "executionArn.$": "$$.Execution.Id",
				"detail.$": "States.Format('quarantine requested: {} called {}:{} at {} from {}; groups {}; attached policies {}; inline policies {}; active keys {}. " +
					"Answer with: keyflow approve {} (or keyflow reject)', $.userName, $.call.eventSource, $.call.eventName, $.call.eventTime, $.call.sourceIPAddress, " +
					"States.JsonToString($.evidence.groups), States.JsonToString($.evidence.attachedPolicyArns), States.JsonToString($.evidence.inlinePolicyNames), " +
					"States.JsonToString($.evidence.activeAccessKeyIds), $$.Execution.Id)",
			}),
		}).
		TimeoutSeconds(seconds(o.ApprovalTimeout)).
		HeartbeatSeconds(seconds(o.ApprovalHeartbeat)).
		ResultPath("$.approval").
		Retry(throttled()...).
		Catch([]string{"States.Timeout", "States.HeartbeatTimeout"}, "ApplyDefaultDecision", "$.timeout").
		Catch([]string{"States.ALL"}, "AskApprovalFailed", "$.error").
		Next("Decision?")
	m.Pass("ApplyDefaultDecision").
		Comment("Nobody answered in time: the configured policy decides, and says so.").
		Parameters(map[string]any{
			"decision": string(o.DefaultDecision), "approver": "keyflow:default-decision-on-timeout",
			"decidedAt.$": "$$.State.EnteredTime", "timedOut": true,
		}).
		ResultPath("$.approval").
		Next("Decision?")
	m.Choice("Decision?").
		When(states.Compare("$.approval.decision", "StringEquals", string(Approve)), "QuarantineUser").
		When(states.Compare("$.approval.decision", "StringEquals", string(Reject)), "NotifyRejected").
		Default("InvalidDecision")

	m.Task("QuarantineUser", r.Quarantine).
		Parameters(user(map[string]any{"deactivateKeys": !o.KeepKeysActive, "dryRun.$": "$.dryRun"})).
		ResultPath("$.quarantine").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "QuarantineUserFailed", "$.error").
		Next("NotifyQuarantined")
	m.Task("NotifyQuarantined", r.Notify).
		Parameters(notify("Quarantined", map[string]any{"detail.$": "States.Format('approved by {} at {}; release with the release workflow', $.approval.approver, $.approval.decidedAt)"})).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "NotifyQuarantinedFailed", "$.error").
		Next("Quarantined")
	m.Succeed("Quarantined")
	m.Task("NotifyRejected", r.Notify).
		Parameters(notify("QuarantineRejected", map[string]any{"detail.$": "States.Format('rejected by {} at {}', $.approval.approver, $.approval.decidedAt)"})).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "NotifyRejectedFailed", "$.error").
		Next("NotQuarantined")
	m.Succeed("NotQuarantined")

	failure(m, "InvalidDecision", "Decision", "", "the answer was neither approve nor reject; nothing was changed. Left to finish: start the quarantine again")
	failure(m, "GatherEvidenceFailed", "GatherEvidence", "$.error.Error", "nothing was changed. Left to finish: review the call and start the quarantine again")
	failure(m, "AskApprovalFailed", "AskApproval", "$.error.Error", "no approval was asked; nothing was changed. Left to finish: start the quarantine again")
	failure(m, "QuarantineUserFailed", "QuarantineUser", "$.error.Error", "the quarantine was approved but may be partly applied. Left to finish: run the quarantine again (it is idempotent) or release the user")
	failure(m, "NotifyQuarantinedFailed", "NotifyQuarantined", "$.error.Error", "the user is quarantined. Left to finish: tell the owner")
	failure(m, "NotifyRejectedFailed", "NotifyRejected", "$.error.Error", "the quarantine was rejected and nothing changed. Left to finish: tell the owner")
	notifyFailure(m, r, "QuarantineFailed")
	return m.Build()
}

// failure adds a Pass that records what is left to finish after step
// failed (errPath names its error, "" for none) and goes to the shared
// notification of the security team.
func failure(m *states.Machine, state, step, errPath, left string) {
	detail := fmt.Sprintf("States.Format('%s failed: %s', $.userName)", step, "user {}: "+left)
	if errPath != "" {
		detail = fmt.Sprintf("States.Format('%s failed ({}): user {}: %s', %s, $.userName)", step, left, errPath)
	}
	m.Pass(state).
		Parameters(map[string]any{"step": step, "detail.$": detail}).
		ResultPath("$.failure").
		Next("NotifyWorkflowFailed")
}

// notifyFailure tells the security team what failed and what is left, then
// fails the execution with errName, whether or not the message went out.
func notifyFailure(m *states.Machine, r Resources, errName string) {
	m.Task("NotifyWorkflowFailed", r.Notify).
		Parameters(map[string]any{
			"accountId.$": "$.accountId", "userName.$": "$.userName", "event": "WorkflowFailed",
			"detail.$": "$.failure.detail", "dryRun.$": "$.dryRun",
		}).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, errName, "$.notifyError").
		Next(errName)
	m.Fail(errName, errName, "").CausePath("$.failure.detail")
}
