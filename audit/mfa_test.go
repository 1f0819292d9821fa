package audit_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/states"
)

// mfaWorld stubs the MFA handlers: the user never enrols; enforce-mfa
// attaches whenever asked (a misbehaving handler would not refuse before
// the deadline, which is what the audit must catch).
type mfaWorld struct {
	// exempt and users are the hygiene inventory's report.
	exempt, users []map[string]any
}

func (w mfaWorld) handlers() map[string]engine.Handler {
	reply := func(f func(in map[string]any, at time.Time) any) engine.Handler {
		return engine.HandlerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
			var in map[string]any
			_ = json.Unmarshal(payload, &in)
			at, _ := engine.TaskTime(ctx)
			return json.Marshal(f(in, at))
		})
	}
	return map[string]engine.Handler{
		"keyflow-check-mfa": reply(func(in map[string]any, at time.Time) any {
			return map[string]any{"accountId": in["accountId"], "userName": in["userName"], "consoleAccess": true, "mfaEnabled": false, "policyAttached": false, "checkedAt": at}
		}),
		"keyflow-enforce-mfa": reply(func(in map[string]any, at time.Time) any {
			result := map[string]string{"attach": "attached", "detach": "detached"}[in["action"].(string)]
			return map[string]any{"accountId": in["accountId"], "userName": in["userName"], "action": in["action"], "result": result, "changed": true, "at": at, "dryRun": false}
		}),
		"keyflow-notify": reply(func(in map[string]any, at time.Time) any {
			return map[string]any{"topicArn": "arn:aws:sns:us-east-1:123456789012:keyflow", "subject": in["event"], "recipients": []string{}, "deduplicationId": "x", "dryRun": false}
		}),
		"keyflow-hygiene": reply(func(in map[string]any, at time.Time) any {
			return map[string]any{"checkedAt": at, "users": w.users, "exempt": w.exempt, "enforced": []any{}, "enforcing": []any{}, "consoleUsers": 3,
				"passwordPolicies": []any{}, "failedAccounts": []any{}, "dryRun": false, "nextMarker": ""}
		}),
		"keyflow-set-password-policy": reply(func(map[string]any, time.Time) any { return map[string]any{"changed": false} }),
	}
}

// run runs the named workflow (the real definition, or def when given)
// with the MFA machine compiled beside it, and returns the history of the
// execution and of every MFA execution it started.
func (w mfaWorld) run(t *testing.T, workflow string, def *states.Definition, input any) (string, []types.HistoryEvent, []*engine.Result) {
	t.Helper()
	o := statemachines.Options{Resources: statemachines.Local("us-east-1", "123456789012")}
	children := make(chan *engine.Result, 16)
	e := engine.New(engine.Options{Clock: engine.NewVirtualClock(t0), Handlers: w.handlers(), OnExecutionEnd: func(r *engine.Result) {
		if strings.Contains(r.ExecutionArn, ":execution:"+statemachines.StateMachineName(statemachines.NameMFA)+":") {
			children <- r
		}
	}})
	mfa, err := statemachines.MFA(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Compile(mfa, statemachines.StateMachineName(statemachines.NameMFA)); err != nil {
		t.Fatal(err)
	}
	if def == nil {
		if def, err = statemachines.Build(workflow, o); err != nil {
			t.Fatal(err)
		}
	}
	m, err := e.Compile(def, statemachines.StateMachineName(workflow)+"-under-test")
	if err != nil {
		t.Fatal(err)
	}
	res := m.Run(context.Background(), workflow+"-1", input)
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("%s %s: %s", res.Status, res.Error, res.Cause)
	}
	// The executions the inventory started run on their own: wait for
	// one per reported user.
	var started []*engine.Result
	if workflow == statemachines.NameHygiene {
		for range w.users {
			select {
			case r := <-children:
				started = append(started, r)
			case <-time.After(20 * time.Second):
				t.Fatalf("%d of %d MFA executions ended", len(started), len(w.users))
			}
		}
	}
	return res.ExecutionArn, res.History(), started
}

func mfaInput(deadline time.Time) map[string]any {
	return map[string]any{"accountId": account, "userName": user, "action": "enforce", "graceDeadline": deadline.Format(time.RFC3339)}
}

func codes(t *testing.T, arn string, events []types.HistoryEvent) []string {
	t.Helper()
	rec, err := audit.Build(audit.History{ExecutionArn: arn, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range rec.Breaches {
		out = append(out, b.Code)
	}
	return out
}

// TestMFAInvariants: the real MFA workflow is clean; broken copies of it
// (no wait, no notice, acting on an exempt user) and an inventory that
// starts an execution for an exempt user are each caught, by exactly the
// expected breaches.
func TestMFAInvariants(t *testing.T) {
	deadline := t0.Add(7 * 24 * time.Hour)
	fnArn := func(n string) string { return "arn:aws:lambda:us-east-1:123456789012:function:keyflow-" + n }
	user := func(extra map[string]any) map[string]any {
		p := map[string]any{"accountId.$": "$.accountId", "userName.$": "$.userName"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	notice := func(m *states.Machine, next string) {
		m.Task("Notify", fnArn("notify")).Parameters(user(map[string]any{"event": "MFARequired"})).ResultPath("").Next(next)
	}
	attach := func(m *states.Machine) {
		m.Task("Attach", fnArn("enforce-mfa")).Parameters(user(map[string]any{"action": "attach", "graceDeadline.$": "$.graceDeadline"})).End()
	}
	build := func(t *testing.T, m *states.Machine) *states.Definition {
		d, err := m.Build()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("the real workflow", func(t *testing.T) {
		arn, events, _ := mfaWorld{}.run(t, statemachines.NameMFA, nil, mfaInput(deadline))
		if got := codes(t, arn, events); len(got) != 0 {
			t.Fatalf("breaches %v", got)
		}
	})
	t.Run("attached before the grace deadline", func(t *testing.T) {
		m := states.NewMachine("no wait").StartAt("Notify")
		notice(m, "Attach")
		attach(m)
		arn, events, _ := mfaWorld{}.run(t, statemachines.NameMFA, build(t, m), mfaInput(deadline))
		if got := codes(t, arn, events); !slices.Equal(got, []string{audit.CodeMFABeforeGrace}) {
			t.Fatalf("breaches %v, want %s", got, audit.CodeMFABeforeGrace)
		}
	})
	t.Run("attached after the deadline without a notice", func(t *testing.T) {
		m := states.NewMachine("no notice").StartAt("Wait")
		m.Wait("Wait").TimestampPath("$.graceDeadline").Next("Attach")
		attach(m)
		arn, events, _ := mfaWorld{}.run(t, statemachines.NameMFA, build(t, m), mfaInput(deadline))
		if got := codes(t, arn, events); !slices.Equal(got, []string{audit.CodeMFAWithoutNotice}) {
			t.Fatalf("breaches %v, want %s", got, audit.CodeMFAWithoutNotice)
		}
	})
	t.Run("attached with no deadline in the history", func(t *testing.T) {
		m := states.NewMachine("no deadline").StartAt("Notify")
		notice(m, "Attach")
		m.Task("Attach", fnArn("enforce-mfa")).Parameters(user(map[string]any{"action": "attach"})).End()
		in := mfaInput(deadline)
		delete(in, "graceDeadline")
		arn, events, _ := mfaWorld{}.run(t, statemachines.NameMFA, build(t, m), in)
		if got := codes(t, arn, events); !slices.Equal(got, []string{audit.CodeMFABeforeGrace}) {
			t.Fatalf("breaches %v", got)
		}
	})
	t.Run("an exempt user's policy detached", func(t *testing.T) {
		m := states.NewMachine("ignores exemptions").StartAt("Detach")
		m.Task("Detach", fnArn("enforce-mfa")).Parameters(user(map[string]any{"action": "detach"})).End()
		in := mfaInput(deadline)
		in["action"] = "exempt"
		arn, events, _ := mfaWorld{}.run(t, statemachines.NameMFA, build(t, m), in)
		if got := codes(t, arn, events); !slices.Equal(got, []string{audit.CodeExemptTouched}) {
			t.Fatalf("breaches %v", got)
		}
	})

	report := func(name, action string) map[string]any {
		return map[string]any{"accountId": account, "userName": name, "action": action, "consoleAccess": true, "mfaEnabled": false,
			"policyAttached": false, "graceDeadline": deadline.Format(time.RFC3339)}
	}
	t.Run("the real hygiene inventory", func(t *testing.T) {
		w := mfaWorld{users: []map[string]any{report("alice", "enforce")}, exempt: []map[string]any{report("dave", "exempt")}}
		arn, events, started := w.run(t, statemachines.NameHygiene, nil, map[string]any{"accountId": account})
		if got := codes(t, arn, events); len(got) != 0 {
			t.Fatalf("breaches %v", got)
		}
		for _, r := range started {
			if got := codes(t, r.ExecutionArn, r.History()); len(got) != 0 {
				t.Errorf("%s: breaches %v", r.ExecutionArn, got)
			}
		}
	})
	t.Run("an inventory that starts an exempt user's enforcement", func(t *testing.T) {
		w := mfaWorld{users: []map[string]any{report("alice", "enforce"), report("dave", "enforce")}, exempt: []map[string]any{report("dave", "exempt")}}
		arn, events, _ := w.run(t, statemachines.NameHygiene, nil, map[string]any{"accountId": account})
		rec, err := audit.Build(audit.History{ExecutionArn: arn, Events: events})
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Breaches) != 1 || rec.Breaches[0].Code != audit.CodeExemptTouched {
			t.Fatalf("breaches %+v", rec.Breaches)
		}
		if b := rec.Breaches[0]; len(b.Events) < 2 {
			t.Errorf("the breach names only events %v: it should show the inventory's report and the start", b.Events)
		}
	})
}
