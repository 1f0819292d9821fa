package statemachines

import (
	"fmt"

	"github.com/keyflow/keyflow/states"
)

// Inventory is the daily scan (EventBridge Scheduler starts it) that starts
// one lifecycle execution per due key. Its input is a tasks.InventoryInput:
// {"organization": true} or {"accountId": "..."}, optionally with
// organizationalUnitIds, exemptions and the periods, which override Options.
//
// It must hold for an Organization with 10,000 due keys, so it never carries
// them all in one payload or one history:
//
//   - ListAccounts runs the inventory once with maxDue 1 and keeps only the
//     account list (a few bytes per account);
//   - EachAccount, a distributed Map, runs one child execution per account
//     (each with its own 25,000-event history), AccountConcurrency at once;
//   - each child pages through its account (at most MaxDuePerAccount keys a
//     page, under 256 KiB) and starts each page's lifecycles with a
//     distributed Map of Express children whose results are discarded, so
//     a page costs its child about fifteen events however many keys it has.
//
// Starting a lifecycle whose execution name exists is not an error: that key
// is already being rotated. Keys that need a person (two active keys both
// due, a rotation already in progress) are reported, not started. A dry run
// starts nothing, because a started execution's name stays taken for 90
// days.
func Inventory(o Options) (*states.Definition, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	r := o.Resources
	defaults := fmt.Sprintf(`{"accountId":"","organization":false,"organizationalUnitIds":[],"exemptions":[],"rotationDays":%d,"inactiveDays":%d,"bufferDays":%d,"maxDue":%d,"dryRun":%t}`,
		o.RotationDays, o.InactiveDays, o.BufferDays, o.MaxDuePerAccount, o.DryRun)
	request := func(over map[string]any) map[string]any {
		p := map[string]any{}
		for _, f := range []string{"accountId", "organization", "organizationalUnitIds", "exemptions", "rotationDays", "inactiveDays", "bufferDays", "maxDue", "dryRun"} {
			p[f+".$"] = "$.request." + f
		}
		for k, v := range over {
			delete(p, k+".$")
			p[k] = v
		}
		return p
	}

	// The per-account child of the distributed Map.
	start := states.NewMachine("").StartAt("Rotatable?")
	start.Choice("Rotatable?").
		When(states.Or(
			states.Compare("$.action", "StringEquals", "rotate"),
			states.Compare("$.action", "StringEquals", "rotate-after-deleting-inactive"),
		), "StartLifecycle").
		Default("NeedsAPerson")
	start.Succeed("NeedsAPerson").Comment("Reported in the account's inventory; a person decides.")
	start.Task("StartLifecycle", "arn:aws:states:::states:startExecution").
		Comment("The name is derived from account, user and key, so a key never has two lifecycles.").
		Parameters(map[string]any{
			"StateMachineArn": r.LifecycleStateMachine,
			"Name.$":          lifecycleNameExpr,
			"Input.$":         "$",
		}).
		ResultPath("").
		Retry(states.Retrier{
			ErrorEquals:     []string{"StepFunctions.ThrottlingException", "StepFunctions.SdkClientException", "StepFunctions.AWSStepFunctionsException"},
			IntervalSeconds: states.Int(1), MaxAttempts: states.Int(6), BackoffRate: states.Float(2),
			MaxDelaySeconds: states.Int(30), JitterStrategy: "FULL",
		}).
		Catch([]string{"StepFunctions.ExecutionAlreadyExistsException"}, "AlreadyRotating", "").
		End()
	start.Succeed("AlreadyRotating")

	account := states.NewMachine("").StartAt("InventoryAccount")
	account.Task("InventoryAccount", r.Inventory).
		Comment("One page of the account's due keys (at most maxDue), from where the last page ended.").
		Parameters(merge(request(nil), map[string]any{"marker.$": "$.progress.marker"})).
		ResultSelector(map[string]any{"due.$": "$.due", "nextMarker.$": "$.nextMarker", "dryRun.$": "$.dryRun", "keys.$": "$.keys"}).
		ResultPath("$.report").
		Retry(throttled()...).
		Next("DryRun?")
	account.Choice("DryRun?").
		When(states.Compare("$.report.dryRun", "BooleanEquals", true), "Summary").
		Default("StartLifecycles")
	account.Map("StartLifecycles", start).
		Comment("A distributed Map: each start is its own child execution, so an account with 10,000 due keys stays far inside this execution's 25,000 history events.").
		Distributed("EXPRESS").
		ItemsPath("$.report.due").
		MaxConcurrency(int64(o.StartConcurrency)).
		ResultPath("").
		Next("MorePages?")
	account.Choice("MorePages?").
		When(states.Compare("$.report.nextMarker", "StringEquals", ""), "Summary").
		Default("NextPage")
	account.Pass("NextPage").
		Comment("The page's keys are started: carry on after them.").
		Parameters(map[string]any{
			"marker.$": "$.report.nextMarker",
			"due.$":    "States.MathAdd($.progress.due, States.ArrayLength($.report.due))",
			"pages.$":  "States.MathAdd($.progress.pages, 1)",
		}).
		ResultPath("$.progress").
		Next("InventoryAccount")
	account.Pass("Summary").
		Comment("A few bytes per account: the distributed Map discards it, the child's history keeps it.").
		Parameters(map[string]any{
			"accountId.$": "$.request.accountId", "keys.$": "$.report.keys",
			"due.$":   "States.MathAdd($.progress.due, States.ArrayLength($.report.due))",
			"pages.$": "States.MathAdd($.progress.pages, 1)", "dryRun.$": "$.report.dryRun",
		}).
		End()

	m := states.NewMachine("keyflow inventory: find the access keys due for rotation in every account and start one lifecycle per key").
		StartAt("Prepare")
	m.Pass("Prepare").
		Comment("The input overrides the policy's defaults field by field.").
		Parameters(map[string]any{"request.$": "States.JsonMerge(States.StringToJson('" + defaults + "'), $, false)"}).
		Next("ListAccounts")
	m.Task("ListAccounts", r.Inventory).
		Comment("The whole scope at once, keeping only the account list: maxDue 1 keeps the payload small.").
		Parameters(request(map[string]any{"maxDue": 1})).
		ResultSelector(map[string]any{"accounts.$": "$.accounts", "failedAccounts.$": "$.failedAccounts", "checkedAt.$": "$.checkedAt"}).
		ResultPath("$.scope").
		Retry(throttled()...).
		Next("EachAccount")
	m.Map("EachAccount", account).
		Distributed("STANDARD").
		ItemsPath("$.scope.accounts").
		ItemSelector(map[string]any{
			"request":  request(map[string]any{"accountId.$": "$$.Map.Item.Value", "organization": false, "organizationalUnitIds": []any{}}),
			"progress": map[string]any{"marker": "", "due": 0, "pages": 0},
		}).
		MaxConcurrency(int64(o.AccountConcurrency)).
		ResultPath("").
		Next("Done")
	m.Succeed("Done")
	return m.Build()
}
