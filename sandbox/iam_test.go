package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const policyDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`

func mustUser(t testing.TB, c *IAM, name string) {
	t.Helper()
	_, err := c.CreateUser(context.Background(), &iam.CreateUserInput{UserName: aws.String(name)})
	require.NoError(t, err)
}

// TestIAMErrors runs one call per row against an account holding user
// "alice" (one key), group "devs", policy "p" and an MFA device "dev1".
func TestIAMErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.IAM(acct)
	mustUser(t, c, "alice")
	k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	keyID := aws.ToString(k.AccessKey.AccessKeyId)
	_, err = c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("devs")})
	require.NoError(t, err)
	_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("p"), PolicyDocument: aws.String(policyDoc)})
	require.NoError(t, err)
	_, err = c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("dev1")})
	require.NoError(t, err)
	pArn := "arn:aws:iam::" + acct + ":policy/p"
	mfa := "arn:aws:iam::" + acct + ":mfa/dev1"

	tests := []struct {
		name string
		call func() error
		code string
		msg  string // part of the message, when it matters
	}{
		{"create existing user", func() error {
			_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("ALICE")})
			return err
		}, "EntityAlreadyExists", "User with name ALICE already exists."},
		{"create user bad name", func() error {
			_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("a b")})
			return err
		}, "ValidationError", ""},
		{"create user bad path", func() error {
			_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("x"), Path: aws.String("nope")})
			return err
		}, "ValidationError", ""},
		{"get unknown user", func() error {
			_, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("nobody")})
			return err
		}, "NoSuchEntity", "The user with name nobody cannot be found."},
		{"get user is case-insensitive", func() error {
			_, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("Alice")})
			return err
		}, "", ""},
		{"delete unknown user", func() error {
			_, err := c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("nobody")})
			return err
		}, "NoSuchEntity", ""},
		{"delete user with keys", func() error {
			_, err := c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("alice")})
			return err
		}, "DeleteConflict", "must delete access keys first"},
		{"create key unknown user", func() error {
			_, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("nobody")})
			return err
		}, "NoSuchEntity", ""},
		{"list keys unknown user", func() error {
			_, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("nobody")})
			return err
		}, "NoSuchEntity", ""},
		{"update unknown key", func() error {
			_, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: aws.String("AKIAAAAAAAAAAAAAAAAA"), Status: types.StatusTypeInactive})
			return err
		}, "NoSuchEntity", "The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found."},
		{"update key of another user", func() error {
			mustUser(t, c, "bob")
			_, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: aws.String(keyID), Status: types.StatusTypeInactive})
			return err
		}, "NoSuchEntity", ""},
		{"update key bad status", func() error {
			_, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: aws.String(keyID), Status: "Paused"})
			return err
		}, "ValidationError", ""},
		{"delete unknown key", func() error {
			_, err := c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: aws.String("AKIAAAAAAAAAAAAAAAAA")})
			return err
		}, "NoSuchEntity", ""},
		{"last used of unknown key", func() error {
			_, err := c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String("AKIAAAAAAAAAAAAAAAAA")})
			return err
		}, "NoSuchEntity", ""},
		{"last used of a key of another account", func() error {
			_, err := s.IAM("999999999999").GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(keyID)})
			return err
		}, "NoSuchEntity", ""},
		{"missing required parameter", func() error {
			_, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{})
			var inv *smithy.InvalidParamsError
			if !errors.As(err, &inv) {
				return fmt.Errorf("want InvalidParamsError, got %v", err)
			}
			return nil
		}, "", ""},
		{"create existing group", func() error {
			_, err := c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("devs")})
			return err
		}, "EntityAlreadyExists", ""},
		{"get unknown group", func() error {
			_, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("nogroup")})
			return err
		}, "NoSuchEntity", "The group with name nogroup cannot be found."},
		{"add unknown user to group", func() error {
			_, err := c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("devs"), UserName: aws.String("nobody")})
			return err
		}, "NoSuchEntity", ""},
		{"remove non-member from group", func() error {
			_, err := c.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String("devs"), UserName: aws.String("alice")})
			return err
		}, "NoSuchEntity", ""},
		{"too many tags", func() error {
			var tags []types.Tag
			for i := 0; i < 51; i++ {
				tags = append(tags, types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")})
			}
			_, err := c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("alice"), Tags: tags})
			return err
		}, "LimitExceeded", ""},
		{"tag unknown user", func() error {
			_, err := c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("nobody"), Tags: []types.Tag{}})
			return err
		}, "NoSuchEntity", ""},
		{"create existing policy", func() error {
			_, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("p"), PolicyDocument: aws.String(policyDoc)})
			return err
		}, "EntityAlreadyExists", ""},
		{"create malformed policy", func() error {
			_, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("q"), PolicyDocument: aws.String("{nope")})
			return err
		}, "MalformedPolicyDocument", ""},
		{"get unknown policy", func() error {
			_, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(pArn + "x")})
			return err
		}, "NoSuchEntity", ""},
		{"get AWS managed policy", func() error {
			out, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")})
			if err == nil && aws.ToString(out.Policy.PolicyName) != "AdministratorAccess" {
				return fmt.Errorf("name %q", aws.ToString(out.Policy.PolicyName))
			}
			return err
		}, "", ""},
		{"attach unknown policy", func() error {
			_, err := c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("alice"), PolicyArn: aws.String(pArn + "x")})
			return err
		}, "NoSuchEntity", "does not exist or is not attachable"},
		{"detach policy not attached", func() error {
			_, err := c.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String("alice"), PolicyArn: aws.String(pArn)})
			return err
		}, "NoSuchEntity", ""},
		{"put malformed inline policy", func() error {
			_, err := c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("i"), PolicyDocument: aws.String("[]")})
			return err
		}, "MalformedPolicyDocument", ""},
		{"get unknown inline policy", func() error {
			_, err := c.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("none")})
			return err
		}, "NoSuchEntity", ""},
		{"delete unknown inline policy", func() error {
			_, err := c.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("none")})
			return err
		}, "NoSuchEntity", ""},
		{"create existing MFA device", func() error {
			_, err := c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("dev1")})
			return err
		}, "EntityAlreadyExists", ""},
		{"enable unknown MFA device", func() error {
			_, err := c.EnableMFADevice(ctx, &iam.EnableMFADeviceInput{UserName: aws.String("alice"), SerialNumber: aws.String(mfa + "x"), AuthenticationCode1: aws.String("123456"), AuthenticationCode2: aws.String("654321")})
			return err
		}, "NoSuchEntity", ""},
		{"enable MFA with bad code", func() error {
			_, err := c.EnableMFADevice(ctx, &iam.EnableMFADeviceInput{UserName: aws.String("alice"), SerialNumber: aws.String(mfa), AuthenticationCode1: aws.String("12"), AuthenticationCode2: aws.String("654321")})
			return err
		}, "InvalidAuthenticationCode", ""},
		{"deactivate MFA not enabled", func() error {
			_, err := c.DeactivateMFADevice(ctx, &iam.DeactivateMFADeviceInput{UserName: aws.String("alice"), SerialNumber: aws.String(mfa)})
			return err
		}, "NoSuchEntity", ""},
		{"get missing login profile", func() error {
			_, err := c.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String("alice")})
			return err
		}, "NoSuchEntity", "Login Profile for User alice cannot be found."},
		{"delete missing login profile", func() error {
			_, err := c.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String("alice")})
			return err
		}, "NoSuchEntity", ""},
		{"get unset password policy", func() error {
			_, err := c.GetAccountPasswordPolicy(ctx, &iam.GetAccountPasswordPolicyInput{})
			return err
		}, "NoSuchEntity", "The Password Policy with domain name " + acct + " cannot be found."},
		{"bad page size", func() error {
			_, err := c.ListUsers(ctx, &iam.ListUsersInput{MaxItems: aws.Int32(0)})
			return err
		}, "ValidationError", ""},
		{"bad marker", func() error {
			_, err := c.ListUsers(ctx, &iam.ListUsersInput{Marker: aws.String("!!")})
			return err
		}, "ValidationError", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			requireCode(t, err, tc.code)
			if tc.msg != "" {
				assert.Contains(t, err.Error(), tc.msg)
			}
			if tc.code != "" {
				var oe *smithy.OperationError
				assert.True(t, errors.As(err, &oe), "wrapped like the SDK: %v", err)
			}
		})
	}
}

func TestIAMTypedErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.IAM(acct)
	_, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("nobody")})
	var nse *types.NoSuchEntityException
	require.ErrorAs(t, err, &nse)
	assert.Equal(t, "The user with name nobody cannot be found.", nse.ErrorMessage())
	mustUser(t, c, "alice")
	for i := 0; i < 2; i++ {
		_, err = c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
		require.NoError(t, err)
	}
	_, err = c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	var lee *types.LimitExceededException
	require.ErrorAs(t, err, &lee)
	assert.Equal(t, "Cannot exceed quota for AccessKeysPerUser: 2", lee.ErrorMessage())
}

var (
	keyIDPattern  = regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
	secretPattern = regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
)

func TestAccessKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	s, clk := newSandbox(t)
	c := s.IAM(acct)
	mustUser(t, c, "alice")
	k1, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Regexp(t, keyIDPattern, aws.ToString(k1.AccessKey.AccessKeyId))
	assert.Regexp(t, secretPattern, aws.ToString(k1.AccessKey.SecretAccessKey))
	assert.Equal(t, types.StatusTypeActive, k1.AccessKey.Status)
	assert.Equal(t, t0, aws.ToTime(k1.AccessKey.CreateDate))
	id1 := aws.ToString(k1.AccessKey.AccessKeyId)

	// Never used: N/A, as AWS answers.
	lu, err := c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(id1)})
	require.NoError(t, err)
	assert.Equal(t, "alice", aws.ToString(lu.UserName))
	assert.Equal(t, "N/A", aws.ToString(lu.AccessKeyLastUsed.ServiceName))
	assert.Equal(t, "N/A", aws.ToString(lu.AccessKeyLastUsed.Region))
	assert.Nil(t, lu.AccessKeyLastUsed.LastUsedDate)

	clk.Advance(48 * time.Hour)
	used := clk.Now().Add(-time.Hour)
	require.NoError(t, s.RecordKeyUse(id1, "s3", used))
	assert.Error(t, s.RecordKeyUse("AKIANOPE", "s3", used))
	lu, err = c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(id1)})
	require.NoError(t, err)
	assert.Equal(t, "s3", aws.ToString(lu.AccessKeyLastUsed.ServiceName))
	assert.Equal(t, "us-east-1", aws.ToString(lu.AccessKeyLastUsed.Region))
	assert.Equal(t, used, aws.ToTime(lu.AccessKeyLastUsed.LastUsedDate))

	k2, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	id2 := aws.ToString(k2.AccessKey.AccessKeyId)
	assert.NotEqual(t, id1, id2)
	_, err = c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	requireCode(t, err, "LimitExceeded")

	// Inactive keys still count towards the quota.
	_, err = c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: aws.String(id1), Status: types.StatusTypeInactive})
	require.NoError(t, err)
	_, err = c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	requireCode(t, err, "LimitExceeded")

	list, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	require.Len(t, list.AccessKeyMetadata, 2)
	assert.Equal(t, id1, aws.ToString(list.AccessKeyMetadata[0].AccessKeyId))
	assert.Equal(t, types.StatusTypeInactive, list.AccessKeyMetadata[0].Status)
	assert.Equal(t, types.StatusTypeActive, list.AccessKeyMetadata[1].Status)
	assert.False(t, list.IsTruncated)

	// Without a user name the key is found in the account.
	_, err = c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{AccessKeyId: aws.String(id2), Status: types.StatusTypeInactive})
	require.NoError(t, err)

	_, err = c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: aws.String(id1)})
	require.NoError(t, err)
	_, err = c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: aws.String(id1)})
	requireCode(t, err, "NoSuchEntity")
	_, err = c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(id1)})
	requireCode(t, err, "NoSuchEntity")
	_, err = c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	require.NoError(t, err)
}

func TestListUsersPagination(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.IAM(acct)
	for i := 0; i < 250; i++ {
		mustUser(t, c, fmt.Sprintf("user-%03d", i))
	}
	_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("svc"), Path: aws.String("/service/"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	require.NoError(t, err)

	tests := []struct {
		name   string
		max    *int32
		prefix *string
		pages  []int
	}{
		{"default page is 100", nil, nil, []int{100, 100, 51}},
		{"max items 1000", aws.Int32(1000), nil, []int{251}},
		{"max items 7", aws.Int32(7), aws.String("/service/"), []int{1}},
		{"max items 125", aws.Int32(125), nil, []int{125, 125, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pages []int
			seen := map[string]bool{}
			var marker *string
			for {
				out, err := c.ListUsers(ctx, &iam.ListUsersInput{Marker: marker, MaxItems: tc.max, PathPrefix: tc.prefix})
				require.NoError(t, err)
				pages = append(pages, len(out.Users))
				for _, u := range out.Users {
					assert.False(t, seen[*u.UserName], "duplicate %s", *u.UserName)
					seen[*u.UserName] = true
					assert.Nil(t, u.Tags, "ListUsers returns no tags")
				}
				assert.Equal(t, out.IsTruncated, out.Marker != nil)
				if !out.IsTruncated {
					break
				}
				marker = out.Marker
			}
			assert.Equal(t, tc.pages, pages)
		})
	}

	// The SDK's own paginator drives the sandbox as it drives the client.
	p := iam.NewListUsersPaginator(c, &iam.ListUsersInput{MaxItems: aws.Int32(40)})
	n := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		require.NoError(t, err)
		n += len(out.Users)
	}
	assert.Equal(t, 251, n)

	// A marker stays valid when earlier users are deleted meanwhile.
	first, err := c.ListUsers(ctx, &iam.ListUsersInput{MaxItems: aws.Int32(10)})
	require.NoError(t, err)
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("user-000")})
	require.NoError(t, err)
	next, err := c.ListUsers(ctx, &iam.ListUsersInput{MaxItems: aws.Int32(10), Marker: first.Marker})
	require.NoError(t, err)
	assert.Equal(t, "user-009", aws.ToString(next.Users[0].UserName)) // page one: svc, user-000..008
}

func TestUserDetails(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.IAM(acct)
	out, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice"), Path: aws.String("/eng/"),
		Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("alice@example.com")}}})
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:iam::"+acct+":user/eng/alice", aws.ToString(out.User.Arn))
	assert.Regexp(t, `^AIDA[A-Z2-7]{17}$`, aws.ToString(out.User.UserId))

	got, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Equal(t, out.User.UserId, got.User.UserId)
	assert.Equal(t, []types.Tag{{Key: aws.String("owner"), Value: aws.String("alice@example.com")}}, got.User.Tags)

	// GetUser without a name answers for the caller.
	mustUser(t, c, "keyflow-local")
	me, err := c.GetUser(ctx, &iam.GetUserInput{})
	require.NoError(t, err)
	assert.Equal(t, "keyflow-local", aws.ToString(me.User.UserName))

	// Tags: add, overwrite, remove.
	_, err = c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("alice"), Tags: []types.Tag{
		{Key: aws.String("owner"), Value: aws.String("a2@example.com")}, {Key: aws.String(TagExempt), Value: aws.String("true")}}})
	require.NoError(t, err)
	tags, err := c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Equal(t, []types.Tag{{Key: aws.String("owner"), Value: aws.String("a2@example.com")}, {Key: aws.String(TagExempt), Value: aws.String("true")}}, tags.Tags)
	_, err = c.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String("alice"), TagKeys: []string{"owner", "absent"}})
	require.NoError(t, err)
	tags, err = c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Len(t, tags.Tags, 1)

	// Groups.
	_, err = c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("admins")})
	require.NoError(t, err)
	for i := 0; i < 2; i++ { // adding twice is a no-op
		_, err = c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("admins"), UserName: aws.String("alice")})
		require.NoError(t, err)
	}
	gs, err := c.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	require.Len(t, gs.Groups, 1)
	assert.Equal(t, "arn:aws:iam::"+acct+":group/admins", aws.ToString(gs.Groups[0].Arn))
	g, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("admins")})
	require.NoError(t, err)
	require.Len(t, g.Users, 1)
	assert.Equal(t, "alice", aws.ToString(g.Users[0].UserName))
	lg, err := c.ListGroups(ctx, &iam.ListGroupsInput{})
	require.NoError(t, err)
	assert.Len(t, lg.Groups, 1)
	_, err = c.DeleteGroup(ctx, &iam.DeleteGroupInput{GroupName: aws.String("admins")})
	requireCode(t, err, "DeleteConflict")
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("alice")})
	requireCode(t, err, "DeleteConflict")
	_, err = c.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String("admins"), UserName: aws.String("alice")})
	require.NoError(t, err)
	gs, err = c.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Empty(t, gs.Groups)

	// Managed policies, customer and AWS.
	pol, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("read"), PolicyDocument: aws.String(policyDoc), Path: aws.String("/kf/")})
	require.NoError(t, err)
	pArn := "arn:aws:iam::" + acct + ":policy/kf/read"
	assert.Equal(t, pArn, aws.ToString(pol.Policy.Arn))
	for _, arn := range []string{pArn, "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3", pArn} {
		_, err = c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("alice"), PolicyArn: aws.String(arn)})
		require.NoError(t, err)
	}
	att, err := c.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	require.Len(t, att.AttachedPolicies, 2)
	assert.Equal(t, "read", aws.ToString(att.AttachedPolicies[0].PolicyName))
	assert.Equal(t, "AWSCompromisedKeyQuarantineV3", aws.ToString(att.AttachedPolicies[1].PolicyName))
	att, err = c.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String("alice"), PathPrefix: aws.String("/kf/")})
	require.NoError(t, err)
	assert.Len(t, att.AttachedPolicies, 1)
	gp, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(pArn)})
	require.NoError(t, err)
	assert.Equal(t, int32(1), aws.ToInt32(gp.Policy.AttachmentCount))
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(pArn)})
	requireCode(t, err, "DeleteConflict")
	_, err = c.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String("alice"), PolicyArn: aws.String(pArn)})
	require.NoError(t, err)
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(pArn)})
	require.NoError(t, err)
	for i := 0; i < 9; i++ {
		_, err = c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("alice"), PolicyArn: aws.String(fmt.Sprint("arn:aws:iam::aws:policy/P", i))})
		require.NoError(t, err)
	}
	_, err = c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("alice"), PolicyArn: aws.String("arn:aws:iam::aws:policy/Eleventh")})
	requireCode(t, err, "LimitExceeded")

	// Inline policies: the document comes back URL-encoded, as from AWS.
	_, err = c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("inline"), PolicyDocument: aws.String(policyDoc)})
	require.NoError(t, err)
	ip, err := c.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("inline")})
	require.NoError(t, err)
	doc, err := url.QueryUnescape(aws.ToString(ip.PolicyDocument))
	require.NoError(t, err)
	assert.JSONEq(t, policyDoc, doc)
	assert.NotContains(t, aws.ToString(ip.PolicyDocument), "{")
	names, err := c.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Equal(t, []string{"inline"}, names.PolicyNames)
	_, err = c.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("inline")})
	require.NoError(t, err)
	names, err = c.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Empty(t, names.PolicyNames)
}

func TestConsoleAccess(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.IAM(acct)
	mustUser(t, c, "alice")

	// MFA.
	dev, err := c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("alice")})
	require.NoError(t, err)
	serial := aws.ToString(dev.VirtualMFADevice.SerialNumber)
	assert.Equal(t, "arn:aws:iam::"+acct+":mfa/alice", serial)
	assert.Len(t, dev.VirtualMFADevice.Base32StringSeed, 64)
	enable := &iam.EnableMFADeviceInput{UserName: aws.String("alice"), SerialNumber: aws.String(serial), AuthenticationCode1: aws.String("123456"), AuthenticationCode2: aws.String("234567")}
	_, err = c.EnableMFADevice(ctx, enable)
	require.NoError(t, err)
	_, err = c.EnableMFADevice(ctx, enable)
	requireCode(t, err, "EntityAlreadyExists")
	ds, err := c.ListMFADevices(ctx, &iam.ListMFADevicesInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	require.Len(t, ds.MFADevices, 1)
	assert.Equal(t, t0, aws.ToTime(ds.MFADevices[0].EnableDate))
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("alice")})
	requireCode(t, err, "DeleteConflict")
	_, err = c.DeleteVirtualMFADevice(ctx, &iam.DeleteVirtualMFADeviceInput{SerialNumber: aws.String(serial)})
	requireCode(t, err, "DeleteConflict")
	_, err = c.DeactivateMFADevice(ctx, &iam.DeactivateMFADeviceInput{UserName: aws.String("alice"), SerialNumber: aws.String(serial)})
	require.NoError(t, err)
	ds, err = c.ListMFADevices(ctx, &iam.ListMFADevicesInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Empty(t, ds.MFADevices)
	_, err = c.DeleteVirtualMFADevice(ctx, &iam.DeleteVirtualMFADeviceInput{SerialNumber: aws.String(serial)})
	require.NoError(t, err)

	// Password policy and login profile.
	_, err = c.UpdateAccountPasswordPolicy(ctx, &iam.UpdateAccountPasswordPolicyInput{MinimumPasswordLength: aws.Int32(12), RequireNumbers: true, MaxPasswordAge: aws.Int32(90)})
	require.NoError(t, err)
	pp, err := c.GetAccountPasswordPolicy(ctx, &iam.GetAccountPasswordPolicyInput{})
	require.NoError(t, err)
	assert.Equal(t, int32(12), aws.ToInt32(pp.PasswordPolicy.MinimumPasswordLength))
	assert.True(t, pp.PasswordPolicy.ExpirePasswords)
	_, err = c.UpdateAccountPasswordPolicy(ctx, &iam.UpdateAccountPasswordPolicyInput{MinimumPasswordLength: aws.Int32(3)})
	requireCode(t, err, "ValidationError")

	const weak = "hunter-weak-pass"
	_, err = c.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("alice"), Password: aws.String(weak)})
	requireCode(t, err, "PasswordPolicyViolation")
	assert.NotContains(t, err.Error(), weak, "a password never appears in an error")
	lp, err := c.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("alice"), Password: aws.String("correct-horse-42"), PasswordResetRequired: true})
	require.NoError(t, err)
	assert.True(t, lp.LoginProfile.PasswordResetRequired)
	_, err = c.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("alice"), Password: aws.String("correct-horse-42")})
	requireCode(t, err, "EntityAlreadyExists")
	got, err := c.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Equal(t, "alice", aws.ToString(got.LoginProfile.UserName))
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("alice")})
	requireCode(t, err, "DeleteConflict")
	_, err = c.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("alice")})
	require.NoError(t, err)

	_, err = c.DeleteAccountPasswordPolicy(ctx, &iam.DeleteAccountPasswordPolicyInput{})
	require.NoError(t, err)
	_, err = c.GetAccountPasswordPolicy(ctx, &iam.GetAccountPasswordPolicyInput{})
	requireCode(t, err, "NoSuchEntity")
}

// TestNoSecretInErrors: no error of the IAM client quotes a secret access
// key, whatever the caller passes where a key id belongs.
func TestNoSecretInErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.IAM(acct)
	mustUser(t, c, "alice")
	k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	secret := aws.ToString(k.AccessKey.SecretAccessKey)
	// A caller who confuses the secret with the id gets an error that
	// quotes what it passed, as AWS would, but that is the caller's value:
	// what must hold is that the sandbox itself never kept the secret.
	dump := fmt.Sprintf("%+v", s.accounts[acct].users["alice"])
	for _, k := range s.accounts[acct].users["alice"].Keys {
		dump += fmt.Sprintf("%+v", *k)
	}
	assert.False(t, strings.Contains(dump, secret))
}
