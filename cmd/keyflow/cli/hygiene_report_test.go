package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/service"
	"github.com/keyflow/keyflow/policy"
	"github.com/keyflow/keyflow/report"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

// TestReportHygiene runs the hygiene workflow on a store as keyflow serve
// does, on the real clock, so that each enforcement waits out its week:
// the report lists every console user without MFA as in grace, told how to
// enrol, with the deadline the execution itself waits for; an execution
// that detaches the policy from a user its input marks exempt is a breach,
// in the text and on the page; the password policies are judged.
func TestReportHygiene(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	db, err := openDB(t.TempDir() + "/k.db")
	require.NoError(t, err)
	defer db.Close()
	clock := engine.NewRealClock()
	tc := &local.TaskClock{Fallback: clock.Now}
	sb, err := sandbox.New(sandbox.Options{Now: tc.Now, DB: db})
	require.NoError(t, err)
	rep, err := sandbox.Seed(sb, sandbox.SeedOptions{Accounts: 1, UsersPerAccount: 20, Seed: 11})
	require.NoError(t, err)
	acct := rep.MemberAccounts[0]
	var svc *service.Local
	b, err := local.New(local.Options{Sandbox: sb, Clock: tc, EngineClock: clock,
		// As keyflow serve should: the store knows every running
		// execution, the dormant ones too.
		Executions: local.ExecutionsFunc(func(ctx context.Context, in *sfn.ListExecutionsInput, o ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
			return svc.ListExecutions(ctx, in, o...)
		}),
		OpenEngine: func(eo engine.Options) (*engine.Engine, error) {
			var err error
			svc, err = service.Open(ctx, service.Options{DB: db, Engine: eo})
			if err != nil {
				return nil, err
			}
			return svc.Engine(), nil
		}})
	require.NoError(t, err)
	defer svc.Close()
	require.NoError(t, registerWorkflows(ctx, svc, ""))
	machine := func(name string) *string {
		return aws.String("arn:aws:states:us-east-1:123456789012:stateMachine:" + statemachines.StateMachineName(name))
	}
	ended := func(arn string) bool {
		d, err := svc.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: &arn})
		return err == nil && d.Status != sfntypes.ExecutionStatusRunning
	}

	// Who has no MFA, as the handler reads it.
	h := &tasks.Hygiene{Accounts: local.SandboxAccounts{Sandbox: sb}, PolicyArn: b.MFAPolicyArn()}
	before, err := h.Handle(ctx, tasks.HygieneInput{AccountID: acct, DryRun: true})
	require.NoError(t, err)
	require.NotEmpty(t, before.Users)

	run, err := svc.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: machine(statemachines.NameHygiene), Name: aws.String("hygiene-1"),
		Input: aws.String(fmt.Sprintf(`{"accountId":%q}`, acct))})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return ended(aws.ToString(run.ExecutionArn)) }, 30*time.Second, time.Millisecond)
	// Every enforcement has told its user and waits for the deadline.
	gather := func() *report.Hygiene {
		hy, _, err := gatherHygiene(ctx, local.SandboxAccounts{Sandbox: sb}, acct, hygieneOptions{policyArn: b.MFAPolicyArn()}, svc, tc.Now())
		require.NoError(t, err)
		return hy
	}
	require.Eventually(t, func() bool {
		for _, u := range gather().NoMFA {
			if u.State != report.MFAInGrace || u.Notified.IsZero() {
				return false
			}
		}
		return true
	}, 30*time.Second, time.Millisecond)

	// A second run while they wait starts nothing: each user's
	// enforcement is running, which the inventory sees (whatever the day).
	run2, err := svc.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: machine(statemachines.NameHygiene), Name: aws.String("hygiene-2"),
		Input: aws.String(fmt.Sprintf(`{"accountId":%q}`, acct))})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return ended(aws.ToString(run2.ExecutionArn)) }, 30*time.Second, time.Millisecond)
	d2, err := svc.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: run2.ExecutionArn})
	require.NoError(t, err)
	require.Equal(t, sfntypes.ExecutionStatusSucceeded, d2.Status)
	assert.JSONEq(t, fmt.Sprintf(`{"started":0,"enforcing":%d}`, len(before.Users)), pick(t, aws.ToString(d2.Output), "started", "enforcing"))

	// A broken run: the policy detached from a user whose input says
	// exempt. The user has MFA, and the policy (which the enforcements'
	// account now has) on.
	var enrolled string
	users, err := sb.IAM(acct).ListUsers(ctx, &iam.ListUsersInput{})
	require.NoError(t, err)
	for _, u := range users.Users {
		d, err := sb.IAM(acct).ListMFADevices(ctx, &iam.ListMFADevicesInput{UserName: u.UserName})
		require.NoError(t, err)
		if len(d.MFADevices) > 0 {
			enrolled = aws.ToString(u.UserName)
			break
		}
	}
	require.NotEmpty(t, enrolled, "the seed has no user with MFA")
	doc, err := policy.MFARequired("").JSON()
	require.NoError(t, err)
	_, err = sb.IAM(acct).CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(policy.MFARequiredName), PolicyDocument: aws.String(string(doc))})
	require.NoError(t, err)
	policyArn := fmt.Sprintf("arn:aws:iam::%s:policy/%s", acct, tasks.DefaultMFAPolicyName)
	_, err = sb.IAM(acct).AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: &enrolled, PolicyArn: &policyArn})
	require.NoError(t, err)
	bad, err := svc.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: machine(statemachines.NameMFA), Name: aws.String("exempt-detach"),
		Input: aws.String(fmt.Sprintf(`{"accountId":%q,"userName":%q,"action":"exempt","exemptReason":"break-glass"}`, acct, enrolled))})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return ended(aws.ToString(bad.ExecutionArn)) }, 30*time.Second, time.Millisecond)

	hy, records, err := gatherHygiene(ctx, local.SandboxAccounts{Sandbox: sb}, acct, hygieneOptions{policyArn: b.MFAPolicyArn()}, svc, tc.Now())
	require.NoError(t, err)
	require.Len(t, hy.NoMFA, len(before.Users))
	// Each user's enforcement, by its name's prefix: the day in the name is
	// the inventory's, on the real clock.
	enforcements := map[string]string{}
	list, err := svc.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: machine(statemachines.NameMFA), MaxResults: 1000})
	require.NoError(t, err)
	for _, x := range list.Executions {
		enforcements[aws.ToString(x.Name)] = aws.ToString(x.ExecutionArn)
	}
	for _, u := range hy.NoMFA {
		var arn string
		for name, a := range enforcements {
			if strings.HasPrefix(name, statemachines.MFAEnforcementPrefix(u.Account, u.Name)+"-") {
				require.Empty(t, arn, "%s has two enforcements", u.Name)
				arn = a
			}
		}
		require.NotEmpty(t, arn, "%s has no enforcement", u.Name)
		d, err := svc.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: &arn})
		require.NoError(t, err)
		assert.Equal(t, report.MFAInGrace, u.State, u.Name)
		assert.Contains(t, aws.ToString(d.Input), `"graceDeadline":"`+u.Deadline.Format(time.RFC3339Nano)+`"`, "%s: the deadline is not the execution's", u.Name)
		assert.False(t, u.Notified.After(u.Deadline) || u.Notified.Before(aws.ToTime(d.StartDate).Add(-time.Second)), "%s notified %s", u.Name, u.Notified)
	}
	breaches := 0
	for _, r := range records {
		for _, br := range r.Breaches {
			breaches++
			assert.Equal(t, audit.CodeExemptTouched, br.Code)
		}
	}
	assert.Equal(t, 1, breaches)
	require.Len(t, hy.PasswordPolicies, 1)

	var out bytes.Buffer
	writeHygiene(&out, hy, records)
	assert.Contains(t, out.String(), "BREACH exempt-detach "+audit.CodeExemptTouched)
	assert.Contains(t, out.String(), "in grace")
	page := t.TempDir() + "/r.html"
	require.NoError(t, writeAuditHTML(page, "keyflow report", records, "", &report.Estate{At: tc.Now(), Accounts: []string{acct}, Hygiene: hy}, tc.Now()))
	raw, err := os.ReadFile(page)
	require.NoError(t, err)
	html := string(raw)
	for _, want := range []string{`<section class="breaches" id="breaches">`, audit.CodeExemptTouched, `<section id="hygiene">`, "<td>in grace</td>"} {
		assert.True(t, strings.Contains(html, want), "the page lacks %q", want)
	}
}

// pick is the JSON object text of some fields of an object.
func pick(t *testing.T, object string, fields ...string) string {
	t.Helper()
	var all map[string]any
	require.NoError(t, json.Unmarshal([]byte(object), &all))
	out := map[string]any{}
	for _, f := range fields {
		out[f] = all[f]
	}
	b, err := json.Marshal(out)
	require.NoError(t, err)
	return string(b)
}
