package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	iampolicy "github.com/keyflow/keyflow/policy"
)

// consoleIAM is what the MFA fixtures call beyond adminIAM; the sandbox and
// the SDK client both have it.
type consoleIAM interface {
	CreateLoginProfile(ctx context.Context, in *iam.CreateLoginProfileInput, optFns ...func(*iam.Options)) (*iam.CreateLoginProfileOutput, error)
	CreateVirtualMFADevice(ctx context.Context, in *iam.CreateVirtualMFADeviceInput, optFns ...func(*iam.Options)) (*iam.CreateVirtualMFADeviceOutput, error)
	EnableMFADevice(ctx context.Context, in *iam.EnableMFADeviceInput, optFns ...func(*iam.Options)) (*iam.EnableMFADeviceOutput, error)
	CreatePolicy(ctx context.Context, in *iam.CreatePolicyInput, optFns ...func(*iam.Options)) (*iam.CreatePolicyOutput, error)
	UpdateAccountPasswordPolicy(ctx context.Context, in *iam.UpdateAccountPasswordPolicyInput, optFns ...func(*iam.Options)) (*iam.UpdateAccountPasswordPolicyOutput, error)
}

// mfaPolicyArn is the configured ARN: its account is not the test's, as in
// a deployment where the central account's ARN is configured.
const mfaPolicyArn = "arn:aws:iam::999999999999:policy/" + DefaultMFAPolicyName

type consoleSpec struct {
	console, mfa, attached bool
}

func (f *fx) console() consoleIAM {
	c, ok := f.iam(f.acct).(consoleIAM)
	if !ok {
		f.t.Fatalf("%s IAM client lacks the console calls", f.backend)
	}
	return c
}

// mfaPolicy creates the MFA-required policy in the case's account from the
// document the template ships, and returns its ARN there.
func (f *fx) mfaPolicy() string {
	f.t.Helper()
	doc, err := iampolicy.MFARequired("").JSON()
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := f.console().CreatePolicy(f.t.Context(), &iam.CreatePolicyInput{PolicyName: aws.String(DefaultMFAPolicyName), PolicyDocument: aws.String(string(doc))})
	if err != nil {
		f.t.Fatal(err)
	}
	return aws.ToString(out.Policy.Arn)
}

// consoleUser creates a user with the console state s. The password never
// leaves this function; it is registered for the leak checks.
func (f *fx) consoleUser(name string, s consoleSpec) {
	f.t.Helper()
	ctx := f.t.Context()
	f.user(name, userSpec{})
	c := f.console()
	if s.console {
		pw := "Kf-" + name + "-Pw0rd!x9"
		f.secrets = append(f.secrets, pw)
		if _, err := c.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String(name), Password: aws.String(pw)}); err != nil {
			f.t.Fatal(err)
		}
	}
	if s.mfa {
		d, err := c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String(name)})
		if err != nil {
			f.t.Fatal(err)
		}
		if _, err := c.EnableMFADevice(ctx, &iam.EnableMFADeviceInput{UserName: aws.String(name), SerialNumber: d.VirtualMFADevice.SerialNumber,
			AuthenticationCode1: aws.String("123456"), AuthenticationCode2: aws.String("654321")}); err != nil {
			f.t.Fatal(err)
		}
	}
	if s.attached {
		arn := fmt.Sprintf("arn:aws:iam::%s:policy/%s", f.acct, DefaultMFAPolicyName)
		if _, err := f.iam(f.acct).AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fx) attachedPolicies(user string) []string {
	f.t.Helper()
	out, err := f.iam(f.acct).ListAttachedUserPolicies(f.t.Context(), &iam.ListAttachedUserPoliciesInput{UserName: aws.String(user)})
	if err != nil {
		f.t.Fatal(err)
	}
	var arns []string
	for _, p := range out.AttachedPolicies {
		arns = append(arns, aws.ToString(p.PolicyArn))
	}
	return arns
}

func newCheckMFA(f *fx) func(context.Context, CheckMFAInput) (*MFAState, error) {
	return (&CheckMFA{Accounts: f.accounts, Now: f.now, Log: f.log, PolicyArn: mfaPolicyArn}).Handle
}

func newEnforceMFA(f *fx) func(context.Context, EnforceMFAInput) (*EnforceMFAOutput, error) {
	return (&EnforceMFA{Accounts: f.accounts, Now: f.now, Log: f.log, PolicyArn: mfaPolicyArn}).Handle
}

func TestCheckMFA(t *testing.T) {
	want := func(console, mfa, attached bool) func(f *fx, in CheckMFAInput, out *MFAState) {
		return func(f *fx, in CheckMFAInput, out *MFAState) {
			if out.ConsoleAccess != console || out.MFAEnabled != mfa || out.PolicyAttached != attached {
				f.t.Fatalf("got console %t mfa %t attached %t, want %t %t %t", out.ConsoleAccess, out.MFAEnabled, out.PolicyAttached, console, mfa, attached)
			}
			if out.PolicyArn != fmt.Sprintf("arn:aws:iam::%s:policy/%s", f.acct, DefaultMFAPolicyName) {
				f.t.Fatalf("policy ARN %q is not the account's copy", out.PolicyArn)
			}
		}
	}
	runTable(t, newCheckMFA, []tcase[CheckMFAInput, MFAState]{
		{name: "console user without MFA", setup: func(f *fx) CheckMFAInput {
			f.consoleUser("alice", consoleSpec{console: true})
			return CheckMFAInput{AccountID: f.acct, UserName: "alice"}
		}, check: want(true, false, false), retry: true},
		{name: "console user with MFA", setup: func(f *fx) CheckMFAInput {
			f.consoleUser("bob", consoleSpec{console: true, mfa: true})
			return CheckMFAInput{AccountID: f.acct, UserName: "bob"}
		}, check: want(true, true, false)},
		{name: "API-only user", setup: func(f *fx) CheckMFAInput {
			f.consoleUser("carol", consoleSpec{})
			return CheckMFAInput{AccountID: f.acct, UserName: "carol"}
		}, check: want(false, false, false)},
		{name: "policy attached", setup: func(f *fx) CheckMFAInput {
			f.mfaPolicy()
			f.consoleUser("frank", consoleSpec{console: true, attached: true})
			return CheckMFAInput{AccountID: f.acct, UserName: "frank"}
		}, check: want(true, false, true)},
		{name: "no such user", setup: func(f *fx) CheckMFAInput {
			return CheckMFAInput{AccountID: f.acct, UserName: "ghost"}
		}, wantErr: "UserNotFound"},
		{name: "bad account id", setup: func(f *fx) CheckMFAInput {
			return CheckMFAInput{AccountID: "12", UserName: "alice"}
		}, wantErr: "InvalidInput"},
	})
}

func TestEnforceMFA(t *testing.T) {
	attached := func(want bool, results ...string) func(f *fx, in EnforceMFAInput, out *EnforceMFAOutput) {
		return func(f *fx, in EnforceMFAInput, out *EnforceMFAOutput) {
			f.t.Helper()
			if out != nil && !slices.Contains(results, out.Result) {
				f.t.Fatalf("result %q, want one of %v", out.Result, results)
			}
			has := slices.ContainsFunc(f.attachedPolicies(in.UserName), func(a string) bool {
				return a == fmt.Sprintf("arn:aws:iam::%s:policy/%s", f.acct, DefaultMFAPolicyName)
			})
			if has != want {
				f.t.Fatalf("policy attached %t, want %t", has, want)
			}
		}
	}
	past := func(f *fx) time.Time { return f.now().Add(-time.Hour) }
	runTable(t, newEnforceMFA, []tcase[EnforceMFAInput, EnforceMFAOutput]{
		{name: "attach after the grace period; a retry finds it attached", setup: func(f *fx) EnforceMFAInput {
			f.mfaPolicy()
			f.consoleUser("alice", consoleSpec{console: true})
			return EnforceMFAInput{AccountID: f.acct, UserName: "alice", Action: "attach", GraceDeadline: past(f)}
		}, retry: true, check: attached(true, ResultAttached, ResultAlreadyAttached)},
		{name: "attach before the grace deadline is refused", setup: func(f *fx) EnforceMFAInput {
			f.mfaPolicy()
			f.consoleUser("alice", consoleSpec{console: true})
			return EnforceMFAInput{AccountID: f.acct, UserName: "alice", Action: "attach", GraceDeadline: f.now().Add(time.Hour)}
		}, wantErr: "GracePeriodNotOver", check: attached(false)},
		{name: "attach without a deadline is refused", setup: func(f *fx) EnforceMFAInput {
			return EnforceMFAInput{AccountID: f.acct, UserName: "alice", Action: "attach"}
		}, wantErr: "InvalidInput"},
		{name: "a user who enrolled meanwhile is left alone", setup: func(f *fx) EnforceMFAInput {
			f.mfaPolicy()
			f.consoleUser("bob", consoleSpec{console: true, mfa: true})
			return EnforceMFAInput{AccountID: f.acct, UserName: "bob", Action: "attach", GraceDeadline: past(f)}
		}, check: attached(false, ResultEnrolled)},
		{name: "a user whose console access was removed is left alone", setup: func(f *fx) EnforceMFAInput {
			f.mfaPolicy()
			f.consoleUser("carol", consoleSpec{})
			return EnforceMFAInput{AccountID: f.acct, UserName: "carol", Action: "attach", GraceDeadline: past(f)}
		}, check: attached(false, ResultNoConsole)},
		{name: "dry run attaches nothing", setup: func(f *fx) EnforceMFAInput {
			f.mfaPolicy()
			f.consoleUser("alice", consoleSpec{console: true})
			return EnforceMFAInput{AccountID: f.acct, UserName: "alice", Action: "attach", GraceDeadline: past(f), DryRun: true}
		}, check: attached(false, ResultWouldAttach)},
		{name: "the policy is missing in the account", setup: func(f *fx) EnforceMFAInput {
			f.consoleUser("alice", consoleSpec{console: true})
			return EnforceMFAInput{AccountID: f.acct, UserName: "alice", Action: "attach", GraceDeadline: past(f)}
		}, wantErr: "PolicyNotFound"},
		{name: "detach after enrolment; a retry finds it detached", setup: func(f *fx) EnforceMFAInput {
			f.mfaPolicy()
			f.consoleUser("erin", consoleSpec{console: true, mfa: true, attached: true})
			return EnforceMFAInput{AccountID: f.acct, UserName: "erin", Action: "detach"}
		}, retry: true, check: attached(false, ResultDetached, ResultNotAttached)},
		{name: "no such user", setup: func(f *fx) EnforceMFAInput {
			return EnforceMFAInput{AccountID: f.acct, UserName: "ghost", Action: "detach"}
		}, wantErr: "UserNotFound"},
		{name: "unknown action", setup: func(f *fx) EnforceMFAInput {
			return EnforceMFAInput{AccountID: f.acct, UserName: "alice", Action: "toggle"}
		}, wantErr: "InvalidInput"},
	})
}

const mfaMachine = "arn:aws:states:us-east-1:999999999999:stateMachine:keyflow-mfa"

func newHygiene(f *fx) func(context.Context, HygieneInput) (*HygieneOutput, error) {
	return (&Hygiene{Accounts: f.accounts, Now: f.now, Log: f.log, PolicyArn: mfaPolicyArn,
		Executions: runningMFA{f}, MFAStateMachineArn: mfaMachine}).Handle
}

// runningMFA is Step Functions with f.running the MFA executions running,
// in pages of two.
type runningMFA struct{ f *fx }

func (r runningMFA) ListExecutions(_ context.Context, in *sfn.ListExecutionsInput, _ ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
	if aws.ToString(in.StateMachineArn) != mfaMachine || in.StatusFilter != sfntypes.ExecutionStatusRunning {
		r.f.t.Fatalf("ListExecutions of %s, status %q", aws.ToString(in.StateMachineArn), in.StatusFilter)
	}
	from := 0
	if in.NextToken != nil {
		from, _ = strconv.Atoi(*in.NextToken)
	}
	out := &sfn.ListExecutionsOutput{}
	for i := from; i < len(r.f.running) && i < from+2; i++ {
		out.Executions = append(out.Executions, sfntypes.ExecutionListItem{Name: aws.String(r.f.running[i]), Status: sfntypes.ExecutionStatusRunning})
	}
	if from+2 < len(r.f.running) {
		out.NextToken = aws.String(strconv.Itoa(from + 2))
	}
	return out, nil
}

func TestHygiene(t *testing.T) {
	seed := func(f *fx) {
		f.mfaPolicy()
		f.consoleUser("alice", consoleSpec{console: true})                           // enforce
		f.consoleUser("bob", consoleSpec{console: true, mfa: true})                  // fine
		f.consoleUser("carol", consoleSpec{})                                        // API only: fine
		f.consoleUser("dave", consoleSpec{console: true})                            // exempt
		f.consoleUser("erin", consoleSpec{console: true, mfa: true, attached: true}) // release
		f.consoleUser("frank", consoleSpec{console: true, attached: true})           // enforced
	}
	exempt := func(f *fx) []Exemption {
		return []Exemption{{Scope: "user", Value: "dave", Reason: "break-glass", Owner: "sec@example.com", Expires: f.now().Add(30 * 24 * time.Hour)}}
	}
	names := func(rs []MFAReport) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.UserName+":"+r.Action)
		}
		return out
	}
	runTable(t, newHygiene, []tcase[HygieneInput, HygieneOutput]{
		{name: "console users without MFA, releases, exemptions, password policy", setup: func(f *fx) HygieneInput {
			seed(f)
			return HygieneInput{AccountID: f.acct, Exemptions: exempt(f)}
		}, retry: true, check: func(f *fx, in HygieneInput, out *HygieneOutput) {
			if got, want := names(out.Users), []string{"alice:enforce", "erin:release"}; !slices.Equal(got, want) {
				f.t.Fatalf("users %v, want %v", got, want)
			}
			if got := names(out.Enforced); !slices.Equal(got, []string{"frank:enforced"}) {
				f.t.Fatalf("enforced %v", got)
			}
			if got := names(out.Exempt); !slices.Equal(got, []string{"dave:exempt"}) || out.Exempt[0].ExemptOwner != "sec@example.com" {
				f.t.Fatalf("exempt %v", out.Exempt)
			}
			if out.ConsoleUsers != 5 {
				f.t.Fatalf("console users %d, want 5", out.ConsoleUsers)
			}
			if d := out.Users[0].GraceDeadline; !d.Equal(out.CheckedAt.Add(DefaultMFAGraceDays * 24 * time.Hour)) {
				f.t.Fatalf("grace deadline %s, checked at %s", d, out.CheckedAt)
			}
			if len(out.PasswordPolicies) != 1 || out.PasswordPolicies[0].Compliant || out.PasswordPolicies[0].Present {
				f.t.Fatalf("password policy %+v", out.PasswordPolicies)
			}
		}},
		{name: "grace days and a compliant password policy", setup: func(f *fx) HygieneInput {
			f.consoleUser("alice", consoleSpec{console: true})
			if _, err := f.console().UpdateAccountPasswordPolicy(f.t.Context(), &iam.UpdateAccountPasswordPolicyInput{
				MinimumPasswordLength: aws.Int32(16), RequireUppercaseCharacters: true, RequireLowercaseCharacters: true,
				RequireNumbers: true, RequireSymbols: true, PasswordReusePrevention: aws.Int32(24), MaxPasswordAge: aws.Int32(60),
			}); err != nil {
				f.t.Fatal(err)
			}
			return HygieneInput{AccountID: f.acct, GraceDays: 3}
		}, check: func(f *fx, in HygieneInput, out *HygieneOutput) {
			if d := out.Users[0].GraceDeadline; !d.Equal(out.CheckedAt.Add(3 * 24 * time.Hour)) {
				f.t.Fatalf("grace deadline %s", d)
			}
			if p := out.PasswordPolicies[0]; !p.Compliant || p.Current.MinimumLength != 16 {
				f.t.Fatalf("password policy %+v", p)
			}
		}},
		{name: "pages of three users: each user once, the password policy once", setup: func(f *fx) HygieneInput {
			f.mfaPolicy()
			for i := range 8 {
				// Every other user is a console user without MFA.
				f.consoleUser(fmt.Sprintf("user%02d", i), consoleSpec{console: true, mfa: i%2 == 1})
			}
			return HygieneInput{AccountID: f.acct, MaxUsers: 3}
		}, sandboxOnly: "moto 5.2.1's ListUsers ignores MaxItems and returns every user in one page",
			check: func(f *fx, in HygieneInput, out *HygieneOutput) {
				var users []string
				policies, pages := 0, 0
				for {
					pages++
					// The first page spends one of its three on the password
					// policy; each reads at most MaxUsers users.
					if n := len(out.Users) + len(out.Enforced) + len(out.Exempt); n > in.MaxUsers {
						f.t.Fatalf("page %d reports %d users, more than maxUsers %d", pages, n, in.MaxUsers)
					}
					users = append(users, names(out.Users)...)
					policies += len(out.PasswordPolicies)
					if out.NextMarker == "" {
						break
					}
					if pages > 10 {
						f.t.Fatalf("still paging after %d pages (marker %q)", pages, out.NextMarker)
					}
					in.Marker = out.NextMarker
					var err error
					if out, err = invoke(f.t, newHygiene(f), in); err != nil {
						f.t.Fatal(err)
					}
				}
				want := []string{"user00:enforce", "user02:enforce", "user04:enforce", "user06:enforce"}
				if !slices.Equal(users, want) || policies != 1 || pages != 3 {
					f.t.Fatalf("%d pages: users %v, %d password policies; want 3 pages, %v and one policy", pages, users, policies, want)
				}
			}},
		{name: "a user whose enforcement runs is enforcing, not started again", setup: func(f *fx) HygieneInput {
			seed(f)
			f.consoleUser("grace", consoleSpec{console: true})
			f.running = []string{
				"unrelated-execution",
				MFAEnforcementPrefix(f.acct, "alice") + "-2026-02-27", // alice's, started two days ago
				MFAEnforcementPrefix(f.acct, "nobody") + "-2026-02-28",
				MFAEnforcementPrefix(f.acct, "grace"), // named before the day was added
			}
			return HygieneInput{AccountID: f.acct, Exemptions: exempt(f)}
		}, retry: true, check: func(f *fx, in HygieneInput, out *HygieneOutput) {
			if got, want := names(out.Users), []string{"erin:release"}; !slices.Equal(got, want) {
				f.t.Fatalf("users %v, want %v", got, want)
			}
			if got, want := names(out.Enforcing), []string{"alice:enforcing", "grace:enforcing"}; !slices.Equal(got, want) {
				f.t.Fatalf("enforcing %v, want %v", got, want)
			}
			if !out.Enforcing[0].GraceDeadline.IsZero() {
				f.t.Fatalf("a running enforcement's user got a new deadline %s", out.Enforcing[0].GraceDeadline)
			}
		}},
		{name: "an enforcement of another user, or one that ended, starts nothing aside", setup: func(f *fx) HygieneInput {
			seed(f)
			// bob-like names: another user's enforcement runs; alice's
			// ended (ListExecutions lists running ones only).
			f.running = []string{MFAEnforcementPrefix(f.acct, "alic") + "-2026-02-27", MFAEnforcementPrefix("999999999999", "alice") + "-2026-02-27"}
			return HygieneInput{AccountID: f.acct, Exemptions: exempt(f)}
		}, check: func(f *fx, in HygieneInput, out *HygieneOutput) {
			if got, want := names(out.Users), []string{"alice:enforce", "erin:release"}; !slices.Equal(got, want) || len(out.Enforcing) != 0 {
				f.t.Fatalf("users %v, enforcing %v; want %v and none", got, names(out.Enforcing), want)
			}
		}},
		{name: "a marker of another account", setup: func(f *fx) HygieneInput {
			return HygieneInput{AccountID: f.acct, Marker: "999999999999:abc"}
		}, wantErr: "InvalidInput"},
		{name: "a page larger than IAM's", setup: func(f *fx) HygieneInput {
			return HygieneInput{AccountID: f.acct, MaxUsers: 1001}
		}, wantErr: "InvalidInput"},
		{name: "negative grace days", setup: func(f *fx) HygieneInput {
			return HygieneInput{AccountID: f.acct, GraceDays: -1}
		}, wantErr: "InvalidInput"},
	})
}

func TestComparePasswordPolicy(t *testing.T) {
	cases := []struct {
		name     string
		cur      PasswordBaseline
		findings int
	}{
		{"equal to the baseline", DefaultPasswordBaseline, 0},
		{"stricter", PasswordBaseline{MinimumLength: 20, RequireUppercase: true, RequireLowercase: true, RequireNumbers: true, RequireSymbols: true, ReusePrevention: 24, MaxAgeDays: 30}, 0},
		{"short, no symbols, no expiry", PasswordBaseline{MinimumLength: 8, RequireUppercase: true, RequireLowercase: true, RequireNumbers: true, ReusePrevention: 24}, 3},
		{"everything missing", PasswordBaseline{MinimumLength: 6}, 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := toPolicy(c.cur)
			r := comparePasswordPolicy("111122223333", p, DefaultPasswordBaseline)
			if len(r.Findings) != c.findings || r.Compliant != (c.findings == 0) {
				t.Errorf("findings %q, want %d", r.Findings, c.findings)
			}
		})
	}
	if r := comparePasswordPolicy("111122223333", nil, DefaultPasswordBaseline); r.Compliant || r.Present {
		t.Errorf("no policy reported as %+v", r)
	}
}

func toPolicy(b PasswordBaseline) *iamtypes.PasswordPolicy {
	p := &iamtypes.PasswordPolicy{
		MinimumPasswordLength: aws.Int32(int32(b.MinimumLength)), RequireUppercaseCharacters: b.RequireUppercase,
		RequireLowercaseCharacters: b.RequireLowercase, RequireNumbers: b.RequireNumbers, RequireSymbols: b.RequireSymbols,
	}
	if b.ReusePrevention > 0 {
		p.PasswordReusePrevention = aws.Int32(int32(b.ReusePrevention))
	}
	if b.MaxAgeDays > 0 {
		p.MaxPasswordAge, p.ExpirePasswords = aws.Int32(int32(b.MaxAgeDays)), true
	}
	return p
}

func newSetPasswordPolicy(f *fx) func(context.Context, SetPasswordPolicyInput) (*SetPasswordPolicyOutput, error) {
	return (&SetPasswordPolicy{Accounts: f.accounts, Now: f.now, Log: f.log}).Handle
}

func TestSetPasswordPolicy(t *testing.T) {
	current := func(f *fx) PasswordBaseline {
		f.t.Helper()
		p, err := readPasswordPolicy(f.t.Context(), f.iam(f.acct))
		if err != nil {
			f.t.Fatal(err)
		}
		return baselineOf(p)
	}
	runTable(t, newSetPasswordPolicy, []tcase[SetPasswordPolicyInput, SetPasswordPolicyOutput]{
		{name: "no policy: the baseline is set; a retry finds it compliant", setup: func(f *fx) SetPasswordPolicyInput {
			return SetPasswordPolicyInput{AccountID: f.acct}
		}, retry: true, check: func(f *fx, in SetPasswordPolicyInput, out *SetPasswordPolicyOutput) {
			if got := current(f); got != DefaultPasswordBaseline {
				f.t.Fatalf("policy %+v, want %+v", got, DefaultPasswordBaseline)
			}
		}},
		{name: "only tightens: a longer minimum and shorter age stay", setup: func(f *fx) SetPasswordPolicyInput {
			if _, err := f.console().UpdateAccountPasswordPolicy(f.t.Context(), &iam.UpdateAccountPasswordPolicyInput{
				MinimumPasswordLength: aws.Int32(20), MaxPasswordAge: aws.Int32(30),
			}); err != nil {
				f.t.Fatal(err)
			}
			return SetPasswordPolicyInput{AccountID: f.acct}
		}, check: func(f *fx, in SetPasswordPolicyInput, out *SetPasswordPolicyOutput) {
			want := DefaultPasswordBaseline
			want.MinimumLength, want.MaxAgeDays = 20, 30
			if got := current(f); got != want || !out.Changed {
				f.t.Fatalf("policy %+v (changed %t), want %+v", got, out.Changed, want)
			}
		}},
		{name: "dry run changes nothing", setup: func(f *fx) SetPasswordPolicyInput {
			return SetPasswordPolicyInput{AccountID: f.acct, DryRun: true}
		}, check: func(f *fx, in SetPasswordPolicyInput, out *SetPasswordPolicyOutput) {
			if out.Changed || out.Before.Compliant || current(f) != (PasswordBaseline{}) {
				f.t.Fatalf("dry run changed the policy: %+v", out)
			}
		}},
		{name: "a baseline IAM would refuse", setup: func(f *fx) SetPasswordPolicyInput {
			return SetPasswordPolicyInput{AccountID: f.acct, Baseline: &PasswordBaseline{MinimumLength: 200}}
		}, wantErr: "InvalidInput"},
	})
}

// TestMFAPolicyFor: the central stack's policy (whatever CloudFormation
// named it) in its own account, the member stacks' copy by name anywhere
// else; a bad configuration is refused before any call.
func TestMFAPolicyFor(t *testing.T) {
	const central = "arn:aws:iam::111111111111:policy/keyflow-central-MFARequiredPolicy-1A2B3C4D5E6F"
	for _, c := range []struct {
		name, configured, member, account string
		want, wantErr                     string
	}{
		{name: "the central account's own policy", configured: central, account: "111111111111", want: central},
		{name: "a member account's copy, default name", configured: central, account: "222222222222",
			want: "arn:aws:iam::222222222222:policy/" + DefaultMFAPolicyName},
		{name: "a member account's copy, configured name", configured: central, member: "acme-mfa", account: "222222222222",
			want: "arn:aws:iam::222222222222:policy/acme-mfa"},
		{name: "another partition", configured: "arn:aws-us-gov:iam::111111111111:policy/p", account: "222222222222",
			want: "arn:aws-us-gov:iam::222222222222:policy/" + DefaultMFAPolicyName},
		{name: "nothing configured", account: "111111111111", wantErr: "KEYFLOW_MFA_POLICY_ARN"},
		{name: "not a policy ARN", configured: "arn:aws:iam::111111111111:role/r", account: "111111111111", wantErr: "not an IAM policy ARN"},
		{name: "a member name IAM refuses", configured: central, member: "mfa/required", account: "222222222222", wantErr: "KEYFLOW_MFA_MEMBER_POLICY_NAME"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := mfaPolicyFor(c.configured, c.member, c.account)
			switch {
			case c.wantErr != "":
				var bad *InvalidInput
				if !errors.As(err, &bad) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %q, %v; want an InvalidInput saying %q", got, err, c.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case got != c.want:
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

// TestHygieneNeedsTheMFAMachine: without the running enforcements to look
// at, a run that starts enforcements is refused before any call: each
// day's run would start another enforcement of a user in grace.
func TestHygieneNeedsTheMFAMachine(t *testing.T) {
	for _, h := range []*Hygiene{
		{PolicyArn: mfaPolicyArn},
		{PolicyArn: mfaPolicyArn, Executions: runningMFA{}},
		{PolicyArn: mfaPolicyArn, MFAStateMachineArn: mfaMachine},
	} {
		_, err := h.Handle(t.Context(), HygieneInput{AccountID: "111122223333"})
		var bad *InvalidInput
		if !errors.As(err, &bad) || bad.Field != "mfaStateMachineArn" {
			t.Errorf("executions %v, machine %q: %v, want InvalidInput on mfaStateMachineArn", h.Executions != nil, h.MFAStateMachineArn, err)
		}
	}
}
