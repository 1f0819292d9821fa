package local_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

// dueKey is one rotatable key of the seeded sandbox at t0.
func dueKey(t *testing.T, sb *sandbox.Sandbox, deactivateAfter time.Time) tasks.KeyReport {
	t.Helper()
	inv := &tasks.Inventory{Accounts: local.SandboxAccounts{Sandbox: sb}, Now: func() time.Time { return t0 }}
	out, err := inv.Handle(context.Background(), tasks.InventoryInput{Organization: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range out.Due {
		if k.Action == "rotate" && k.DeactivateAt.After(deactivateAfter) {
			return k
		}
	}
	t.Fatal("no rotatable key in the seed")
	return tasks.KeyReport{}
}

func outboxHas(sb *sandbox.Sandbox, event, user string) bool {
	for _, m := range sb.Outbox() {
		raw, _ := json.Marshal(m)
		if strings.Contains(string(raw), event) && strings.Contains(string(raw), user) {
			return true
		}
	}
	return false
}

// TestLifecycleStillInUse: the old key was used after its replacement was
// created, so at the inactive point the owner is told and the lifecycle
// waits; the recheck counts only uses since the last check, so the key is
// then deactivated and, at the buffer point, deleted.
func TestLifecycleStillInUse(t *testing.T) {
	b, sb, _ := newBackend(t, statemachines.Options{}, nil)
	// A key whose inactive point is ahead, used an hour after its
	// replacement was created: in use at the first check, not since.
	k := dueKey(t, sb, t0.Add(24*time.Hour))
	if err := sb.RecordKeyUse(k.AccessKeyID, "s3", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	m, _ := b.Machine(statemachines.NameLifecycle)
	res := m.Run(context.Background(), statemachines.LifecycleExecutionName(k.AccountID, k.UserName, k.AccessKeyID), k)
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("%s %s %s", res.Status, res.Error, res.Cause)
	}
	if !outboxHas(sb, "KeyStillInUse", k.UserName) {
		t.Error("the owner was not told that the old key is still in use")
	}
	for _, key := range keysOf(t, sb, k.AccountID, k.UserName) {
		if aws.ToString(key.AccessKeyId) == k.AccessKeyID {
			t.Errorf("old key still there: %s", key.Status)
		}
	}
}

// TestLifecycleEscalates: a key in use at every check is left Active after
// StillInUseChecks waits; the security team is told what is left and the
// execution fails visibly.
func TestLifecycleEscalates(t *testing.T) {
	b, sb, _ := newBackend(t, statemachines.Options{StillInUseChecks: 2}, nil)
	k := dueKey(t, sb, time.Time{})
	// A use recorded far ahead stands for a key in use at every check.
	if err := sb.RecordKeyUse(k.AccessKeyID, "s3", t0.Add(400*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	m, _ := b.Machine(statemachines.NameLifecycle)
	res := m.Run(context.Background(), "escalate", k)
	if res.Status != engine.StatusFailed || res.Error != "KeyRotationFailed" || !strings.Contains(res.Cause, "still in use after 2 checks") {
		t.Fatalf("%s %s %s", res.Status, res.Error, res.Cause)
	}
	if !outboxHas(sb, "RotationFailed", k.UserName) {
		t.Error("the security team was not told")
	}
	for _, key := range keysOf(t, sb, k.AccountID, k.UserName) {
		if aws.ToString(key.AccessKeyId) == k.AccessKeyID && key.Status != iamtypes.StatusTypeActive {
			t.Errorf("an in-use key was deactivated without policy: %s", key.Status)
		}
	}
}

// TestQuarantineTimeout: nobody answers, so at the timeout the default
// decision (reject) applies, and the output says so.
func TestQuarantineTimeout(t *testing.T) {
	b, sb, rep := newBackend(t, statemachines.Options{}, nil)
	acct := rep.MemberAccounts[0]
	_, plain := usersByAdmin(t, sb, acct)
	q, _ := b.Machine(statemachines.NameQuarantine)
	res := q.Run(context.Background(), "nobody-answers", cloudTrailEvent(acct, plain))
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("%s %s %s", res.Status, res.Error, res.Cause)
	}
	appr := res.Output.(map[string]any)["approval"].(map[string]any)
	if appr["decision"] != "reject" || appr["timedOut"] != true || appr["approver"] != "keyflow:default-decision-on-timeout" {
		t.Errorf("approval: %v", appr)
	}
	if hasQuarantinePolicy(t, sb, acct, plain) {
		t.Error("quarantined without an approval")
	}
	if res.StopDate.Sub(res.StartDate) < 23*time.Hour {
		t.Errorf("the timeout came after %s, want the approval heartbeat/timeout", res.StopDate.Sub(res.StartDate))
	}
}
