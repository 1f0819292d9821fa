package policy

import (
	"fmt"
	"slices"
	"testing"
)

// admin is the allow-all policy an administrator (or a careless account)
// gives users: the generated deny policies must hold even beside it.
var admin = &Document{Version: Version, Statement: []Statement{{Sid: "Admin", Effect: Allow, Action: Values{"*"}, Resource: Values{"*"}}}}

const (
	alice = "arn:aws:iam::111122223333:user/alice"
	bob   = "arn:aws:iam::111122223333:user/bob"
)

// ctx builds a request context for alice. mfa is "true", "false" or ""
// (absent, as for long-term access keys).
func ctx(mfa string, kv ...string) map[string][]string {
	c := map[string][]string{KeyUserName: {"alice"}}
	if mfa != "" {
		c[KeyMFAPresent] = []string{mfa}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = []string{kv[i+1]}
	}
	return c
}

type evalCase struct {
	name     string
	req      Request
	decision Decision
	sid      string // the statement that decides; "" when none is checked
}

// mfaCases is the MFA-required policy beside admin: with MFA everything
// the admin policy grants; without it only enrolment on one's own user.
var mfaCases = []evalCase{
	{"any action with MFA", Request{"s3:ListAllMyBuckets", "*", ctx("true")}, Allowed, "Admin"},
	{"any action without MFA", Request{"s3:ListAllMyBuckets", "*", ctx("false")}, ExplicitDeny, SidDenyAllWithoutMFA},
	{"any action with MFA key absent (access keys)", Request{"ec2:RunInstances", "*", ctx("")}, ExplicitDeny, SidDenyAllWithoutMFA},
	{"create own key without MFA", Request{"iam:CreateAccessKey", alice, ctx("false")}, ExplicitDeny, SidDenyAllWithoutMFA},
	{"create virtual device without MFA", Request{"iam:CreateVirtualMFADevice", "arn:aws:iam::111122223333:mfa/alice", ctx("false")}, Allowed, ""},
	{"enable own device without MFA", Request{"iam:EnableMFADevice", alice, ctx("false")}, Allowed, ""},
	{"enable own device, MFA key absent", Request{"iam:EnableMFADevice", alice, ctx("")}, Allowed, ""},
	{"resync own device without MFA", Request{"iam:ResyncMFADevice", alice, ctx("false")}, Allowed, ""},
	{"list own devices without MFA", Request{"iam:ListMFADevices", alice, ctx("false")}, Allowed, ""},
	{"get own device without MFA", Request{"iam:GetMFADevice", alice, ctx("false")}, Allowed, ""},
	{"list virtual devices without MFA", Request{"iam:ListVirtualMFADevices", "*", ctx("false")}, Allowed, ""},
	{"read own user without MFA", Request{"iam:GetUser", alice, ctx("false")}, Allowed, ""},
	{"change own password without MFA", Request{"iam:ChangePassword", alice, ctx("false")}, Allowed, ""},
	{"read password policy without MFA", Request{"iam:GetAccountPasswordPolicy", "*", ctx("false")}, Allowed, ""},
	{"MFA session token without MFA", Request{"sts:GetSessionToken", "*", ctx("")}, Allowed, ""},
	{"read someone else's user without MFA", Request{"iam:GetUser", bob, ctx("false")}, ExplicitDeny, SidDenyOthersWithoutMFA},
	{"enable a device on someone else without MFA", Request{"iam:EnableMFADevice", bob, ctx("false")}, ExplicitDeny, SidDenyOthersWithoutMFA},
	{"change someone else's password without MFA", Request{"iam:ChangePassword", bob, ctx("")}, ExplicitDeny, SidDenyOthersWithoutMFA},
	{"read someone else's user with MFA", Request{"iam:GetUser", bob, ctx("true")}, Allowed, "Admin"},
	{"deactivate own device without MFA", Request{"iam:DeactivateMFADevice", alice, ctx("false")}, ExplicitDeny, SidDenyAllWithoutMFA},
	{"deactivate own device with MFA", Request{"iam:DeactivateMFADevice", alice, ctx("true")}, Allowed, ""},
	{"action names are case-insensitive", Request{"S3:listallmybuckets", "*", ctx("false")}, ExplicitDeny, SidDenyAllWithoutMFA},
	{"MFA value is case-insensitive", Request{"s3:ListAllMyBuckets", "*", ctx("TRUE")}, Allowed, "Admin"},
}

// mfaAloneCases is the MFA-required policy as a user's only policy: it lets
// the user enrol and grants nothing else.
var mfaAloneCases = []evalCase{
	{"enrol alone without MFA", Request{"iam:EnableMFADevice", alice, ctx("false")}, Allowed, SidAllowManageOwnMFA},
	{"create device alone without MFA", Request{"iam:CreateVirtualMFADevice", "arn:aws:iam::111122223333:mfa/alice", ctx("false")}, Allowed, SidAllowEnrolOwnMFA},
	{"other service alone with MFA", Request{"s3:ListAllMyBuckets", "*", ctx("true")}, ImplicitDeny, ""},
	{"someone else alone with MFA", Request{"iam:GetUser", bob, ctx("true")}, ImplicitDeny, ""},
	{"a user named * gets no one else's user", Request{"iam:GetUser", bob, map[string][]string{KeyUserName: {"*"}, KeyMFAPresent: {"true"}}}, ImplicitDeny, ""},
}

var ranges = []string{"203.0.113.0/24", "198.51.100.7", "2001:db8::/32"}

// sourceIPCases is the source-IP policy beside admin.
var sourceIPCases = []evalCase{
	{"inside the v4 range", Request{"s3:GetObject", "*", ctx("", KeySourceIP, "203.0.113.9", KeyViaAWSService, "false")}, Allowed, "Admin"},
	{"the single address", Request{"s3:GetObject", "*", ctx("", KeySourceIP, "198.51.100.7", KeyViaAWSService, "false")}, Allowed, "Admin"},
	{"next to the single address", Request{"s3:GetObject", "*", ctx("", KeySourceIP, "198.51.100.8", KeyViaAWSService, "false")}, ExplicitDeny, SidDenyOutsideSourceRange},
	{"inside the v6 range", Request{"s3:GetObject", "*", ctx("", KeySourceIP, "2001:db8:1::5", KeyViaAWSService, "false")}, Allowed, "Admin"},
	{"v4-mapped v6 inside", Request{"s3:GetObject", "*", ctx("", KeySourceIP, "::ffff:203.0.113.9", KeyViaAWSService, "false")}, Allowed, "Admin"},
	{"outside the ranges", Request{"s3:GetObject", "*", ctx("", KeySourceIP, "192.0.2.1", KeyViaAWSService, "false")}, ExplicitDeny, SidDenyOutsideSourceRange},
	{"outside, enrolling MFA", Request{"iam:EnableMFADevice", alice, ctx("true", KeySourceIP, "192.0.2.1", KeyViaAWSService, "false")}, ExplicitDeny, SidDenyOutsideSourceRange},
	{"outside, via an AWS service", Request{"s3:GetObject", "*", ctx("", KeySourceIP, "192.0.2.1", KeyViaAWSService, "true")}, Allowed, "Admin"},
	{"no source address, not via a service", Request{"s3:GetObject", "*", ctx("", KeyViaAWSService, "false")}, ExplicitDeny, SidDenyOutsideSourceRange},
	{"unparsable source address", Request{"s3:GetObject", "*", ctx("", KeySourceIP, "not-an-ip", KeyViaAWSService, "false")}, ExplicitDeny, SidDenyOutsideSourceRange},
}

func runCases(t *testing.T, cases []evalCase, docs ...*Document) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Evaluate(c.req, docs...)
			if err != nil {
				t.Fatal(err)
			}
			if res.Decision != c.decision || (c.sid != "" && res.Sid != c.sid) {
				t.Errorf("%s on %s: got %v by %q, want %v by %q", c.req.Action, c.req.Resource, res.Decision, res.Sid, c.decision, c.sid)
			}
		})
	}
}

func TestMFARequired(t *testing.T) {
	runCases(t, mfaCases, admin, MFARequired(""))
	// Order of the policies does not matter: a deny in the first wins too.
	runCases(t, mfaCases[1:4], MFARequired(""), admin)
}

func TestMFARequiredAlone(t *testing.T) { runCases(t, mfaAloneCases, MFARequired("")) }

func TestSourceIPRestriction(t *testing.T) {
	doc, err := SourceIPRestriction(ranges)
	if err != nil {
		t.Fatal(err)
	}
	runCases(t, sourceIPCases, admin, doc)
	// Both policies together: the IP restriction applies even with MFA.
	runCases(t, []evalCase{
		{"MFA, inside", Request{"s3:GetObject", "*", ctx("true", KeySourceIP, "203.0.113.9", KeyViaAWSService, "false")}, Allowed, "Admin"},
		{"MFA, outside", Request{"s3:GetObject", "*", ctx("true", KeySourceIP, "192.0.2.1", KeyViaAWSService, "false")}, ExplicitDeny, SidDenyOutsideSourceRange},
		{"no MFA, inside, enrolling", Request{"iam:EnableMFADevice", alice, ctx("false", KeySourceIP, "203.0.113.9", KeyViaAWSService, "false")}, Allowed, ""},
	}, admin, MFARequired(""), doc)
}

func TestSourceIPRestrictionRefusesLockout(t *testing.T) {
	for _, in := range [][]string{nil, {}, {"10.0.0.0/33"}, {"example.com"}} {
		if _, err := SourceIPRestriction(in); err == nil {
			t.Errorf("SourceIPRestriction(%q) = nil error", in)
		}
	}
}

// TestMFAEnrolmentActionsAreNeeded proves the table above guards every
// action the MFA policy leaves to users without MFA: removing any one of
// them from the deny's exceptions (the edit that locks people out) makes at
// least one case fail.
func TestMFAEnrolmentActionsAreNeeded(t *testing.T) {
	for _, a := range MFAEnrolmentActions {
		doc := MFARequired("")
		for i := range doc.Statement {
			s := &doc.Statement[i]
			if s.Sid == SidDenyAllWithoutMFA {
				s.NotAction = slices.DeleteFunc(slices.Clone(s.NotAction), func(x string) bool { return x == a })
			}
		}
		if failing(mfaCases, admin, doc) == 0 {
			t.Errorf("removing %s from the MFA policy's exceptions fails no case", a)
		}
	}
	// Dropping the condition (deny whatever the MFA state) or the deny of
	// other users is also caught.
	for _, sid := range []string{SidDenyAllWithoutMFA, SidDenyOthersWithoutMFA} {
		doc := MFARequired("")
		doc.Statement = slices.DeleteFunc(doc.Statement, func(s Statement) bool { return s.Sid == sid })
		if failing(mfaCases, admin, doc) == 0 {
			t.Errorf("dropping %s fails no case", sid)
		}
	}
	doc := MFARequired("")
	doc.Statement[3].Condition = Condition{"Bool": {KeyMFAPresent: {"false"}}}
	if failing(mfaCases, admin, doc) == 0 {
		t.Error("Bool instead of BoolIfExists (long-term keys escape the policy) fails no case")
	}
}

func failing(cases []evalCase, docs ...*Document) int {
	n := 0
	for _, c := range cases {
		res, err := Evaluate(c.req, docs...)
		if err != nil || res.Decision != c.decision {
			n++
		}
	}
	return n
}

func TestConditionOperators(t *testing.T) {
	cond := func(op, key string, vals ...string) *Document {
		return &Document{Version: Version, Statement: []Statement{{Effect: Allow, Action: Values{"*"}, Resource: Values{"*"}, Condition: Condition{op: {key: vals}}}}}
	}
	cases := []struct {
		op   string
		vals []string
		ctx  map[string][]string
		want Decision
	}{
		{"Bool", []string{"true"}, map[string][]string{"k": {"true"}}, Allowed},
		{"Bool", []string{"true"}, nil, ImplicitDeny},
		{"BoolIfExists", []string{"true"}, nil, Allowed},
		{"BoolIfExists", []string{"true"}, map[string][]string{"k": {"false"}}, ImplicitDeny},
		{"StringEquals", []string{"a", "b"}, map[string][]string{"K": {"b"}}, Allowed},
		{"StringEquals", []string{"a"}, map[string][]string{"k": {"A"}}, ImplicitDeny},
		{"StringEqualsIgnoreCase", []string{"a"}, map[string][]string{"k": {"A"}}, Allowed},
		{"StringNotEquals", []string{"a"}, nil, Allowed},
		{"StringNotEquals", []string{"a"}, map[string][]string{"k": {"a"}}, ImplicitDeny},
		{"StringLike", []string{"dev-*"}, map[string][]string{"k": {"dev-1"}}, Allowed},
		{"StringLike", []string{"${aws:username}-*"}, map[string][]string{"k": {"alice-x"}, "aws:username": {"alice"}}, Allowed},
		{"StringLike", []string{"${aws:username}-*"}, map[string][]string{"k": {"alice-x"}}, ImplicitDeny},
		{"StringNotLike", []string{"dev-*"}, map[string][]string{"k": {"prod"}}, Allowed},
		{"ArnLike", []string{"arn:aws:iam::*:user/*"}, map[string][]string{"k": {alice}}, Allowed},
		{"IpAddress", []string{"10.0.0.0/8"}, map[string][]string{"k": {"10.1.2.3"}}, Allowed},
		{"IpAddress", []string{"10.0.0.0/8"}, nil, ImplicitDeny},
		{"IpAddressIfExists", []string{"10.0.0.0/8"}, nil, Allowed},
		{"NotIpAddress", []string{"10.0.0.0/8"}, map[string][]string{"k": {"11.0.0.1"}}, Allowed},
		{"NotIpAddress", []string{"10.0.0.0/8"}, nil, Allowed},
		{"Null", []string{"true"}, nil, Allowed},
		{"Null", []string{"false"}, nil, ImplicitDeny},
		{"Null", []string{"false"}, map[string][]string{"k": {"x"}}, Allowed},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %v %v", c.op, c.vals, c.ctx), func(t *testing.T) {
			res, err := Evaluate(Request{Action: "s3:GetObject", Resource: "*", Context: c.ctx}, cond(c.op, "k", c.vals...))
			if err != nil {
				t.Fatal(err)
			}
			if res.Decision != c.want {
				t.Errorf("got %v, want %v", res.Decision, c.want)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"iam:*MFA*", "iam:EnableMFADevice", true},
		{"iam:Get?ser", "iam:GetUser", true},
		{"iam:Get?ser", "iam:GetUsers", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"arn:aws:iam::*:user/\x00*", "arn:aws:iam::1:user/*", true},
		{"arn:aws:iam::*:user/\x00*", "arn:aws:iam::1:user/bob", false},
		{"", "", true},
		{"", "x", false},
		{"***a", "a", true},
	}
	for _, c := range cases {
		if got := glob(c.p, c.s); got != c.want {
			t.Errorf("glob(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func TestEvaluateRefusesInvalidDocuments(t *testing.T) {
	bad := &Document{Version: Version, Statement: []Statement{{Effect: Deny, Action: Values{"*"}, Resource: Values{"*"}, Condition: Condition{"ForAnyValue:StringLike": {"k": {"x"}}}}}}
	if _, err := Evaluate(Request{Action: "s3:GetObject", Resource: "*"}, admin, bad); err == nil {
		t.Error("an unsupported operator in a deny was evaluated instead of refused")
	}
	if _, err := Evaluate(Request{Action: "s3:GetObject", Resource: "*"}, nil); err == nil {
		t.Error("a nil document was evaluated")
	}
}

// TestEvaluateConcurrently: documents are read, never written, by Evaluate.
func TestEvaluateConcurrently(t *testing.T) {
	doc := MFARequired("")
	done := make(chan bool)
	for range 4 {
		go func() {
			for _, c := range mfaCases {
				if res, err := Evaluate(c.req, admin, doc); err != nil || res.Decision != c.decision {
					done <- false
					return
				}
			}
			done <- true
		}()
	}
	for range 4 {
		if !<-done {
			t.Error("a concurrent evaluation disagreed with the table")
		}
	}
}
