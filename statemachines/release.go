package statemachines

import (
	"fmt"

	"github.com/keyflow/keyflow/states"
)

// Release undoes a quarantine after an approval. Its input names the user
// and, best, carries the snapshot the quarantine recorded (the quarantine
// execution's "quarantine" output): {"accountId", "userName", "snapshot"}.
// The handler reactivates exactly the keys the quarantine deactivated and
// removes the deny policy; differences between the snapshot and the user's
// access now are reported as drift, never reverted.
//
// A release is asked for like a quarantine (a task token, TimeoutSeconds,
// HeartbeatSeconds); when nobody answers, the user stays quarantined,
// whatever Options.DefaultDecision says: lifting a quarantine on nobody's
// word would defeat it.
func Release(o Options) (*states.Definition, error) {
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
	defaults := fmt.Sprintf(`{"snapshot":null,"dryRun":%t}`, o.DryRun)

	m := states.NewMachine("keyflow release: undo a quarantine from its snapshot, after approval").StartAt("Prepare")
	m.Pass("Prepare").
		Parameters(map[string]any{"request.$": "States.JsonMerge(States.StringToJson('" + defaults + "'), $, false)"}).
		OutputPath("$.request").
		Next("AskApproval")
	m.Task("AskApproval", approvalResource).
		Parameters(map[string]any{
			"FunctionName": r.Notify,
			"Payload": notify("ApprovalRequested", map[string]any{
				"taskToken.$": "$$.Task.Token", "executionArn.$": "$$.Execution.Id",
				"detail.$": "States.Format('release from quarantine requested for user {}. Answer with: keyflow approve {} (or keyflow reject)', $.userName, $$.Execution.Id)",
			}),
		}).
		TimeoutSeconds(seconds(o.ApprovalTimeout)).
		HeartbeatSeconds(seconds(o.ApprovalHeartbeat)).
		ResultPath("$.approval").
		Retry(throttled()...).
		Catch([]string{"States.Timeout", "States.HeartbeatTimeout"}, "NoAnswer", "$.timeout").
		Catch([]string{"States.ALL"}, "AskApprovalFailed", "$.error").
		Next("Decision?")
	m.Pass("NoAnswer").
		Parameters(map[string]any{
			"decision": string(Reject), "approver": "keyflow:default-decision-on-timeout",
			"decidedAt.$": "$$.State.EnteredTime", "timedOut": true,
		}).
		ResultPath("$.approval").
		Next("Decision?")
	m.Choice("Decision?").
		When(states.Compare("$.approval.decision", "StringEquals", string(Approve)), "ReleaseUser").
		When(states.Compare("$.approval.decision", "StringEquals", string(Reject)), "NotReleased").
		Default("InvalidDecision")
	m.Succeed("NotReleased")
	m.Task("ReleaseUser", r.Release).
		Parameters(user(map[string]any{"snapshot.$": "$.snapshot", "dryRun.$": "$.dryRun"})).
		ResultPath("$.release").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "ReleaseUserFailed", "$.error").
		Next("NotifyReleased")
	m.Task("NotifyReleased", r.Notify).
		Parameters(notify("Released", map[string]any{"detail.$": "States.Format('approved by {} at {}', $.approval.approver, $.approval.decidedAt)"})).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "NotifyReleasedFailed", "$.error").
		Next("Released")
	m.Succeed("Released")

	failure(m, "InvalidDecision", "Decision", "", "the answer was neither approve nor reject; the user stays quarantined. Left to finish: start the release again")
	failure(m, "AskApprovalFailed", "AskApproval", "$.error.Error", "no approval was asked; the user stays quarantined. Left to finish: start the release again")
	failure(m, "ReleaseUserFailed", "ReleaseUser", "$.error.Error", "the release was approved but may be partly applied. Left to finish: run the release again (it is idempotent)")
	failure(m, "NotifyReleasedFailed", "NotifyReleased", "$.error.Error", "the user is released. Left to finish: tell the owner")
	notifyFailure(m, r, "ReleaseFailed")
	return m.Build()
}
