package tasks

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// faultyAccounts hands out clients whose every call goes through faults.
type faultyAccounts struct {
	inner Accounts
	f     *faults
}

func (a faultyAccounts) IAM(ctx context.Context, id string) (IAMAPI, error) {
	c, err := a.inner.IAM(ctx, id)
	if err != nil {
		return nil, err
	}
	return faultyIAM{c, a.f}, nil
}

func (a faultyAccounts) SecretsManager(ctx context.Context, id string) (SecretsManagerAPI, error) {
	c, err := a.inner.SecretsManager(ctx, id)
	if err != nil {
		return nil, err
	}
	return faultySM{c, a.f}, nil
}

func (a faultyAccounts) SNS(ctx context.Context, id string) (SNSAPI, error) {
	c, err := a.inner.SNS(ctx, id)
	if err != nil {
		return nil, err
	}
	return faultySNS{c, a.f}, nil
}

func (a faultyAccounts) Organizations(ctx context.Context) (OrganizationsAPI, error) {
	c, err := a.inner.Organizations(ctx)
	if err != nil {
		return nil, err
	}
	return faultyOrg{c, a.f}, nil
}

type faultyIAM struct {
	c IAMAPI
	f *faults
}

func (x faultyIAM) GetUser(ctx context.Context, in *iam.GetUserInput, o ...func(*iam.Options)) (*iam.GetUserOutput, error) {
	return call(x.f, "GetUser", func() (*iam.GetUserOutput, error) { return x.c.GetUser(ctx, in, o...) })
}
func (x faultyIAM) ListUsers(ctx context.Context, in *iam.ListUsersInput, o ...func(*iam.Options)) (*iam.ListUsersOutput, error) {
	return call(x.f, "ListUsers", func() (*iam.ListUsersOutput, error) { return x.c.ListUsers(ctx, in, o...) })
}
func (x faultyIAM) ListUserTags(ctx context.Context, in *iam.ListUserTagsInput, o ...func(*iam.Options)) (*iam.ListUserTagsOutput, error) {
	return call(x.f, "ListUserTags", func() (*iam.ListUserTagsOutput, error) { return x.c.ListUserTags(ctx, in, o...) })
}
func (x faultyIAM) TagUser(ctx context.Context, in *iam.TagUserInput, o ...func(*iam.Options)) (*iam.TagUserOutput, error) {
	return call(x.f, "TagUser", func() (*iam.TagUserOutput, error) { return x.c.TagUser(ctx, in, o...) })
}
func (x faultyIAM) UntagUser(ctx context.Context, in *iam.UntagUserInput, o ...func(*iam.Options)) (*iam.UntagUserOutput, error) {
	return call(x.f, "UntagUser", func() (*iam.UntagUserOutput, error) { return x.c.UntagUser(ctx, in, o...) })
}
func (x faultyIAM) ListGroupsForUser(ctx context.Context, in *iam.ListGroupsForUserInput, o ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error) {
	return call(x.f, "ListGroupsForUser", func() (*iam.ListGroupsForUserOutput, error) { return x.c.ListGroupsForUser(ctx, in, o...) })
}
func (x faultyIAM) ListAttachedUserPolicies(ctx context.Context, in *iam.ListAttachedUserPoliciesInput, o ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error) {
	return call(x.f, "ListAttachedUserPolicies", func() (*iam.ListAttachedUserPoliciesOutput, error) {
		return x.c.ListAttachedUserPolicies(ctx, in, o...)
	})
}
func (x faultyIAM) ListUserPolicies(ctx context.Context, in *iam.ListUserPoliciesInput, o ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error) {
	return call(x.f, "ListUserPolicies", func() (*iam.ListUserPoliciesOutput, error) { return x.c.ListUserPolicies(ctx, in, o...) })
}
func (x faultyIAM) PutUserPolicy(ctx context.Context, in *iam.PutUserPolicyInput, o ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error) {
	return call(x.f, "PutUserPolicy", func() (*iam.PutUserPolicyOutput, error) { return x.c.PutUserPolicy(ctx, in, o...) })
}
func (x faultyIAM) DeleteUserPolicy(ctx context.Context, in *iam.DeleteUserPolicyInput, o ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error) {
	return call(x.f, "DeleteUserPolicy", func() (*iam.DeleteUserPolicyOutput, error) { return x.c.DeleteUserPolicy(ctx, in, o...) })
}
func (x faultyIAM) ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, o ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error) {
	return call(x.f, "ListAccessKeys", func() (*iam.ListAccessKeysOutput, error) { return x.c.ListAccessKeys(ctx, in, o...) })
}
func (x faultyIAM) CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, o ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error) {
	return call(x.f, "CreateAccessKey", func() (*iam.CreateAccessKeyOutput, error) { return x.c.CreateAccessKey(ctx, in, o...) })
}
func (x faultyIAM) UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, o ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error) {
	return call(x.f, "UpdateAccessKey", func() (*iam.UpdateAccessKeyOutput, error) { return x.c.UpdateAccessKey(ctx, in, o...) })
}
func (x faultyIAM) DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, o ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error) {
	return call(x.f, "DeleteAccessKey", func() (*iam.DeleteAccessKeyOutput, error) { return x.c.DeleteAccessKey(ctx, in, o...) })
}
func (x faultyIAM) GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, o ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error) {
	return call(x.f, "GetAccessKeyLastUsed", func() (*iam.GetAccessKeyLastUsedOutput, error) { return x.c.GetAccessKeyLastUsed(ctx, in, o...) })
}
func (x faultyIAM) GetLoginProfile(ctx context.Context, in *iam.GetLoginProfileInput, o ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error) {
	return call(x.f, "GetLoginProfile", func() (*iam.GetLoginProfileOutput, error) { return x.c.GetLoginProfile(ctx, in, o...) })
}
func (x faultyIAM) ListMFADevices(ctx context.Context, in *iam.ListMFADevicesInput, o ...func(*iam.Options)) (*iam.ListMFADevicesOutput, error) {
	return call(x.f, "ListMFADevices", func() (*iam.ListMFADevicesOutput, error) { return x.c.ListMFADevices(ctx, in, o...) })
}
func (x faultyIAM) AttachUserPolicy(ctx context.Context, in *iam.AttachUserPolicyInput, o ...func(*iam.Options)) (*iam.AttachUserPolicyOutput, error) {
	return call(x.f, "AttachUserPolicy", func() (*iam.AttachUserPolicyOutput, error) { return x.c.AttachUserPolicy(ctx, in, o...) })
}
func (x faultyIAM) DetachUserPolicy(ctx context.Context, in *iam.DetachUserPolicyInput, o ...func(*iam.Options)) (*iam.DetachUserPolicyOutput, error) {
	return call(x.f, "DetachUserPolicy", func() (*iam.DetachUserPolicyOutput, error) { return x.c.DetachUserPolicy(ctx, in, o...) })
}
func (x faultyIAM) GetAccountPasswordPolicy(ctx context.Context, in *iam.GetAccountPasswordPolicyInput, o ...func(*iam.Options)) (*iam.GetAccountPasswordPolicyOutput, error) {
	return call(x.f, "GetAccountPasswordPolicy", func() (*iam.GetAccountPasswordPolicyOutput, error) {
		return x.c.GetAccountPasswordPolicy(ctx, in, o...)
	})
}
func (x faultyIAM) UpdateAccountPasswordPolicy(ctx context.Context, in *iam.UpdateAccountPasswordPolicyInput, o ...func(*iam.Options)) (*iam.UpdateAccountPasswordPolicyOutput, error) {
	return call(x.f, "UpdateAccountPasswordPolicy", func() (*iam.UpdateAccountPasswordPolicyOutput, error) {
		return x.c.UpdateAccountPasswordPolicy(ctx, in, o...)
	})
}

type faultySM struct {
	c SecretsManagerAPI
	f *faults
}

func (x faultySM) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return call(x.f, "DescribeSecret", func() (*secretsmanager.DescribeSecretOutput, error) { return x.c.DescribeSecret(ctx, in, o...) })
}
func (x faultySM) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	return call(x.f, "CreateSecret", func() (*secretsmanager.CreateSecretOutput, error) { return x.c.CreateSecret(ctx, in, o...) })
}
func (x faultySM) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	return call(x.f, "PutSecretValue", func() (*secretsmanager.PutSecretValueOutput, error) { return x.c.PutSecretValue(ctx, in, o...) })
}
func (x faultySM) PutResourcePolicy(ctx context.Context, in *secretsmanager.PutResourcePolicyInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutResourcePolicyOutput, error) {
	return call(x.f, "PutResourcePolicy", func() (*secretsmanager.PutResourcePolicyOutput, error) { return x.c.PutResourcePolicy(ctx, in, o...) })
}

type faultySNS struct {
	c SNSAPI
	f *faults
}

func (x faultySNS) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return call(x.f, "Publish", func() (*sns.PublishOutput, error) { return x.c.Publish(ctx, in, o...) })
}

type faultyOrg struct {
	c OrganizationsAPI
	f *faults
}

func (x faultyOrg) ListRoots(ctx context.Context, in *organizations.ListRootsInput, o ...func(*organizations.Options)) (*organizations.ListRootsOutput, error) {
	return call(x.f, "ListRoots", func() (*organizations.ListRootsOutput, error) { return x.c.ListRoots(ctx, in, o...) })
}
func (x faultyOrg) ListOrganizationalUnitsForParent(ctx context.Context, in *organizations.ListOrganizationalUnitsForParentInput, o ...func(*organizations.Options)) (*organizations.ListOrganizationalUnitsForParentOutput, error) {
	return call(x.f, "ListOrganizationalUnitsForParent", func() (*organizations.ListOrganizationalUnitsForParentOutput, error) {
		return x.c.ListOrganizationalUnitsForParent(ctx, in, o...)
	})
}
func (x faultyOrg) ListAccountsForParent(ctx context.Context, in *organizations.ListAccountsForParentInput, o ...func(*organizations.Options)) (*organizations.ListAccountsForParentOutput, error) {
	return call(x.f, "ListAccountsForParent", func() (*organizations.ListAccountsForParentOutput, error) {
		return x.c.ListAccountsForParent(ctx, in, o...)
	})
}
