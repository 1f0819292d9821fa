package local_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/policy"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

// mfaEnds collects the MFA executions a backend saw end, for a test to
// wait on: hygiene starts them and nobody holds them.
type mfaEnds struct {
	mu      sync.Mutex
	results []*engine.Result
	changed chan struct{}
}

func (e *mfaEnds) add(r *engine.Result) {
	if !strings.Contains(r.ExecutionArn, ":execution:"+statemachines.StateMachineName(statemachines.NameMFA)+":") {
		return
	}
	e.mu.Lock()
	e.results = append(e.results, r)
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// wait returns once n MFA executions have ended.
func (e *mfaEnds) wait(ctx context.Context, t *testing.T, n int) []*engine.Result {
	t.Helper()
	for {
		e.mu.Lock()
		got, ch := slices.Clone(e.results), e.changed
		e.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d MFA executions ended: %v", len(got), n, ctx.Err())
		case <-ch:
		}
	}
}

// TestEndToEndMFA: a seeded Organization with console users without MFA →
// the hygiene workflow → each is told how to enrol → the grace period
// passes on the virtual clock → the MFA-required policy is attached to
// exactly those still without MFA (not to users with MFA, API-only users or
// the exempt user) → one enrols → a later hygiene run detaches it from that
// user only → the user deactivates the device → a hygiene run days later
// enforces again: a new notice, a new grace period, the policy back on
// after it, and no breach of the MFA invariants → a second run the same
// day starts nothing more.
func TestEndToEndMFA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := &local.TaskClock{Fallback: func() time.Time { return start }}
	sb, err := sandbox.New(sandbox.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sandbox.Seed(sb, sandbox.SeedOptions{Accounts: 2, UsersPerAccount: 30, Seed: 11, Now: start})
	if err != nil {
		t.Fatal(err)
	}
	ends := &mfaEnds{changed: make(chan struct{})}
	vclock := engine.NewVirtualClock(start)
	b, err := local.New(local.Options{Sandbox: sb, Clock: clock, EngineClock: vclock, OnExecutionEnd: ends.add})
	if err != nil {
		t.Fatal(err)
	}

	// Who is a console user without MFA, read straight from the sandbox.
	type user struct{ acct, name string }
	var without, others []user
	for _, acct := range rep.MemberAccounts {
		for _, st := range mfaStates(ctx, t, sb, acct, b.MFAPolicyArn()) {
			u := user{acct, st.UserName}
			if st.ConsoleAccess && !st.MFAEnabled {
				without = append(without, u)
			} else {
				others = append(others, u)
			}
		}
	}
	if len(without) < 3 || len(others) < 3 {
		t.Fatalf("the seed gives %d users without MFA and %d others; the test needs more", len(without), len(others))
	}
	exempt := without[0]
	enforce := without[1:]
	exemptions := []tasks.Exemption{{Scope: "user", Value: exempt.name, AccountID: exempt.acct, Reason: "break-glass account", Owner: "security@example.com", Expires: start.AddDate(1, 0, 0)}}

	hygiene, _ := b.Machine(statemachines.NameHygiene)
	// Pages of seven users: page ends fall inside an account and between
	// accounts, and each user must still be told exactly once.
	res := hygiene.Run(ctx, "hygiene-1", map[string]any{"organization": true, "exemptions": exemptions, "maxUsers": 7})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("hygiene %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	if pages, _ := strconv.Atoi(fmt.Sprint(res.Output.(map[string]any)["pages"])); pages < (rep.Users+6)/7 {
		t.Errorf("%v pages of 7 for %d users", res.Output.(map[string]any)["pages"], rep.Users)
	}
	for _, r := range ends.wait(ctx, t, len(enforce)) {
		if r.Status != engine.StatusSucceeded {
			t.Fatalf("MFA execution %s: %s %s: %s", r.ExecutionArn, r.Status, r.Error, r.Cause)
		}
	}

	// Everyone without MFA was told how to enrol, and told again when the
	// policy went on; nobody else heard from the MFA workflow.
	told := map[string][]string{}
	for _, m := range sb.Outbox() {
		for _, ev := range []string{"MFARequired", "MFAEnforced", "MFAReleased"} {
			if strings.Contains(m.Subject, "keyflow: "+ev+": ") {
				told[ev] = append(told[ev], strings.TrimPrefix(m.Subject, "keyflow: "+ev+": "))
			}
		}
	}
	subject := func(u user) string { return fmt.Sprintf("%s in account %s", u.name, u.acct) }
	var want []string
	for _, u := range enforce {
		want = append(want, subject(u))
	}
	sort.Strings(want)
	for _, ev := range []string{"MFARequired", "MFAEnforced"} {
		sort.Strings(told[ev])
		if !slices.Equal(told[ev], want) {
			t.Errorf("%s sent to %v, want %v", ev, told[ev], want)
		}
	}

	// The policy is on exactly the users still without MFA.
	attached := func(u user) bool {
		for _, st := range mfaStates(ctx, t, sb, u.acct, b.MFAPolicyArn()) {
			if st.UserName == u.name {
				return st.PolicyAttached
			}
		}
		t.Fatalf("%v vanished", u)
		return false
	}
	for _, u := range enforce {
		if !attached(u) {
			t.Errorf("%s/%s has no MFA after the grace period and no policy", u.acct, u.name)
		}
	}
	for _, u := range append([]user{exempt}, others...) {
		if attached(u) {
			t.Errorf("%s/%s got the MFA policy", u.acct, u.name)
		}
	}

	// The attached document is the generated one.
	got, err := sb.IAM(enforce[0].acct).GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(fmt.Sprintf("arn:aws:iam::%s:policy/%s", enforce[0].acct, policy.MFARequiredName))})
	if err != nil || got.Policy == nil {
		t.Fatalf("the MFA policy was not created in %s: %v", enforce[0].acct, err)
	}

	// One user enrols; the next run takes the policy off that user only.
	enrolled := enforce[0]
	c := sb.IAM(enrolled.acct)
	d, err := c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String(enrolled.name)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnableMFADevice(ctx, &iam.EnableMFADeviceInput{UserName: aws.String(enrolled.name), SerialNumber: d.VirtualMFADevice.SerialNumber,
		AuthenticationCode1: aws.String("123456"), AuthenticationCode2: aws.String("234567")}); err != nil {
		t.Fatal(err)
	}
	res = hygiene.Run(ctx, "hygiene-2", map[string]any{"organization": true, "exemptions": exemptions})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("second hygiene %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	all := ends.wait(ctx, t, len(enforce)+1)
	if last := all[len(all)-1]; last.Status != engine.StatusSucceeded {
		t.Fatalf("release %s: %s: %s", last.Status, last.Error, last.Cause)
	}
	if attached(enrolled) {
		t.Errorf("%s/%s enrolled and still has the policy", enrolled.acct, enrolled.name)
	}
	for _, u := range enforce[1:] {
		if !attached(u) {
			t.Errorf("%s/%s lost the policy without enrolling", u.acct, u.name)
		}
	}
	// The second run started nothing for users already enforced: one more
	// execution, the release.
	if len(all) != len(enforce)+1 {
		t.Errorf("%d MFA executions, want %d", len(all), len(enforce)+1)
	}

	// The user deactivates the device. Ten days on, a hygiene run enforces
	// again: the first enforcement has ended and its name stays taken,
	// but an enforcement is named by the day it starts.
	if _, err := c.DeactivateMFADevice(ctx, &iam.DeactivateMFADeviceInput{UserName: aws.String(enrolled.name), SerialNumber: d.VirtualMFADevice.SerialNumber}); err != nil {
		t.Fatal(err)
	}
	vclock.Advance(10 * 24 * time.Hour)
	later := vclock.Now()
	res = hygiene.Run(ctx, "hygiene-3", map[string]any{"organization": true, "exemptions": exemptions})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("third hygiene %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	all = ends.wait(ctx, t, len(enforce)+2)
	again := all[len(all)-1]
	if again.Status != engine.StatusSucceeded || !strings.HasSuffix(again.ExecutionArn, ":"+statemachines.MFAExecutionName("enforce", enrolled.acct, enrolled.name, later.Format(time.RFC3339))) {
		t.Fatalf("the new enforcement %s: %s %s: %s", again.ExecutionArn, again.Status, again.Error, again.Cause)
	}
	if !attached(enrolled) {
		t.Errorf("%s/%s lost MFA again and has no policy after the new grace period", enrolled.acct, enrolled.name)
	}
	// Its grace period is new: it waited a whole one from the run that
	// found the user, and attached the policy only after it.
	deadline := later.Add(time.Duration(tasks.DefaultMFAGraceDays) * 24 * time.Hour)
	var attachedAt time.Time
	for _, ev := range again.History() {
		var out *string
		switch {
		case ev.TaskSucceededEventDetails != nil:
			out = ev.TaskSucceededEventDetails.Output
		case ev.LambdaFunctionSucceededEventDetails != nil:
			out = ev.LambdaFunctionSucceededEventDetails.Output
		}
		if strings.Contains(aws.ToString(out), `"result":"attached"`) {
			attachedAt = aws.ToTime(ev.Timestamp)
		}
	}
	if attachedAt.Before(deadline) {
		t.Errorf("the policy went back on at %s, before the new deadline %s", attachedAt, deadline)
	}
	rec, err := audit.Build(audit.History{ExecutionArn: again.ExecutionArn, Events: again.History()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Breaches) != 0 {
		t.Errorf("the new enforcement breaches the MFA invariants: %+v", rec.Breaches)
	}
	required := 0
	for _, m := range sb.Outbox() {
		if m.Subject == "keyflow: MFARequired: "+subject(enrolled) {
			required++
		}
	}
	if required != 2 {
		t.Errorf("%s was told how to enrol %d times, want twice (once per enforcement)", enrolled.name, required)
	}

	// Someone takes the policy off by hand the same day: the user is
	// without MFA and without the policy again, but a second run that day
	// starts nothing (the day's enforcement name is taken: AlreadyEnforcing);
	// the next day's would.
	policyArn := fmt.Sprintf("arn:aws:iam::%s:policy/%s", enrolled.acct, policy.MFARequiredName)
	if _, err := c.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String(enrolled.name), PolicyArn: aws.String(policyArn)}); err != nil {
		t.Fatal(err)
	}
	res = hygiene.Run(ctx, "hygiene-4", map[string]any{"organization": true, "exemptions": exemptions})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("fourth hygiene %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	entered := map[string]int{}
	for _, ev := range res.History() {
		if ev.StateEnteredEventDetails != nil {
			entered[aws.ToString(ev.StateEnteredEventDetails.Name)]++
		}
	}
	if entered["StartEnforcement"] != 1 || entered["AlreadyEnforcing"] != 1 {
		t.Errorf("the same day's run entered StartEnforcement %d and AlreadyEnforcing %d times, want once each", entered["StartEnforcement"], entered["AlreadyEnforcing"])
	}
	if n := len(ends.wait(ctx, t, 0)); n != len(enforce)+2 {
		t.Errorf("%d MFA executions, want %d: the same day's run started one", n, len(enforce)+2)
	}
}

// mfaStates reads every user's MFA state in an account with the handler.
func mfaStates(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, acct, policyArn string) []*tasks.MFAState {
	t.Helper()
	users, err := sb.IAM(acct).ListUsers(ctx, &iam.ListUsersInput{MaxItems: aws.Int32(1000)})
	if err != nil {
		t.Fatal(err)
	}
	h := &tasks.CheckMFA{Accounts: local.SandboxAccounts{Sandbox: sb}, PolicyArn: policyArn}
	var out []*tasks.MFAState
	for _, u := range users.Users {
		st, err := h.Handle(ctx, tasks.CheckMFAInput{AccountID: acct, UserName: aws.ToString(u.UserName)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}
