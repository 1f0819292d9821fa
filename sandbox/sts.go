package sandbox

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// STS is STS as seen from one account's credentials, with the methods of
// *sts.Client.
type STS struct {
	s       *Sandbox
	account string
}

// STS returns the STS client of a caller in the account.
func (s *Sandbox) STS(accountID string) *STS { return &STS{s: s, account: accountID} }

func (s *Sandbox) callerARN(a *account) string {
	if a.caller != "" {
		return a.caller
	}
	return "arn:aws:iam::" + a.id + ":user/keyflow-local"
}

// GetCallerIdentity reports the account's configured caller.
func (c *STS) GetCallerIdentity(ctx context.Context, _ *sts.GetCallerIdentityInput, _ ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	var out *sts.GetCallerIdentityOutput
	err := c.s.read(ctx, func() error {
		arn := c.s.callerARN(c.s.peek(c.account))
		out = &sts.GetCallerIdentityOutput{Account: aws.String(c.account), Arn: aws.String(arn), UserId: aws.String(stableID(17, base32, arn))}
		if strings.Contains(arn, ":user/") {
			out.UserId = aws.String("AIDA" + *out.UserId)
		} else {
			out.UserId = aws.String("AROA" + *out.UserId)
		}
		return nil
	})
	return out, fail("STS", "GetCallerIdentity", err)
}

var roleARN = regexp.MustCompile(`^arn:aws:iam::(\d{12}):role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]{1,64})$`)
var sessionName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// AssumeRole returns temporary credentials, fake but well formed, for a role
// in a member account. The rule: the role's account is an ACTIVE account of
// the Organization and the role was registered with RegisterRole (Seed
// registers KeyflowMemberRole everywhere); otherwise AccessDenied, which is
// what AWS answers when the trust policy or the role is missing.
func (c *STS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	in = orEmpty(in)
	var out *sts.AssumeRoleOutput
	err := c.s.read(ctx, func() error {
		if err := required("AssumeRoleInput", param{"RoleArn", in.RoleArn != nil}, param{"RoleSessionName", in.RoleSessionName != nil}); err != nil {
			return err
		}
		if !sessionName.MatchString(*in.RoleSessionName) {
			return apiError("ValidationError", "1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", truncate(*in.RoleSessionName))
		}
		dur := aws.ToInt32(in.DurationSeconds)
		if in.DurationSeconds == nil {
			dur = 3600
		}
		if dur < 900 || dur > 43200 {
			return apiError("ValidationError", "1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", dur)
		}
		m := roleARN.FindStringSubmatch(*in.RoleArn)
		if m == nil {
			return apiError("ValidationError", "%s is invalid", truncate(*in.RoleArn))
		}
		target, role := m[1], m[2]
		denied := apiError("AccessDenied", "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", c.s.callerARN(c.s.peek(c.account)), *in.RoleArn)
		acct := c.s.org.accounts[target]
		if acct == nil || acct.Status != "ACTIVE" {
			return denied
		}
		if a := c.s.accounts[target]; a == nil || !a.roles[role] {
			return denied
		}
		now := c.s.clock()
		roleID := "AROA" + stableID(17, base32, *in.RoleArn)
		out = &sts.AssumeRoleOutput{
			AssumedRoleUser: &ststypes.AssumedRoleUser{
				Arn:           aws.String(fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", target, role, *in.RoleSessionName)),
				AssumedRoleId: aws.String(roleID + ":" + *in.RoleSessionName),
			},
			Credentials: &ststypes.Credentials{
				AccessKeyId:     aws.String("ASIA" + cryptoIDs{}.pick(16, base32)),
				SecretAccessKey: aws.String(secretAccessKey()),
				SessionToken:    aws.String("FwoGZXIvYXdzE" + cryptoIDs{}.pick(300, secretChars)),
				Expiration:      aws.Time(now.Add(time.Duration(dur) * time.Second)),
			},
		}
		return nil
	})
	return out, fail("STS", "AssumeRole", err)
}
