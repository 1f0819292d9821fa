package sandbox

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSNS(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.SNS(acct)
	t1, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("keyflow-notifications")})
	require.NoError(t, err)
	arn := "arn:aws:sns:us-east-1:" + acct + ":keyflow-notifications"
	assert.Equal(t, arn, aws.ToString(t1.TopicArn))
	t2, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("keyflow-notifications")})
	require.NoError(t, err)
	assert.Equal(t, arn, aws.ToString(t2.TopicArn), "CreateTopic is idempotent")
	lt, err := c.ListTopics(ctx, &sns.ListTopicsInput{})
	require.NoError(t, err)
	assert.Len(t, lt.Topics, 1)

	tests := []struct {
		name string
		in   *sns.PublishInput
		code string
	}{
		{"ok", &sns.PublishInput{TopicArn: aws.String(arn), Subject: aws.String("rotated"), Message: aws.String("key AKIA... rotated"),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{"user": {DataType: aws.String("String"), StringValue: aws.String("alice")}}}, ""},
		{"unknown topic", &sns.PublishInput{TopicArn: aws.String(arn + "x"), Message: aws.String("m")}, "NotFound"},
		{"no target", &sns.PublishInput{Message: aws.String("m")}, "InvalidParameter"},
		{"empty message", &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("")}, "InvalidParameter"},
		{"attribute without type", &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m"),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{"x": {StringValue: aws.String("y")}}}, "ParameterValueInvalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.Publish(ctx, tc.in)
			requireCode(t, err, tc.code)
			if tc.code == "" {
				assert.Regexp(t, `^[0-9a-f-]{36}$`, aws.ToString(out.MessageId))
			}
		})
	}
	box := s.Outbox()
	require.Len(t, box, 1)
	assert.Equal(t, Message{Account: acct, TopicArn: arn, MessageID: box[0].MessageID, Subject: "rotated", Body: "key AKIA... rotated",
		Attributes: map[string]string{"user": "alice"}, Time: t0}, box[0])
	box[0].Attributes["user"] = "changed"
	assert.Equal(t, "alice", s.Outbox()[0].Attributes["user"], "Outbox returns a copy")

	_, err = c.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(arn)})
	require.NoError(t, err)
	_, err = c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m")})
	requireCode(t, err, "NotFound")
}

func TestSTS(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	mgmt := s.ManagementAccount()
	id, err := s.STS(mgmt).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, mgmt, aws.ToString(id.Account))
	assert.Equal(t, "arn:aws:iam::"+mgmt+":user/keyflow-local", aws.ToString(id.Arn))
	require.NoError(t, s.SetCallerIdentity(mgmt, "arn:aws:sts::"+mgmt+":assumed-role/KeyflowInventory/lambda"))
	id, err = s.STS(mgmt).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Regexp(t, `^AROA`, aws.ToString(id.UserId))

	require.NoError(t, s.AddAccount("222222222222", "prod", "Prod"))
	require.NoError(t, s.AddAccount("333333333333", "old", "Prod"))
	require.NoError(t, s.RegisterRole("222222222222", "KeyflowMemberRole"))
	require.NoError(t, s.RegisterRole("333333333333", "KeyflowMemberRole"))
	require.NoError(t, s.RegisterRole("444444444444", "KeyflowMemberRole")) // not in the Organization
	require.NoError(t, s.SetAccountStatus("333333333333", "SUSPENDED"))

	tests := []struct {
		name string
		role string
		dur  *int32
		code string
	}{
		{"member role", "arn:aws:iam::222222222222:role/KeyflowMemberRole", nil, ""},
		{"role with path", "arn:aws:iam::222222222222:role/keyflow/KeyflowMemberRole", aws.Int32(900), ""},
		{"unregistered role", "arn:aws:iam::222222222222:role/Other", nil, "AccessDenied"},
		{"suspended account", "arn:aws:iam::333333333333:role/KeyflowMemberRole", nil, "AccessDenied"},
		{"outside the Organization", "arn:aws:iam::444444444444:role/KeyflowMemberRole", nil, "AccessDenied"},
		{"not a role ARN", "arn:aws:iam::222222222222:user/x", nil, "ValidationError"},
		{"too long", "arn:aws:iam::222222222222:role/KeyflowMemberRole", aws.Int32(50000), "ValidationError"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := s.STS(mgmt).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(tc.role), RoleSessionName: aws.String("keyflow-inventory"), DurationSeconds: tc.dur})
			requireCode(t, err, tc.code)
			if tc.code != "" {
				return
			}
			assert.Regexp(t, `^ASIA[A-Z2-7]{16}$`, aws.ToString(out.Credentials.AccessKeyId))
			assert.Regexp(t, secretPattern, aws.ToString(out.Credentials.SecretAccessKey))
			assert.NotEmpty(t, aws.ToString(out.Credentials.SessionToken))
			want := int32(3600)
			if tc.dur != nil {
				want = *tc.dur
			}
			assert.Equal(t, t0.Add(timeSeconds(want)), aws.ToTime(out.Credentials.Expiration))
			assert.Equal(t, "arn:aws:sts::222222222222:assumed-role/KeyflowMemberRole/keyflow-inventory", aws.ToString(out.AssumedRoleUser.Arn))
		})
	}
}

func TestOrganizations(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	org := s.Organizations()
	for i, path := range [][]string{{"Prod", "Web"}, {"Prod", "Web"}, {"Prod"}, {"Dev"}, {}, {"Prod", "Data"}} {
		require.NoError(t, s.AddAccount(fmt20(i), "acct", path...))
	}
	require.NoError(t, s.SetAccountStatus(fmt20(3), "SUSPENDED"))
	assert.Error(t, s.SetAccountStatus(fmt20(3), "GONE"))
	assert.Error(t, s.SetAccountStatus("999999999999", "ACTIVE"))
	assert.Error(t, s.AddAccount("1", "bad"))

	d, err := org.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	require.NoError(t, err)
	assert.Regexp(t, `^o-[a-z0-9]{10}$`, aws.ToString(d.Organization.Id))
	assert.Equal(t, s.ManagementAccount(), aws.ToString(d.Organization.MasterAccountId))

	roots, err := org.ListRoots(ctx, &organizations.ListRootsInput{})
	require.NoError(t, err)
	require.Len(t, roots.Roots, 1)
	root := aws.ToString(roots.Roots[0].Id)
	assert.Regexp(t, `^r-[a-z0-9]{4}$`, root)

	ous, err := org.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(root)})
	require.NoError(t, err)
	names := map[string]string{}
	for _, ou := range ous.OrganizationalUnits {
		names[aws.ToString(ou.Name)] = aws.ToString(ou.Id)
		assert.Regexp(t, `^ou-[a-z0-9]{4}-[a-z0-9]{8}$`, aws.ToString(ou.Id))
	}
	assert.Len(t, names, 2)
	prod := names["Prod"]
	sub, err := org.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(prod)})
	require.NoError(t, err)
	assert.Len(t, sub.OrganizationalUnits, 2)
	web, err := s.OrganizationalUnit("Prod", "Web")
	require.NoError(t, err)
	inWeb, err := org.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String(web)})
	require.NoError(t, err)
	assert.Len(t, inWeb.Accounts, 2)
	atRoot, err := org.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String(root)})
	require.NoError(t, err)
	assert.Len(t, atRoot.Accounts, 2, "the management account and one member")

	parents, err := org.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String(fmt20(0))})
	require.NoError(t, err)
	assert.Equal(t, []orgtypes.Parent{{Id: aws.String(web), Type: orgtypes.ParentTypeOrganizationalUnit}}, parents.Parents)
	parents, err = org.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String(prod)})
	require.NoError(t, err)
	assert.Equal(t, orgtypes.ParentTypeRoot, parents.Parents[0].Type)

	// ListAccounts pages (and the SDK paginator drives it).
	var statuses []orgtypes.AccountStatus
	p := organizations.NewListAccountsPaginator(org, &organizations.ListAccountsInput{MaxResults: aws.Int32(4)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		require.NoError(t, err)
		pages++
		for _, a := range out.Accounts {
			statuses = append(statuses, a.Status)
		}
	}
	assert.Equal(t, 2, pages)
	assert.Len(t, statuses, 7)
	assert.Contains(t, statuses, orgtypes.AccountStatusSuspended)
	acc, err := org.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String(fmt20(3))})
	require.NoError(t, err)
	assert.Equal(t, orgtypes.AccountStatusSuspended, acc.Account.Status)
	ou, err := org.DescribeOrganizationalUnit(ctx, &organizations.DescribeOrganizationalUnitInput{OrganizationalUnitId: aws.String(prod)})
	require.NoError(t, err)
	assert.Equal(t, "Prod", aws.ToString(ou.OrganizationalUnit.Name))

	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"OUs of unknown parent", func() error {
			_, err := org.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String("ou-nope-nope")})
			return err
		}, "ParentNotFoundException"},
		{"accounts of unknown parent", func() error {
			_, err := org.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String("ou-nope-nope")})
			return err
		}, "ParentNotFoundException"},
		{"parents of unknown child", func() error {
			_, err := org.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String("999999999999")})
			return err
		}, "ChildNotFoundException"},
		{"unknown account", func() error {
			_, err := org.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String("999999999999")})
			return err
		}, "AccountNotFoundException"},
		{"unknown OU", func() error {
			_, err := org.DescribeOrganizationalUnit(ctx, &organizations.DescribeOrganizationalUnitInput{OrganizationalUnitId: aws.String("ou-x")})
			return err
		}, "OrganizationalUnitNotFoundException"},
		{"page too large", func() error {
			_, err := org.ListAccounts(ctx, &organizations.ListAccountsInput{MaxResults: aws.Int32(21)})
			return err
		}, "InvalidInputException"},
		{"bad token", func() error {
			_, err := org.ListAccounts(ctx, &organizations.ListAccountsInput{NextToken: aws.String("!")})
			return err
		}, "InvalidInputException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { requireCode(t, tc.call(), tc.code) })
	}
}

func fmt20(i int) string { return "2000000000" + string(rune('0'+i/10)) + string(rune('0'+i%10)) }
