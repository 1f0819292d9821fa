package tasks

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The interfaces below list exactly the SDK methods the handlers call, with
// the SDK's signatures, so *iam.Client (and friends) and the sandbox's
// clients satisfy them without either importing the other. Keep them small:
// every method added here is a method the sandbox must implement and an
// action the Lambda roles must be granted.

// IAMAPI is the IAM surface of the handlers.
type IAMAPI interface {
	GetUser(ctx context.Context, in *iam.GetUserInput, optFns ...func(*iam.Options)) (*iam.GetUserOutput, error)
	ListUsers(ctx context.Context, in *iam.ListUsersInput, optFns ...func(*iam.Options)) (*iam.ListUsersOutput, error)
	ListUserTags(ctx context.Context, in *iam.ListUserTagsInput, optFns ...func(*iam.Options)) (*iam.ListUserTagsOutput, error)
	TagUser(ctx context.Context, in *iam.TagUserInput, optFns ...func(*iam.Options)) (*iam.TagUserOutput, error)
	UntagUser(ctx context.Context, in *iam.UntagUserInput, optFns ...func(*iam.Options)) (*iam.UntagUserOutput, error)
	ListGroupsForUser(ctx context.Context, in *iam.ListGroupsForUserInput, optFns ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error)
	ListAttachedUserPolicies(ctx context.Context, in *iam.ListAttachedUserPoliciesInput, optFns ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error)
	ListUserPolicies(ctx context.Context, in *iam.ListUserPoliciesInput, optFns ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error)
	PutUserPolicy(ctx context.Context, in *iam.PutUserPolicyInput, optFns ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error)
	DeleteUserPolicy(ctx context.Context, in *iam.DeleteUserPolicyInput, optFns ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error)
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, optFns ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, optFns ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error)
	UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, optFns ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error)
	DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, optFns ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
	GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, optFns ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
	// The console side, for MFA enforcement and the password policy.
	GetLoginProfile(ctx context.Context, in *iam.GetLoginProfileInput, optFns ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error)
	ListMFADevices(ctx context.Context, in *iam.ListMFADevicesInput, optFns ...func(*iam.Options)) (*iam.ListMFADevicesOutput, error)
	AttachUserPolicy(ctx context.Context, in *iam.AttachUserPolicyInput, optFns ...func(*iam.Options)) (*iam.AttachUserPolicyOutput, error)
	DetachUserPolicy(ctx context.Context, in *iam.DetachUserPolicyInput, optFns ...func(*iam.Options)) (*iam.DetachUserPolicyOutput, error)
	GetAccountPasswordPolicy(ctx context.Context, in *iam.GetAccountPasswordPolicyInput, optFns ...func(*iam.Options)) (*iam.GetAccountPasswordPolicyOutput, error)
	UpdateAccountPasswordPolicy(ctx context.Context, in *iam.UpdateAccountPasswordPolicyInput, optFns ...func(*iam.Options)) (*iam.UpdateAccountPasswordPolicyOutput, error)
}

// SecretsManagerAPI is the Secrets Manager surface of CreateKey. It has no
// GetSecretValue on purpose: no handler ever needs to read a secret back.
type SecretsManagerAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	PutResourcePolicy(ctx context.Context, in *secretsmanager.PutResourcePolicyInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutResourcePolicyOutput, error)
}

// SNSAPI is the SNS surface of Notify.
type SNSAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// SESAPI is the SES (API v2) surface of Notify: one templated email per
// notification, sent from the deployment's own account.
type SESAPI interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, optFns ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

// OrganizationsAPI is the Organizations surface of Inventory: it walks the
// tree from the roots, which gives every account its OU path (for OU filters
// and OU exemptions) in the same pass.
type OrganizationsAPI interface {
	ListRoots(ctx context.Context, in *organizations.ListRootsInput, optFns ...func(*organizations.Options)) (*organizations.ListRootsOutput, error)
	ListOrganizationalUnitsForParent(ctx context.Context, in *organizations.ListOrganizationalUnitsForParentInput, optFns ...func(*organizations.Options)) (*organizations.ListOrganizationalUnitsForParentOutput, error)
	ListAccountsForParent(ctx context.Context, in *organizations.ListAccountsForParentInput, optFns ...func(*organizations.Options)) (*organizations.ListAccountsForParentOutput, error)
}

// STSAPI is what AWSAccounts needs to reach member accounts.
type STSAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Accounts hands out clients for one account. On AWS that means assuming the
// member role; in the sandbox it is a map lookup. Handlers take an account
// id in their input and ask Accounts for the clients, so one deployment
// serves a whole Organization.
type Accounts interface {
	IAM(ctx context.Context, accountID string) (IAMAPI, error)
	SecretsManager(ctx context.Context, accountID string) (SecretsManagerAPI, error)
	SNS(ctx context.Context, accountID string) (SNSAPI, error)
	// Organizations is the management (or delegated administrator)
	// account's client.
	Organizations(ctx context.Context) (OrganizationsAPI, error)
}

// DefaultMemberRole is the role keyflow assumes in member accounts; the
// CloudFormation template creates it under this name.
const DefaultMemberRole = "KeyflowMemberRole"

// AWSAccounts is Accounts for real AWS (or any endpoint AWS_ENDPOINT_URL
// names): the caller's own account uses Config as is, every other account is
// reached by assuming RoleName there, with credentials cached and refreshed
// by stscreds.
type AWSAccounts struct {
	Config   aws.Config
	RoleName string // DefaultMemberRole when empty
	// Home is the caller's account; found with GetCallerIdentity when empty.
	Home string
	// STS overrides the client used for AssumeRole (tests).
	STS STSAPI

	mu      sync.Mutex
	configs map[string]aws.Config
}

// NewAWSAccounts returns AWSAccounts for cfg (from config.LoadDefaultConfig).
func NewAWSAccounts(cfg aws.Config, roleName string) *AWSAccounts {
	return &AWSAccounts{Config: cfg, RoleName: roleName}
}

func (a *AWSAccounts) config(ctx context.Context, accountID string) (aws.Config, error) {
	if !validAccountID(accountID) {
		return aws.Config{}, &InvalidInput{Field: "accountId", Reason: fmt.Sprintf("%q is not a 12-digit account id", accountID)}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.STS == nil {
		a.STS = sts.NewFromConfig(a.Config)
	}
	if a.Home == "" {
		out, err := a.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return aws.Config{}, &AccountUnavailable{AccountID: accountID, Err: awsErr("GetCallerIdentity", err)}
		}
		a.Home = aws.ToString(out.Account)
	}
	if accountID == a.Home {
		return a.Config, nil
	}
	if cfg, ok := a.configs[accountID]; ok {
		return cfg, nil
	}
	role := a.RoleName
	if role == "" {
		role = DefaultMemberRole
	}
	cfg := a.Config.Copy()
	arn := fmt.Sprintf("arn:%s:iam::%s:role/%s", partition(a.Config.Region), accountID, role)
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(a.STS, arn, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "keyflow"
		o.Duration = 15 * time.Minute
	}))
	// Assume now, so a missing role is reported for this account rather
	// than as the first IAM call's failure.
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, &AccountUnavailable{AccountID: accountID, Err: awsErr("AssumeRole", err)}
	}
	if a.configs == nil {
		a.configs = map[string]aws.Config{}
	}
	a.configs[accountID] = cfg
	return cfg, nil
}

// IAM implements Accounts.
func (a *AWSAccounts) IAM(ctx context.Context, accountID string) (IAMAPI, error) {
	cfg, err := a.config(ctx, accountID)
	if err != nil {
		return nil, err
	}
	return iam.NewFromConfig(cfg), nil
}

// SecretsManager implements Accounts.
func (a *AWSAccounts) SecretsManager(ctx context.Context, accountID string) (SecretsManagerAPI, error) {
	cfg, err := a.config(ctx, accountID)
	if err != nil {
		return nil, err
	}
	return secretsmanager.NewFromConfig(cfg), nil
}

// SNS implements Accounts.
func (a *AWSAccounts) SNS(ctx context.Context, accountID string) (SNSAPI, error) {
	cfg, err := a.config(ctx, accountID)
	if err != nil {
		return nil, err
	}
	return sns.NewFromConfig(cfg), nil
}

// Organizations implements Accounts with the caller's own credentials.
func (a *AWSAccounts) Organizations(ctx context.Context) (OrganizationsAPI, error) {
	return organizations.NewFromConfig(a.Config), nil
}

func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

func validAccountID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// accountOfARN is the account field of an ARN ("" when there is none).
func accountOfARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// clock returns now() or time.Now when the handler has no clock.
func clock(now func() time.Time) time.Time {
	if now == nil {
		return time.Now().UTC()
	}
	return now().UTC()
}
