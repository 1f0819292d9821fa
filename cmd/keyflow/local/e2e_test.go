package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func newBackend(t *testing.T, o statemachines.Options, approve func(local.Approval) (statemachines.Decision, string)) (*local.Backend, *sandbox.Sandbox, sandbox.SeedReport) {
	t.Helper()
	clock := &local.TaskClock{Fallback: func() time.Time { return t0 }}
	sb, err := sandbox.New(sandbox.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sandbox.Seed(sb, sandbox.SeedOptions{Accounts: 2, UsersPerAccount: 25, Seed: 7, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	ends := &endLog{}
	b, err := local.New(local.Options{Sandbox: sb, Clock: clock, EngineClock: engine.NewVirtualClock(t0), Workflows: o, Approve: approve,
		SecurityTeam: "security@example.com", EmailFrom: "keyflow@example.com", OnExecutionEnd: ends.add})
	if err != nil {
		t.Fatal(err)
	}
	endLogs.Store(b, ends)
	return b, sb, rep
}

func keysOf(t *testing.T, sb *sandbox.Sandbox, acct, user string) []iamtypes.AccessKeyMetadata {
	t.Helper()
	out, err := sb.IAM(acct).ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	return out.AccessKeyMetadata
}

func secretKeyID(t *testing.T, sb *sandbox.Sandbox, acct, user, stage string) string {
	t.Helper()
	out, err := sb.SecretsManager(acct).GetSecretValue(context.Background(), &sm.GetSecretValueInput{
		SecretId: aws.String(tasks.DefaultSecretName(acct, user)), VersionStage: aws.String(stage),
	})
	if err != nil {
		return ""
	}
	var v struct{ AccessKeyId, SecretAccessKey string }
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
		t.Fatal(err)
	}
	if v.SecretAccessKey == "" {
		t.Errorf("secret of %s/%s at %s has no secret access key", acct, user, stage)
	}
	return v.AccessKeyId
}

// TestEndToEndRotation: a seeded Organization, the inventory workflow, and
// every due key through its 90-day lifecycle on the virtual clock. The
// outcome is read back from the sandbox: every rotated key is deleted, its
// replacement is Active, works and is the secret's AWSCURRENT (the key stored
// before it AWSPREVIOUS), and no user ever had three keys.
func TestEndToEndRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	b, sb, rep := newBackend(t, statemachines.Options{}, nil)

	// What is due, as the inventory handler sees it at t0.
	inv := &tasks.Inventory{Accounts: local.SandboxAccounts{Sandbox: sb}, Now: func() time.Time { return t0 }}
	before, err := inv.Handle(ctx, tasks.InventoryInput{Organization: true, MaxDue: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var due []tasks.KeyReport
	for _, k := range before.Due {
		if k.Action == "rotate" || k.Action == "rotate-after-deleting-inactive" {
			due = append(due, k)
		}
	}
	if len(due) < 5 {
		t.Fatalf("the seed gives only %d rotatable keys; the test needs more", len(due))
	}
	// One user had the old key stored already: after the rotation it must
	// be the secret's AWSPREVIOUS.
	stored := due[0]
	if _, err := sb.SecretsManager(stored.AccountID).CreateSecret(ctx, &sm.CreateSecretInput{
		Name:         aws.String(tasks.DefaultSecretName(stored.AccountID, stored.UserName)),
		SecretString: aws.String(fmt.Sprintf(`{"AccessKeyId":%q,"SecretAccessKey":"stored-before-the-rotation"}`, stored.AccessKeyID)),
	}); err != nil {
		t.Fatal(err)
	}

	m, _ := b.Machine(statemachines.NameInventory)
	res := m.Run(ctx, "daily", map[string]any{"organization": true})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("inventory %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	ended, err := b.Settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) != len(due) {
		t.Errorf("%d lifecycles ran for %d due keys", len(ended), len(due))
	}
	for name, st := range ended {
		if st != engine.StatusSucceeded {
			t.Errorf("lifecycle %s: %s", name, st)
		}
	}

	for _, k := range due {
		keys := keysOf(t, sb, k.AccountID, k.UserName)
		if len(keys) > 2 {
			t.Errorf("%s/%s has %d keys", k.AccountID, k.UserName, len(keys))
		}
		var active []string
		for _, key := range keys {
			id := aws.ToString(key.AccessKeyId)
			if id == k.AccessKeyID {
				t.Errorf("%s/%s: old key %s still exists (%s)", k.AccountID, k.UserName, id, key.Status)
			}
			if key.Status == iamtypes.StatusTypeActive {
				active = append(active, id)
			}
			if key.CreateDate.Before(t0) && id != k.OtherAccessKeyID {
				t.Errorf("%s/%s: a key from before the rotation is left: %s", k.AccountID, k.UserName, id)
			}
		}
		cur := secretKeyID(t, sb, k.AccountID, k.UserName, "AWSCURRENT")
		if cur == "" || cur == k.AccessKeyID {
			t.Errorf("%s/%s: AWSCURRENT holds %q, want the new key", k.AccountID, k.UserName, cur)
			continue
		}
		found := false
		for _, a := range active {
			found = found || a == cur
		}
		if !found {
			t.Errorf("%s/%s: the stored key %s is not an Active key of the user (%v)", k.AccountID, k.UserName, cur, active)
		}
		// The new key works: the account accepts a use of it.
		if err := sb.RecordKeyUse(cur, "s3", t0.Add(100*24*time.Hour)); err != nil {
			t.Errorf("%s/%s: new key %s does not work: %v", k.AccountID, k.UserName, cur, err)
		}
	}
	if prev := secretKeyID(t, sb, stored.AccountID, stored.UserName, "AWSPREVIOUS"); prev != stored.AccessKeyID {
		t.Errorf("AWSPREVIOUS of %s is %q, want the old key %s", stored.UserName, prev, stored.AccessKeyID)
	}
	// Nobody ever had three keys: IAM (and the sandbox) refuse a third, so a
	// user who needed one would have failed CreateKey; none did.
	t.Logf("seeded %d keys in %d accounts; rotated %d", rep.Keys, len(rep.MemberAccounts), len(due))
	checkAudit(t, b, sb, rep)
}

// cloudTrailEvent is the EventBridge event of a CloudTrail IAM write call.
func cloudTrailEvent(acct, user string) map[string]any {
	return map[string]any{
		"source": "aws.iam", "detail-type": "AWS API Call via CloudTrail", "account": acct,
		"detail": map[string]any{
			"eventSource": "iam.amazonaws.com", "eventName": "AttachUserPolicy", "eventTime": "2026-03-01T09:00:00Z",
			"sourceIPAddress": "203.0.113.7",
			"userIdentity":    map[string]any{"type": "IAMUser", "accountId": acct, "userName": user, "arn": "arn:aws:iam::" + acct + ":user/" + user},
		},
	}
}

// usersByAdmin returns one admin and one non-admin user with an Active key.
func usersByAdmin(t *testing.T, sb *sandbox.Sandbox, acct string) (admin, plain string) {
	t.Helper()
	ctx := context.Background()
	users, err := sb.IAM(acct).ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, u := range users.Users {
		names = append(names, aws.ToString(u.UserName))
	}
	sort.Strings(names)
	for _, n := range names {
		g, err := sb.IAM(acct).ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		isAdmin := false
		for _, x := range g.Groups {
			isAdmin = isAdmin || aws.ToString(x.GroupName) == "admins"
		}
		active := false
		for _, k := range keysOf(t, sb, acct, n) {
			active = active || k.Status == iamtypes.StatusTypeActive
		}
		switch {
		case isAdmin && admin == "":
			admin = n
		case !isAdmin && active && plain == "":
			plain = n
		}
	}
	if admin == "" || plain == "" {
		t.Fatalf("seed has no admin (%q) or no plain user with a key (%q)", admin, plain)
	}
	return admin, plain
}

func hasQuarantinePolicy(t *testing.T, sb *sandbox.Sandbox, acct, user string) bool {
	t.Helper()
	out, err := sb.IAM(acct).ListUserPolicies(context.Background(), &iam.ListUserPoliciesInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range out.PolicyNames {
		if p == tasks.DefaultQuarantinePolicy {
			return true
		}
	}
	return false
}

// TestEndToEndQuarantine: an IAM write call by a non-admin asks for approval;
// approved (by the approver's STS identity), the user is quarantined with
// the deny policy and Inactive keys; the release, approved, restores exactly
// that. The same call by an admin changes nothing and asks nobody.
func TestEndToEndQuarantine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var tokens []string
	b, sb, rep := newBackend(t, statemachines.Options{}, func(a local.Approval) (statemachines.Decision, string) {
		tokens = append(tokens, a.Token)
		return statemachines.Approve, "111111111111" // the management account's STS identity
	})
	acct := rep.MemberAccounts[0]
	admin, plain := usersByAdmin(t, sb, acct)
	approver := "arn:aws:iam::" + sb.ManagementAccount() + ":user/alice-security"
	if err := sb.SetCallerIdentity(sb.ManagementAccount(), approver); err != nil {
		t.Fatal(err)
	}

	// The admin: nothing to decide.
	q, _ := b.Machine(statemachines.NameQuarantine)
	res := q.Run(ctx, "admin-call", cloudTrailEvent(acct, admin))
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("admin: %s %s %s", res.Status, res.Error, res.Cause)
	}
	if len(tokens) != 0 || hasQuarantinePolicy(t, sb, acct, admin) {
		t.Fatal("an admin's call asked for approval or quarantined the admin")
	}

	activeBefore := []string{}
	for _, k := range keysOf(t, sb, acct, plain) {
		if k.Status == iamtypes.StatusTypeActive {
			activeBefore = append(activeBefore, aws.ToString(k.AccessKeyId))
		}
	}
	x, err := q.Start(ctx, "plain-call", cloudTrailEvent(acct, plain))
	if err != nil {
		t.Fatal(err)
	}
	res = x.Wait(ctx)
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("quarantine: %s %s %s", res.Status, res.Error, res.Cause)
	}
	out := res.Output.(map[string]any)
	appr := out["approval"].(map[string]any)
	if appr["decision"] != "approve" || appr["approver"] != approver || appr["decidedAt"] == "" {
		t.Errorf("approval in the output: %v", appr)
	}
	if !hasQuarantinePolicy(t, sb, acct, plain) {
		t.Fatal("approved, but the user has no deny policy")
	}
	for _, k := range keysOf(t, sb, acct, plain) {
		if k.Status != iamtypes.StatusTypeInactive {
			t.Errorf("quarantined user's key %s is %s", aws.ToString(k.AccessKeyId), k.Status)
		}
	}
	// Release from the quarantine's snapshot, after approval.
	quar := out["quarantine"].(map[string]any)
	r, _ := b.Machine(statemachines.NameRelease)
	rx, err := r.Start(ctx, "release-plain", map[string]any{"accountId": acct, "userName": plain, "snapshot": quar["snapshot"]})
	if err != nil {
		t.Fatal(err)
	}
	if res := rx.Wait(ctx); res.Status != engine.StatusSucceeded {
		t.Fatalf("release: %s %s %s", res.Status, res.Error, res.Cause)
	}
	if hasQuarantinePolicy(t, sb, acct, plain) {
		t.Error("released, but the deny policy is still attached")
	}
	activeAfter := []string{}
	for _, k := range keysOf(t, sb, acct, plain) {
		if k.Status == iamtypes.StatusTypeActive {
			activeAfter = append(activeAfter, aws.ToString(k.AccessKeyId))
		}
	}
	sort.Strings(activeBefore)
	sort.Strings(activeAfter)
	if fmt.Sprint(activeBefore) != fmt.Sprint(activeAfter) {
		t.Errorf("active keys before the quarantine %v, after the release %v", activeBefore, activeAfter)
	}
	// The approval requests went out, and no message carries a token.
	asked := 0
	for _, msg := range sb.Outbox() {
		raw, _ := json.Marshal(msg)
		if strings.Contains(string(raw), "ApprovalRequested") {
			asked++
		}
		for _, tok := range tokens {
			if strings.Contains(string(raw), tok) {
				t.Errorf("a notification carries a task token: %s", raw)
			}
		}
	}
	if asked != 2 || len(tokens) != 2 {
		t.Errorf("%d approval requests sent, %d tokens answered; want 2 and 2", asked, len(tokens))
	}
	for _, m := range sb.Mail() {
		raw, _ := json.Marshal(m)
		for _, tok := range tokens {
			if strings.Contains(string(raw), tok) {
				t.Errorf("an email carries a task token: %s", raw)
			}
		}
	}
	checkAudit(t, b, sb, rep)
}

// TestInventoryPagesThroughAnAccount: with a page of at most six due keys,
// each account's child pages through its users until every due key has
// its lifecycle, in one inventory run: an account with more due keys than
// one payload holds is not left for the next day.
func TestInventoryPagesThroughAnAccount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	b, sb, _ := newBackend(t, statemachines.Options{MaxDuePerAccount: 6}, nil)
	inv := &tasks.Inventory{Accounts: local.SandboxAccounts{Sandbox: sb}, Now: func() time.Time { return t0 }}
	before, err := inv.Handle(ctx, tasks.InventoryInput{Organization: true, MaxDue: 10000})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	perAccount := map[string]int{}
	for _, k := range before.Due {
		if k.Action == "rotate" || k.Action == "rotate-after-deleting-inactive" {
			want[statemachines.LifecycleExecutionName(k.AccountID, k.UserName, k.AccessKeyID)] = true
			perAccount[k.AccountID]++
		}
	}
	paged := false
	for _, n := range perAccount {
		paged = paged || n > 6
	}
	if !paged {
		t.Fatalf("no account has more than one page of due keys: %v", perAccount)
	}

	m, _ := b.Machine(statemachines.NameInventory)
	res := m.Run(ctx, "daily", map[string]any{"organization": true})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("inventory %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	ended, err := b.Settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name := range want {
		if st, ok := ended[name]; !ok || st != engine.StatusSucceeded {
			t.Errorf("lifecycle %s: %q", name, st)
		}
	}
	if len(ended) != len(want) {
		t.Errorf("%d lifecycles ran for %d due keys", len(ended), len(want))
	}
}
