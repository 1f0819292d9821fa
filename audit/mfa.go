package audit

import "slices"

// Breach codes of the MFA workflow and the hygiene inventory.
const (
	// The MFA-required policy attached before the user's grace deadline
	// (the call's graceDeadline, or the execution's), or with no deadline
	// in the history at all.
	CodeMFABeforeGrace = "mfa-policy-before-grace"
	// The MFA-required policy attached with no MFARequired notice to the
	// user earlier in the execution: locked out without being told how to
	// enrol.
	CodeMFAWithoutNotice = "mfa-policy-without-notice"
	// A user the inventory reported exempt was acted on: an MFA execution
	// started for them, or the policy attached or detached in an execution
	// whose input says exempt.
	CodeExemptTouched = "exempt-user-touched"
)

// checkMFA judges the MFA calls among done (in the order they ended): the
// enforce-mfa handler's attach and detach, the notices before them, and the
// hygiene inventory's exempt users against the executions it started.
func (b *builder) checkMFA(done []*call) {
	inputExempt := getStr(b.input, "action") == "exempt" || getStr(b.input, "exemptReason") != ""
	notified := map[string]bool{} // account/user -> MFARequired sent
	exempt := map[string]int64{}  // account/user -> the inventory event listing them
	for _, c := range done {
		a := c.action
		if a == nil || c.failed {
			continue
		}
		user := a.Account + "/" + a.User
		switch {
		case c.handler == "notify" && getStr(c.in, "event") == "MFARequired":
			notified[user] = true

		case c.handler == "hygiene":
			for _, r := range reports(c.out, "exempt") {
				exempt[getStr(r, "accountId")+"/"+getStr(r, "userName")] = c.endID
			}

		case c.handler == "states:startExecution" || c.handler == "states:startExecution.sync":
			in, _ := c.in["Input"].(map[string]any)
			if s, ok := c.in["Input"].(string); ok {
				in = object(s)
			}
			target := getStr(in, "accountId") + "/" + getStr(in, "userName")
			if id, ok := exempt[target]; ok {
				b.breach(CodeExemptTouched, append(slices.Clone(a.Events), id),
					"an execution was started for user %s in account %s, whom the inventory reported exempt", getStr(in, "userName"), getStr(in, "accountId"))
			}

		case c.handler == "enforce-mfa":
			if a.DryRun || c.out["changed"] != true {
				continue
			}
			if inputExempt {
				b.breach(CodeExemptTouched, a.Events, "the MFA policy was %s for user %s in account %s, whom the execution's input marks exempt",
					a.Result, a.User, a.Account)
			}
			if a.Result != "attached" {
				continue
			}
			at := getTime(c.out, "at")
			if at.IsZero() {
				at = a.Time
			}
			deadline := getTime(c.in, "graceDeadline")
			if deadline.IsZero() {
				deadline = getTime(b.input, "graceDeadline")
			}
			switch {
			case deadline.IsZero():
				b.breach(CodeMFABeforeGrace, a.Events, "the MFA policy was attached to user %s in account %s at %s with no grace deadline in the history",
					a.User, a.Account, stamp(at))
			case at.Before(deadline):
				b.breach(CodeMFABeforeGrace, a.Events, "the MFA policy was attached to user %s in account %s at %s, before the grace deadline %s",
					a.User, a.Account, stamp(at), stamp(deadline))
			}
			if !notified[user] {
				b.breach(CodeMFAWithoutNotice, a.Events, "the MFA policy was attached to user %s in account %s, who was never told how to enrol",
					a.User, a.Account)
			}
		}
	}
}

// reports is a list of objects in a handler's output.
func reports(out map[string]any, k string) []map[string]any {
	l, _ := out[k].([]any)
	var rs []map[string]any
	for _, v := range l {
		if m, ok := v.(map[string]any); ok {
			rs = append(rs, m)
		}
	}
	return rs
}
