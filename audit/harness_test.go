package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/sfnjson"
	"github.com/keyflow/keyflow/states"
)

// The tests run small copies of keyflow's workflows on the engine with stub
// handlers, so the histories are the events the engine (and AWS) records for
// a real run, and a tampered history is a run of a broken workflow or a
// misbehaving handler: exactly how a breach would reach an audit.

var t0 = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

const (
	account   = "111122223333"
	user      = "alice"
	oldKey    = "AKIAOLDKEY0000000001"
	newKey    = "AKIANEWKEY0000000002"
	secretArn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:Account_111122223333_User_alice_AccessKey-AbCdEf"
	// exampleSecret is AWS's documented example secret access key.
	exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	approverArn   = "arn:aws:iam::111122223333:user/security-bob"
)

func fn(name string) string { return "arn:aws:lambda:us-east-1:123456789012:function:keyflow-" + name }

// lifecycleStates are the states of a small lifecycle; a scenario chains a
// selection of them in its order.
func lifecycleStates() map[string]map[string]any {
	key := func(extra map[string]any) map[string]any {
		p := map[string]any{"accountId.$": "$.accountId", "userName.$": "$.userName"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	return map[string]map[string]any{
		"CreateKey": {"Type": "Task", "Resource": fn("create-key"),
			"Parameters": key(map[string]any{"oldAccessKeyId.$": "$.accessKeyId"}), "ResultPath": "$.created"},
		"NotifyKeyCreated": {"Type": "Task", "Resource": fn("notify"),
			"Parameters": key(map[string]any{"event": "KeyCreated", "accessKeyId.$": "$.accessKeyId",
				"newAccessKeyId.$": "$.created.accessKeyId", "secretArn.$": "$.created.secretArn"}),
			"ResultPath": nil},
		"WaitUntilInactivePoint": {"Type": "Wait", "TimestampPath": "$.deactivateAt"},
		"DeactivateKey": {"Type": "Task", "Resource": fn("deactivate-key"),
			"Parameters": key(map[string]any{"accessKeyId.$": "$.accessKeyId", "newAccessKeyId.$": "$.created.accessKeyId"}),
			"ResultPath": "$.deactivation"},
		"WaitUntilBufferPoint": {"Type": "Wait", "TimestampPath": "$.deleteAt"},
		"DeleteKey": {"Type": "Task", "Resource": fn("delete-key"),
			"Parameters": key(map[string]any{"accessKeyId.$": "$.accessKeyId", "notBefore.$": "$.deleteAt"}),
			"ResultPath": "$.deletion"},
	}
}

func quarantineStates() map[string]map[string]any {
	user := map[string]any{"accountId.$": "$.accountId", "userName.$": "$.userName"}
	with := func(extra map[string]any) map[string]any {
		p := map[string]any{}
		for k, v := range user {
			p[k] = v
		}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	return map[string]map[string]any{
		"Subject": {"Type": "Pass", "Parameters": map[string]any{
			"accountId.$": "$.detail.userIdentity.accountId", "userName.$": "$.detail.userIdentity.userName"}},
		"GatherEvidence": {"Type": "Task", "Resource": fn("quarantine"),
			"Parameters": with(map[string]any{"deactivateKeys": true, "dryRun": true}), "ResultPath": "$.evidence"},
		"AskApproval": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
			"Parameters": map[string]any{"FunctionName": fn("notify"),
				"Payload": with(map[string]any{"event": "ApprovalRequested", "taskToken.$": "$$.Task.Token"})},
			"TimeoutSeconds": 86400, "ResultPath": "$.approval",
			"Catch": []any{map[string]any{"ErrorEquals": []any{"States.Timeout"}, "Next": "ApplyDefaultDecision", "ResultPath": "$.timeout"}}},
		"ApplyDefaultDecision": {"Type": "Pass", "Parameters": map[string]any{
			"decision": "approve", "approver": "keyflow:default-decision-on-timeout",
			"decidedAt.$": "$$.State.EnteredTime", "timedOut": true}, "ResultPath": "$.approval", "Next": "QuarantineUser"},
		"QuarantineUser": {"Type": "Task", "Resource": fn("quarantine"),
			"Parameters": with(map[string]any{"deactivateKeys": true}), "ResultPath": "$.quarantine"},
	}
}

// definition chains the named states in order; states not named are left
// out, except those a Catch or Next already reaches (extra).
func definition(t testing.TB, all map[string]map[string]any, order []string, extra ...string) *states.Definition {
	t.Helper()
	sm := map[string]any{}
	for i, name := range order {
		s := all[name]
		if i+1 < len(order) {
			s["Next"] = order[i+1]
		} else {
			s["End"] = true
		}
		sm[name] = s
	}
	for _, name := range extra {
		sm[name] = all[name]
	}
	// A Catch target comes with the state that catches.
	for _, name := range order {
		if c, ok := all[name]["Catch"].([]any); ok {
			for _, r := range c {
				next := r.(map[string]any)["Next"].(string)
				if _, ok := sm[next]; !ok {
					sm[next] = all[next]
				}
			}
		}
	}
	doc, err := json.Marshal(map[string]any{"StartAt": order[0], "States": sm})
	if err != nil {
		t.Fatal(err)
	}
	d, err := states.Parse(doc)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return d
}

// world is what the stub handlers report: a healthy account unless a
// scenario changes it.
type world struct {
	createErr     error         // the create fails with this
	lastUsedAfter time.Duration // the old key's last use after the new key's creation (negative: before; 0: a day before)
	deactivated   string        // deactivate result; "" is Deactivated
	deleteEarly   bool          // delete reports a notBefore after its own time
	notifySecret  bool          // notify leaks a secret in its output
	groups        []string      // the quarantined user's groups
	approve       string        // the approver's decision; "" lets the approval time out
}

// KeyLimitExceeded is named like the tasks error: the engine names a
// handler's error by its Go type, as Lambda does.
type KeyLimitExceeded struct{}

func (KeyLimitExceeded) Error() string { return "user alice already has two access keys" }

func (w *world) handlers() map[string]engine.Handler {
	now := func(ctx context.Context) time.Time {
		t, _ := engine.TaskTime(ctx)
		return t.UTC()
	}
	h := func(f func(ctx context.Context, in map[string]any) (any, error)) engine.Handler {
		return engine.HandlerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
			var in map[string]any
			if err := json.Unmarshal(payload, &in); err != nil {
				return nil, err
			}
			out, err := f(ctx, in)
			if err != nil {
				return nil, err
			}
			return json.Marshal(out)
		})
	}
	var created time.Time
	return map[string]engine.Handler{
		"keyflow-create-key": h(func(ctx context.Context, in map[string]any) (any, error) {
			if w.createErr != nil {
				return nil, w.createErr
			}
			created = now(ctx)
			return map[string]any{"accountId": in["accountId"], "userName": in["userName"], "oldAccessKeyId": in["oldAccessKeyId"],
				"accessKeyId": newKey, "createDate": created, "secretName": "Account_111122223333_User_alice_AccessKey",
				"secretArn": secretArn, "secretVersionId": "keyflow-" + newKey, "action": "created", "dryRun": false}, nil
		}),
		"keyflow-notify": h(func(ctx context.Context, in map[string]any) (any, error) {
			out := map[string]any{"messageId": "msg-1", "topicArn": "arn:aws:sns:us-east-1:123456789012:keyflow",
				"subject": "keyflow: " + fmt.Sprint(in["event"]), "recipients": []string{"alice@example.com"},
				"deduplicationId": "dedup-" + fmt.Sprint(in["event"]), "sentAt": now(ctx), "dryRun": false}
			if w.notifySecret {
				out["subject"] = "your new key: " + exampleSecret
			}
			return out, nil
		}),
		"keyflow-deactivate-key": h(func(ctx context.Context, in map[string]any) (any, error) {
			result := w.deactivated
			if result == "" {
				result = "Deactivated"
			}
			after := w.lastUsedAfter
			if after == 0 {
				after = -24 * time.Hour // by default the owner moved a day before the rotation
			}
			lastUsed := created.Add(after)
			return map[string]any{"accountId": in["accountId"], "userName": in["userName"], "accessKeyId": in["accessKeyId"],
				"result": result, "inUse": after >= 0, "lastUsedDate": lastUsed, "lastUsedService": "s3",
				"inUseSince": created, "checkedAt": now(ctx), "dryRun": false}, nil
		}),
		"keyflow-delete-key": h(func(ctx context.Context, in map[string]any) (any, error) {
			notBefore := in["notBefore"]
			if w.deleteEarly {
				notBefore = now(ctx).Add(30 * 24 * time.Hour)
			}
			return map[string]any{"accountId": in["accountId"], "userName": in["userName"], "accessKeyId": in["accessKeyId"],
				"result": "Deleted", "notBefore": notBefore, "deletedAt": now(ctx), "dryRun": false}, nil
		}),
		"keyflow-quarantine": h(func(ctx context.Context, in map[string]any) (any, error) {
			dry, _ := in["dryRun"].(bool)
			groups := w.groups
			if groups == nil {
				groups = []string{"developers"}
			}
			out := map[string]any{"accountId": in["accountId"], "userName": in["userName"], "policyName": "keyflow-quarantine",
				"snapshot": map[string]any{"groups": groups, "attachedPolicyArns": []string{"arn:aws:iam::aws:policy/PowerUserAccess"},
					"inlinePolicyNames": []string{}, "activeAccessKeyIds": []string{oldKey}, "takenAt": now(ctx)},
				"deactivatedAccessKeyIds": []string{oldKey}, "dryRun": dry}
			if dry {
				out["result"] = "WouldQuarantine"
			} else {
				out["result"], out["quarantinedAt"] = "Quarantined", now(ctx)
			}
			return out, nil
		}),
	}
}

// run runs def on a fresh engine and returns the execution's ARN and
// history.
func (w *world) run(t testing.TB, def *states.Definition, name string, input any) (string, []types.HistoryEvent) {
	t.Helper()
	var e *engine.Engine
	e = engine.New(engine.Options{Clock: engine.NewVirtualClock(t0), Handlers: w.handlers(),
		OnTaskToken: func(token string, _ any) {
			if w.approve == "" {
				return
			}
			answer, _ := json.Marshal(map[string]any{"decision": w.approve, "approver": approverArn,
				"decidedAt": t0.Add(2 * time.Hour).Format(time.RFC3339), "reason": "IAM writes from a CI user are not expected"})
			if err := e.SendTaskSuccess(token, answer); err != nil {
				t.Error(err)
			}
		}})
	m, err := e.Compile(def, "keyflow-"+strings.SplitN(name, "-", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	res := m.Run(context.Background(), name, input)
	return res.ExecutionArn, res.History()
}

func lifecycleInput() map[string]any {
	return map[string]any{"accountId": account, "userName": user, "accessKeyId": oldKey,
		"deactivateAt": t0.Add(15 * 24 * time.Hour).Format(time.RFC3339),
		"deleteAt":     t0.Add(45 * 24 * time.Hour).Format(time.RFC3339)}
}

func cloudTrailInput() map[string]any {
	return map[string]any{"detail": map[string]any{
		"userIdentity": map[string]any{"accountId": account, "userName": user, "type": "IAMUser"},
		"eventName":    "CreateUser", "eventSource": "iam.amazonaws.com", "eventTime": t0.Format(time.RFC3339),
		"sourceIPAddress": "203.0.113.7"}}
}

// wire encodes a history as GetExecutionHistory's JSON.
func wire(t testing.TB, events []types.HistoryEvent) []byte {
	t.Helper()
	b, err := sfnjson.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(`{"events":` + string(b) + "}\n")
}

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./audit -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file (go test ./audit -update refreshes it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func jsonOf(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
