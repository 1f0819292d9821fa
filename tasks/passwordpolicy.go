package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// PasswordBaseline is the account password policy keyflow expects: the
// CIS AWS Foundations benchmark's recommendations by default.
type PasswordBaseline struct {
	MinimumLength    int  `json:"minimumLength"`
	RequireUppercase bool `json:"requireUppercase"`
	RequireLowercase bool `json:"requireLowercase"`
	RequireNumbers   bool `json:"requireNumbers"`
	RequireSymbols   bool `json:"requireSymbols"`
	// ReusePrevention is how many previous passwords may not be reused.
	ReusePrevention int `json:"reusePrevention"`
	// MaxAgeDays is the longest a password lives; 0 means no expiry
	// required.
	MaxAgeDays int `json:"maxAgeDays"`
}

// DefaultPasswordBaseline is CIS 1.8/1.9 (length 14, reuse 24) with every
// character class and a 90-day maximum age.
var DefaultPasswordBaseline = PasswordBaseline{
	MinimumLength: 14, RequireUppercase: true, RequireLowercase: true, RequireNumbers: true, RequireSymbols: true,
	ReusePrevention: 24, MaxAgeDays: 90,
}

func (b PasswordBaseline) validate() error {
	switch {
	case b.MinimumLength < 6 || b.MinimumLength > 128:
		return &InvalidInput{Field: "passwordBaseline.minimumLength", Reason: fmt.Sprintf("%d is outside IAM's 6 to 128", b.MinimumLength)}
	case b.ReusePrevention < 0 || b.ReusePrevention > 24:
		return &InvalidInput{Field: "passwordBaseline.reusePrevention", Reason: fmt.Sprintf("%d is outside IAM's 0 to 24", b.ReusePrevention)}
	case b.MaxAgeDays < 0 || b.MaxAgeDays > 1095:
		return &InvalidInput{Field: "passwordBaseline.maxAgeDays", Reason: fmt.Sprintf("%d is outside IAM's 0 to 1095", b.MaxAgeDays)}
	}
	return nil
}

// PasswordPolicyReport compares an account's password policy with the
// baseline. Findings name each shortfall; none means compliant.
type PasswordPolicyReport struct {
	AccountID string           `json:"accountId"`
	Present   bool             `json:"present"`
	Current   PasswordBaseline `json:"current"`
	Baseline  PasswordBaseline `json:"baseline"`
	Compliant bool             `json:"compliant"`
	Findings  []string         `json:"findings"`
}

func baselineOf(p *iamtypes.PasswordPolicy) PasswordBaseline {
	if p == nil {
		return PasswordBaseline{}
	}
	return PasswordBaseline{
		MinimumLength:    int(aws.ToInt32(p.MinimumPasswordLength)),
		RequireUppercase: p.RequireUppercaseCharacters, RequireLowercase: p.RequireLowercaseCharacters,
		RequireNumbers: p.RequireNumbers, RequireSymbols: p.RequireSymbols,
		ReusePrevention: int(aws.ToInt32(p.PasswordReusePrevention)),
		MaxAgeDays:      int(aws.ToInt32(p.MaxPasswordAge)),
	}
}

// comparePasswordPolicy lists where cur falls short of want.
func comparePasswordPolicy(accountID string, p *iamtypes.PasswordPolicy, want PasswordBaseline) PasswordPolicyReport {
	cur := baselineOf(p)
	r := PasswordPolicyReport{AccountID: accountID, Present: p != nil, Current: cur, Baseline: want, Findings: []string{}}
	if p == nil {
		r.Findings = append(r.Findings, "no account password policy is set: IAM's default applies")
	}
	if cur.MinimumLength < want.MinimumLength {
		r.Findings = append(r.Findings, fmt.Sprintf("minimum length %d, baseline %d", cur.MinimumLength, want.MinimumLength))
	}
	for _, c := range []struct {
		name      string
		have, req bool
	}{{"uppercase", cur.RequireUppercase, want.RequireUppercase}, {"lowercase", cur.RequireLowercase, want.RequireLowercase},
		{"numbers", cur.RequireNumbers, want.RequireNumbers}, {"symbols", cur.RequireSymbols, want.RequireSymbols}} {
		if c.req && !c.have {
			r.Findings = append(r.Findings, c.name+" not required")
		}
	}
	if cur.ReusePrevention < want.ReusePrevention {
		r.Findings = append(r.Findings, fmt.Sprintf("reuse prevention %d, baseline %d", cur.ReusePrevention, want.ReusePrevention))
	}
	if want.MaxAgeDays > 0 && (cur.MaxAgeDays == 0 || cur.MaxAgeDays > want.MaxAgeDays) {
		r.Findings = append(r.Findings, fmt.Sprintf("maximum age %d days (0: never expires), baseline %d", cur.MaxAgeDays, want.MaxAgeDays))
	}
	r.Compliant = len(r.Findings) == 0
	return r
}

func readPasswordPolicy(ctx context.Context, c IAMAPI) (*iamtypes.PasswordPolicy, error) {
	out, err := c.GetAccountPasswordPolicy(ctx, &iam.GetAccountPasswordPolicyInput{})
	if err != nil {
		if isNoSuchEntity(err) {
			return nil, nil
		}
		return nil, awsErr("GetAccountPasswordPolicy", err)
	}
	return out.PasswordPolicy, nil
}

// SetPasswordPolicyInput names the account and the baseline (the default
// baseline when zero).
type SetPasswordPolicyInput struct {
	AccountID string            `json:"accountId"`
	Baseline  *PasswordBaseline `json:"baseline,omitempty"`
	DryRun    bool              `json:"dryRun,omitempty"`
}

// SetPasswordPolicyOutput is the comparison before, and whether the policy
// was changed.
type SetPasswordPolicyOutput struct {
	Before  PasswordPolicyReport `json:"before"`
	Changed bool                 `json:"changed"`
	DryRun  bool                 `json:"dryRun"`
}

// SetPasswordPolicy brings an account's password policy up to the
// baseline. It only tightens: each setting becomes the stricter of the
// current one and the baseline's, so a stricter policy a person set stays,
// and the settings the baseline does not cover (AllowUsersToChangePassword,
// HardExpiry) are kept. A compliant account is left alone.
type SetPasswordPolicy struct {
	Accounts Accounts
	Now      func() time.Time
	Log      *slog.Logger
}

// Handle implements the handler.
//
// Errors: InvalidInput, AccountUnavailable, Throttled, ServiceError.
func (h *SetPasswordPolicy) Handle(ctx context.Context, in SetPasswordPolicyInput) (*SetPasswordPolicyOutput, error) {
	if !validAccountID(in.AccountID) {
		return nil, &InvalidInput{Field: "accountId", Reason: fmt.Sprintf("%q is not a 12-digit account id", truncate(in.AccountID))}
	}
	want := DefaultPasswordBaseline
	if in.Baseline != nil {
		want = *in.Baseline
	}
	if err := want.validate(); err != nil {
		return nil, err
	}
	c, err := h.Accounts.IAM(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	cur, err := readPasswordPolicy(ctx, c)
	if err != nil {
		return nil, err
	}
	out := &SetPasswordPolicyOutput{Before: comparePasswordPolicy(in.AccountID, cur, want), DryRun: in.DryRun}
	if out.Before.Compliant || in.DryRun {
		return out, nil
	}
	have := baselineOf(cur)
	maxAge := want.MaxAgeDays
	if have.MaxAgeDays > 0 && (maxAge == 0 || have.MaxAgeDays < maxAge) {
		maxAge = have.MaxAgeDays
	}
	req := &iam.UpdateAccountPasswordPolicyInput{
		MinimumPasswordLength:      aws.Int32(int32(max(have.MinimumLength, want.MinimumLength))),
		RequireUppercaseCharacters: have.RequireUppercase || want.RequireUppercase,
		RequireLowercaseCharacters: have.RequireLowercase || want.RequireLowercase,
		RequireNumbers:             have.RequireNumbers || want.RequireNumbers,
		RequireSymbols:             have.RequireSymbols || want.RequireSymbols,
		AllowUsersToChangePassword: cur == nil || cur.AllowUsersToChangePassword,
	}
	if cur != nil {
		req.HardExpiry = cur.HardExpiry
	}
	if n := max(have.ReusePrevention, want.ReusePrevention); n > 0 {
		req.PasswordReusePrevention = aws.Int32(int32(n))
	}
	if maxAge > 0 {
		req.MaxPasswordAge = aws.Int32(int32(maxAge))
	}
	if _, err := c.UpdateAccountPasswordPolicy(ctx, req); err != nil {
		return nil, awsErr("UpdateAccountPasswordPolicy", err)
	}
	out.Changed = true
	logger(h.Log).Info("password policy set", "handler", "set-password-policy", "accountId", in.AccountID, "findings", len(out.Before.Findings))
	return out, nil
}
