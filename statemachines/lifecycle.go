package statemachines

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"

	"github.com/keyflow/keyflow/states"
)

// LifecycleExecutionName is the name of the one lifecycle execution of a key:
// "<account>-<key id>-<md5 of account/user/key>". Execution names are unique
// per state machine (for 90 days after the end on AWS), so a key cannot be
// rotated twice at once however often the inventory runs. The user name is
// hashed because it may hold characters (",") that names may not, and make
// the name longer than 80 characters. The inventory computes the same name
// with States.Hash; a test keeps the two equal.
func LifecycleExecutionName(accountID, userName, accessKeyID string) string {
	sum := md5.Sum([]byte(accountID + "/" + userName + "/" + accessKeyID))
	return fmt.Sprintf("%s-%s-%s", accountID, accessKeyID, hex.EncodeToString(sum[:]))
}

// lifecycleNameExpr is LifecycleExecutionName as an intrinsic over a due key.
const lifecycleNameExpr = "States.Format('{}-{}-{}', $.accountId, $.accessKeyId, States.Hash(States.Format('{}/{}/{}', $.accountId, $.userName, $.accessKeyId), 'MD5'))"

// Lifecycle is the staged rotation of one access key, one Standard
// execution per key. Its input is one due key of the inventory (a
// tasks.KeyReport): accountId, userName, accessKeyId, deactivateAt and
// deleteAt (RFC 3339), and optionally action and dryRun.
//
//	CreateKey → NotifyKeyCreated → WaitUntilInactivePoint → DeactivateKey
//	  → (still in use: NotifyStillInUse → wait → check again, at most
//	     StillInUseChecks times, then escalate)
//	  → NotifyKeyDeactivated → WaitUntilBufferPoint → DeleteKey → NotifyKeyDeleted
//
// CreateKey has no Retry: a second create is what the rotation must never
// do by accident, and the handler being idempotent makes a person's rerun
// safe. Every other task retries Throttled with back-off. Every task catches
// every error into a state that says what is left to finish, tells the
// security team and fails the execution with KeyRotationFailed.
func Lifecycle(o Options) (*states.Definition, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	r := o.Resources
	key := func(extra map[string]any) map[string]any {
		p := map[string]any{"accountId.$": "$.accountId", "userName.$": "$.userName"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	notify := func(event string, extra map[string]any) map[string]any {
		return key(merge(map[string]any{"event": event, "accessKeyId.$": "$.accessKeyId", "dryRun.$": "$.dryRun"}, extra))
	}
	defaults := fmt.Sprintf(`{"action":"rotate","dryRun":%t,"inUse":{"checks":0}}`, o.DryRun)

	m := states.NewMachine("keyflow key lifecycle: rotate one access key in stages (create and store, deactivate, delete), on the policy's dates").
		StartAt("Prepare")
	m.Pass("Prepare").
		Comment("Fill the optional fields (action, dryRun, the still-in-use counter) so every later path exists.").
		Parameters(map[string]any{"key.$": "States.JsonMerge(States.StringToJson('" + defaults + "'), $, false)"}).
		OutputPath("$.key").
		Next("CreateKey")

	create := map[string]any{
		"oldAccessKeyId.$":    "$.accessKeyId",
		"deleteInactiveKey.$": "States.ArrayContains(States.Array('rotate-after-deleting-inactive'), $.action)",
		"dryRun.$":            "$.dryRun",
	}
	if o.SecretsKMSKeyID != "" {
		create["kmsKeyId"] = o.SecretsKMSKeyID
	}
	m.Task("CreateKey", r.CreateKey).
		Comment("No Retry on purpose: the create is never repeated automatically; the handler is idempotent, so a person can rerun it.").
		Parameters(key(create)).
		ResultPath("$.created").
		Catch([]string{"States.ALL"}, "CreateKeyFailed", "$.error").
		Next("DryRun?")
	m.Choice("DryRun?").
		Comment("A dry run stops after the create reported what it would do: waiting 90 days to change nothing helps nobody.").
		When(states.Compare("$.dryRun", "BooleanEquals", true), "DryRunDone").
		Default("NotifyKeyCreated")
	m.Succeed("DryRunDone")

	m.Task("NotifyKeyCreated", r.Notify).
		Parameters(notify("KeyCreated", map[string]any{"newAccessKeyId.$": "$.created.accessKeyId", "secretArn.$": "$.created.secretArn"})).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "NotifyKeyCreatedFailed", "$.error").
		Next("WaitUntilInactivePoint")
	m.Wait("WaitUntilInactivePoint").TimestampPath("$.deactivateAt").Next("DeactivateKey")

	m.Task("DeactivateKey", r.DeactivateKey).
		Comment("An old key used after its replacement was created is a KeyStillInUse result, not an error.").
		Parameters(key(map[string]any{"accessKeyId.$": "$.accessKeyId", "newAccessKeyId.$": "$.created.accessKeyId", "dryRun.$": "$.dryRun"})).
		ResultPath("$.deactivation").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "DeactivateKeyFailed", "$.error").
		Next("StillInUse?")
	m.Choice("StillInUse?").
		When(states.Compare("$.deactivation.result", "StringEquals", "KeyStillInUse"), "CountStillInUse").
		Default("NotifyKeyDeactivated")
	m.Pass("CountStillInUse").
		Parameters(map[string]any{"checks.$": "States.MathAdd($.inUse.checks, 1)"}).
		ResultPath("$.inUse").
		Next("NotifyStillInUse")
	m.Task("NotifyStillInUse", r.Notify).
		Parameters(notify("KeyStillInUse", map[string]any{
			"newAccessKeyId.$": "$.created.accessKeyId",
			"detail.$":         fmt.Sprintf("States.Format('check {} of %d: the old key was last used at {}; move to the new key in {}', $.inUse.checks, $.deactivation.lastUsedDate, $.created.secretArn)", o.StillInUseChecks),
		})).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "DeactivateKeyFailed", "$.error").
		Next("StillInUseLimit?")
	limitNext := "StillInUseEscalation"
	if o.ForceDeactivate {
		limitNext = "ForceDeactivateKey"
	}
	m.Choice("StillInUseLimit?").
		When(states.Compare("$.inUse.checks", "NumericGreaterThanEquals", int64(o.StillInUseChecks)), limitNext).
		Default("WaitStillInUse")
	m.Wait("WaitStillInUse").Seconds(seconds(o.StillInUseWait)).Next("RecheckKeyUse")
	m.Task("RecheckKeyUse", r.DeactivateKey).
		Comment("Only a use since the last check counts now: the owner was told then.").
		Parameters(key(map[string]any{
			"accessKeyId.$": "$.accessKeyId", "newAccessKeyId.$": "$.created.accessKeyId",
			"inUseSince.$": "$.deactivation.checkedAt", "dryRun.$": "$.dryRun",
		})).
		ResultPath("$.deactivation").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "DeactivateKeyFailed", "$.error").
		Next("StillInUse?")
	if o.ForceDeactivate {
		m.Task("ForceDeactivateKey", r.DeactivateKey).
			Comment("Policy: after the last wait the old key goes even if still in use.").
			Parameters(key(map[string]any{"accessKeyId.$": "$.accessKeyId", "newAccessKeyId.$": "$.created.accessKeyId", "force": true, "dryRun.$": "$.dryRun"})).
			ResultPath("$.deactivation").
			Retry(throttled()...).
			Catch([]string{"States.ALL"}, "DeactivateKeyFailed", "$.error").
			Next("NotifyKeyDeactivated")
	} else {
		m.Pass("StillInUseEscalation").
			Parameters(map[string]any{
				"step": "DeactivateKey",
				"detail.$": fmt.Sprintf("States.Format('the old key {} is still in use after %d checks and stays Active; the new key is in {}. "+
					"Left to finish: deactivate the old key once its users moved, delete it after {}', $.accessKeyId, $.created.secretArn, $.deleteAt)", o.StillInUseChecks),
			}).
			ResultPath("$.failure").
			Next("NotifyRotationFailed")
	}

	m.Task("NotifyKeyDeactivated", r.Notify).
		Parameters(notify("KeyDeactivated", map[string]any{"newAccessKeyId.$": "$.created.accessKeyId"})).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "NotifyKeyDeactivatedFailed", "$.error").
		Next("WaitUntilBufferPoint")
	m.Wait("WaitUntilBufferPoint").TimestampPath("$.deleteAt").Next("DeleteKey")
	m.Task("DeleteKey", r.DeleteKey).
		Comment("The handler deletes only an Inactive key whose buffer point passed.").
		Parameters(key(map[string]any{"accessKeyId.$": "$.accessKeyId", "notBefore.$": "$.deleteAt", "dryRun.$": "$.dryRun"})).
		ResultPath("$.deletion").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "DeleteKeyFailed", "$.error").
		Next("NotifyKeyDeleted")
	m.Task("NotifyKeyDeleted", r.Notify).
		Parameters(notify("KeyDeleted", map[string]any{"newAccessKeyId.$": "$.created.accessKeyId"})).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "NotifyKeyDeletedFailed", "$.error").
		Next("Rotated")
	m.Succeed("Rotated")

	// What is left to finish after each failure, for the security team. The
	// texts name keys and dates only: never a cause, which could quote a
	// handler's input.
	failed := func(state, step, format string, args ...string) {
		all := append([]string{"$.error.Error"}, args...)
		expr := "States.Format('" + step + " failed ({}): " + format + "'"
		for _, a := range all {
			expr += ", " + a
		}
		m.Pass(state).
			Parameters(map[string]any{"step": step, "error.$": "$.error.Error", "detail.$": expr + ")"}).
			ResultPath("$.failure").
			Next("NotifyRotationFailed")
	}
	failed("CreateKeyFailed", "CreateKey",
		"the old key {} is untouched. Left to finish: find out why and start the rotation again (the create is idempotent)", "$.accessKeyId")
	failed("NotifyKeyCreatedFailed", "NotifyKeyCreated",
		"the new key is stored in {} but the owner was not told. Left to finish: tell the owner, deactivate the old key {} after {}, delete it after {}",
		"$.created.secretArn", "$.accessKeyId", "$.deactivateAt", "$.deleteAt")
	failed("DeactivateKeyFailed", "DeactivateKey",
		"the new key is stored in {}; the old key {} may still be Active. Left to finish: deactivate the old key (check its last use first), delete it after {}",
		"$.created.secretArn", "$.accessKeyId", "$.deleteAt")
	failed("NotifyKeyDeactivatedFailed", "NotifyKeyDeactivated",
		"the old key {} is Inactive. Left to finish: tell the owner, delete the old key after {}", "$.accessKeyId", "$.deleteAt")
	failed("DeleteKeyFailed", "DeleteKey",
		"the old key {} is Inactive. Left to finish: delete it (after {})", "$.accessKeyId", "$.deleteAt")
	failed("NotifyKeyDeletedFailed", "NotifyKeyDeleted",
		"the old key {} is deleted and the rotation is complete. Left to finish: tell the owner", "$.accessKeyId")

	m.Task("NotifyRotationFailed", r.Notify).
		Parameters(notify("RotationFailed", map[string]any{"detail.$": "$.failure.detail"})).
		ResultPath("").
		Retry(throttled()...).
		Catch([]string{"States.ALL"}, "RotationFailed", "$.notifyError").
		Next("RotationFailed")
	m.Fail("RotationFailed", "KeyRotationFailed", "").CausePath("$.failure.detail")
	return m.Build()
}

func merge(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
