package policy

import (
	"fmt"
	"strings"
)

// Condition keys the generated policies test.
const (
	KeyMFAPresent    = "aws:MultiFactorAuthPresent"
	KeySourceIP      = "aws:SourceIp"
	KeyViaAWSService = "aws:ViaAWSService"
	KeyUserName      = "aws:username"
)

// Names of the customer-managed policies. MFARequiredName is the member
// template's MFA policy, which the handlers find by name in every member
// account; the central template's copy is named by CloudFormation, so that
// a member stack in the central account does not clash with it. tasks
// repeats MFARequiredName (it must not import this package); a cfn test
// keeps the two equal.
const (
	MFARequiredName = "keyflow-mfa-required"
	SourceIPName    = "keyflow-source-ip-restriction"
)

// Sids of the generated statements; tests and the audit name them.
const (
	SidAllowViewAccountMFA    = "AllowViewMFADevicesAndPasswordPolicy"
	SidAllowEnrolOwnMFA       = "AllowEnrolOwnVirtualMFADevice"
	SidAllowManageOwnMFA      = "AllowManageOwnMFAAndPassword"
	SidDenyAllWithoutMFA      = "DenyAllExceptMFAEnrolmentWithoutMFA"
	SidDenyOthersWithoutMFA   = "DenyOtherUsersWithoutMFA"
	SidDenyOutsideSourceRange = "DenyOutsideAllowedSourceIp"
)

// MFAEnrolmentActions are the only actions a user without an MFA session
// keeps: what the console's Security credentials page needs to register a
// virtual or hardware device and sign in again with it, what the CLI needs
// to get an MFA session (sts:GetSessionToken), and changing one's own
// password, without which a user whose password must be reset at first
// sign-in could never reach the page. Removing any of them locks users out;
// the evaluator's table tests catch that.
var MFAEnrolmentActions = []string{
	"iam:ChangePassword",
	"iam:CreateVirtualMFADevice",
	"iam:EnableMFADevice",
	"iam:GetAccountPasswordPolicy",
	"iam:GetMFADevice",
	"iam:GetUser",
	"iam:ListMFADevices",
	"iam:ListVirtualMFADevices",
	"iam:ResyncMFADevice",
	"sts:GetSessionToken",
}

// ownUserActions are the enrolment actions whose resource is a user: the
// deny of other users' resources covers exactly these.
var ownUserActions = []string{
	"iam:ChangePassword",
	"iam:EnableMFADevice",
	"iam:GetMFADevice",
	"iam:GetUser",
	"iam:ListMFADevices",
	"iam:ResyncMFADevice",
}

// MFARequired is the policy keyflow attaches to a console user who has not
// enrolled an MFA device by the grace deadline. Modelled on AWS's
// documented "manage own MFA device, require MFA for everything else"
// example: without an MFA session (aws:MultiFactorAuthPresent false, or
// absent as it is for long-term access keys) every action is denied except
// MFAEnrolmentActions, and those only on the user's own user; the Allow
// statements let the user enrol even if no other policy grants it. With an
// MFA session the policy grants nothing beyond managing one's own device:
// the user's other policies decide.
//
// partition is the ARN partition ("aws", "aws-cn", "aws-us-gov"); empty
// means "aws". cfn passes "${AWS::Partition}" and wraps the strings in
// Fn::Sub.
func MFARequired(partition string) *Document {
	if partition == "" {
		partition = "aws"
	}
	ownUser := fmt.Sprintf("arn:%s:iam::*:user/${%s}", partition, KeyUserName)
	anyMFA := fmt.Sprintf("arn:%s:iam::*:mfa/*", partition)
	noMFA := Condition{"BoolIfExists": {KeyMFAPresent: {"false"}}}
	return &Document{Version: Version, Statement: []Statement{
		{Sid: SidAllowViewAccountMFA, Effect: Allow,
			Action:   Values{"iam:GetAccountPasswordPolicy", "iam:ListVirtualMFADevices"},
			Resource: Values{"*"}},
		{Sid: SidAllowEnrolOwnMFA, Effect: Allow,
			Action:   Values{"iam:CreateVirtualMFADevice"},
			Resource: Values{anyMFA}},
		{Sid: SidAllowManageOwnMFA, Effect: Allow,
			Action:   Values{"iam:ChangePassword", "iam:DeactivateMFADevice", "iam:EnableMFADevice", "iam:GetMFADevice", "iam:GetUser", "iam:ListMFADevices", "iam:ResyncMFADevice"},
			Resource: Values{ownUser}},
		{Sid: SidDenyAllWithoutMFA, Effect: Deny,
			NotAction: Values(append([]string(nil), MFAEnrolmentActions...)),
			Resource:  Values{"*"},
			Condition: noMFA},
		{Sid: SidDenyOthersWithoutMFA, Effect: Deny,
			Action:      Values(append([]string(nil), ownUserActions...)),
			NotResource: Values{ownUser},
			Condition:   noMFA},
	}}
}

// SourceIPRestriction denies every action when the request comes from
// outside cidrs, except requests that an AWS service makes on the user's
// behalf (aws:ViaAWSService true: CloudFormation creating a bucket, Athena
// reading S3), whose source address is the service's. It refuses an empty
// or malformed list: an empty NotIpAddress denies everything to everyone.
func SourceIPRestriction(cidrs []string) (*Document, error) {
	if len(cidrs) == 0 {
		return nil, &Error{Pointer: "/Statement/0/Condition/NotIpAddress/" + KeySourceIP, Reason: "needs at least one range: an empty list denies every request"}
	}
	for _, c := range cidrs {
		if _, err := parsePrefix(strings.TrimSpace(c)); err != nil {
			return nil, &Error{Pointer: "/Statement/0/Condition/NotIpAddress/" + KeySourceIP, Reason: fmt.Sprintf("%q is not an IP address or CIDR range", preview(c)), Err: err}
		}
	}
	vals := make(Values, len(cidrs))
	for i, c := range cidrs {
		vals[i] = strings.TrimSpace(c)
	}
	return &Document{Version: Version, Statement: []Statement{
		{Sid: SidDenyOutsideSourceRange, Effect: Deny,
			Action:   Values{"*"},
			Resource: Values{"*"},
			Condition: Condition{
				"NotIpAddress": {KeySourceIP: vals},
				"Bool":         {KeyViaAWSService: {"false"}},
			}},
	}}, nil
}
