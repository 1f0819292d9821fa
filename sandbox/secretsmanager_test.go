package sandbox

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	tokA = "aaaaaaaa-aaaa-4aaa-aaaa-aaaaaaaaaaaa"
	tokB = "bbbbbbbb-bbbb-4bbb-bbbb-bbbbbbbbbbbb"
	tokC = "cccccccc-cccc-4ccc-cccc-cccccccccccc"
)

func TestSecretVersionStages(t *testing.T) {
	ctx := context.Background()
	s, clk := newSandbox(t)
	c := s.SecretsManager(acct)
	name := "Account_" + acct + "_User_alice_AccessKey"
	cr, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(`{"v":1}`), ClientRequestToken: aws.String(tokA), KmsKeyId: aws.String("alias/keyflow")})
	require.NoError(t, err)
	assert.Regexp(t, `^arn:aws:secretsmanager:us-east-1:`+acct+`:secret:`+name+`-[A-Za-z0-9]{6}$`, aws.ToString(cr.ARN))
	assert.Equal(t, tokA, aws.ToString(cr.VersionId))

	clk.Advance(time.Minute)
	put, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(`{"v":2}`), ClientRequestToken: aws.String(tokB)})
	require.NoError(t, err)
	assert.Equal(t, []string{"AWSCURRENT"}, put.VersionStages)

	// Same token, same value: a no-op. Same token, other value: refused.
	again, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(`{"v":2}`), ClientRequestToken: aws.String(tokB)})
	require.NoError(t, err)
	assert.Equal(t, tokB, aws.ToString(again.VersionId))
	_, err = c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(`{"v":3}`), ClientRequestToken: aws.String(tokB)})
	requireCode(t, err, "ResourceExistsException")
	assert.NotContains(t, err.Error(), `{"v":3}`, "a secret value never appears in an error")

	d, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: cr.ARN})
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{tokA: {"AWSPREVIOUS"}, tokB: {"AWSCURRENT"}}, d.VersionIdsToStages)
	assert.Equal(t, "alias/keyflow", aws.ToString(d.KmsKeyId))

	clk.Advance(time.Minute)
	_, err = c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(`{"v":3}`), ClientRequestToken: aws.String(tokC)})
	require.NoError(t, err)
	d, err = c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(name)})
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{tokB: {"AWSPREVIOUS"}, tokC: {"AWSCURRENT"}}, d.VersionIdsToStages)

	tests := []struct {
		name  string
		in    *sm.GetSecretValueInput
		value string
		code  string
	}{
		{"current by default", &sm.GetSecretValueInput{SecretId: aws.String(name)}, `{"v":3}`, ""},
		{"previous by stage", &sm.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String("AWSPREVIOUS")}, `{"v":2}`, ""},
		{"deprecated by id", &sm.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(tokA)}, `{"v":1}`, ""},
		{"by partial ARN", &sm.GetSecretValueInput{SecretId: aws.String(aws.ToString(cr.ARN)[:len(aws.ToString(cr.ARN))-7])}, `{"v":3}`, ""},
		{"id and stage disagree", &sm.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(tokA), VersionStage: aws.String("AWSCURRENT")}, "", "InvalidRequestException"},
		{"unknown stage", &sm.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String("AWSPENDING")}, "", "ResourceNotFoundException"},
		{"unknown version", &sm.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(tokA + "x")}, "", "ResourceNotFoundException"},
		{"unknown secret", &sm.GetSecretValueInput{SecretId: aws.String("nope")}, "", "ResourceNotFoundException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.GetSecretValue(ctx, tc.in)
			requireCode(t, err, tc.code)
			if tc.code == "" {
				assert.Equal(t, tc.value, aws.ToString(out.SecretString))
			}
		})
	}

	list, err := c.ListSecretVersionIds(ctx, &sm.ListSecretVersionIdsInput{SecretId: aws.String(name)})
	require.NoError(t, err)
	assert.Len(t, list.Versions, 2)
	list, err = c.ListSecretVersionIds(ctx, &sm.ListSecretVersionIdsInput{SecretId: aws.String(name), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(2)})
	require.NoError(t, err)
	assert.Len(t, list.Versions, 2)
	require.NotNil(t, list.NextToken)
	assert.Equal(t, []string{"alias/keyflow"}, list.Versions[0].KmsKeyIds)
	list, err = c.ListSecretVersionIds(ctx, &sm.ListSecretVersionIdsInput{SecretId: aws.String(name), IncludeDeprecated: aws.Bool(true), NextToken: list.NextToken})
	require.NoError(t, err)
	assert.Len(t, list.Versions, 1)
	assert.Nil(t, list.NextToken)
}

func TestSecretErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.SecretsManager(acct)
	_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("x")})
	require.NoError(t, err)
	_, err = c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("empty")})
	require.NoError(t, err)

	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"duplicate name", func() error {
			_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("y")})
			return err
		}, "ResourceExistsException"},
		{"bad name", func() error {
			_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("a b")})
			return err
		}, "InvalidParameterException"},
		{"string and binary", func() error {
			_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("t"), SecretString: aws.String("y"), SecretBinary: []byte("y")})
			return err
		}, "InvalidParameterException"},
		{"short token", func() error {
			_, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("y"), ClientRequestToken: aws.String("short")})
			return err
		}, "InvalidParameterException"},
		{"put without value", func() error {
			_, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("s")})
			return err
		}, "InvalidRequestException"},
		{"put to unknown", func() error {
			_, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("nope"), SecretString: aws.String("y")})
			return err
		}, "ResourceNotFoundException"},
		{"get a secret without value", func() error {
			_, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("empty")})
			return err
		}, "ResourceNotFoundException"},
		{"describe unknown", func() error {
			_, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("nope")})
			return err
		}, "ResourceNotFoundException"},
		{"malformed resource policy", func() error {
			_, err := c.PutResourcePolicy(ctx, &sm.PutResourcePolicyInput{SecretId: aws.String("s"), ResourcePolicy: aws.String("nope")})
			return err
		}, "MalformedPolicyDocumentException"},
		{"bad recovery window", func() error {
			_, err := c.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String("s"), RecoveryWindowInDays: aws.Int64(3)})
			return err
		}, "InvalidParameterException"},
		{"tag unknown", func() error {
			_, err := c.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String("nope"), Tags: []smtypes.Tag{}})
			return err
		}, "ResourceNotFoundException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { requireCode(t, tc.call(), tc.code) })
	}
}

func TestSecretPolicyTagsDeletion(t *testing.T) {
	ctx := context.Background()
	s, clk := newSandbox(t)
	c := s.SecretsManager(acct)
	_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("x"), Tags: []smtypes.Tag{{Key: aws.String("a"), Value: aws.String("1")}}})
	require.NoError(t, err)

	rp, err := c.GetResourcePolicy(ctx, &sm.GetResourcePolicyInput{SecretId: aws.String("s")})
	require.NoError(t, err)
	assert.Nil(t, rp.ResourcePolicy)
	const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	_, err = c.PutResourcePolicy(ctx, &sm.PutResourcePolicyInput{SecretId: aws.String("s"), ResourcePolicy: aws.String(doc)})
	require.NoError(t, err)
	rp, err = c.GetResourcePolicy(ctx, &sm.GetResourcePolicyInput{SecretId: aws.String("s")})
	require.NoError(t, err)
	assert.JSONEq(t, doc, aws.ToString(rp.ResourcePolicy))
	_, err = c.DeleteResourcePolicy(ctx, &sm.DeleteResourcePolicyInput{SecretId: aws.String("s")})
	require.NoError(t, err)

	_, err = c.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String("s"), Tags: []smtypes.Tag{{Key: aws.String("a"), Value: aws.String("2")}, {Key: aws.String("b"), Value: aws.String("3")}}})
	require.NoError(t, err)
	_, err = c.UntagResource(ctx, &sm.UntagResourceInput{SecretId: aws.String("s"), TagKeys: []string{"b"}})
	require.NoError(t, err)
	d, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("s")})
	require.NoError(t, err)
	assert.Equal(t, []smtypes.Tag{{Key: aws.String("a"), Value: aws.String("2")}}, d.Tags)

	up, err := c.UpdateSecret(ctx, &sm.UpdateSecretInput{SecretId: aws.String("s"), KmsKeyId: aws.String("k2"), SecretString: aws.String("y")})
	require.NoError(t, err)
	require.NotNil(t, up.VersionId)
	ls, err := c.ListSecrets(ctx, &sm.ListSecretsInput{})
	require.NoError(t, err)
	require.Len(t, ls.SecretList, 1)
	assert.Equal(t, "k2", aws.ToString(ls.SecretList[0].KmsKeyId))

	del, err := c.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String("s")})
	require.NoError(t, err)
	assert.Equal(t, clk.Now().AddDate(0, 0, 30), aws.ToTime(del.DeletionDate))
	_, err = c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("s")})
	requireCode(t, err, "InvalidRequestException")
	_, err = c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("s")})
	requireCode(t, err, "InvalidRequestException")
	_, err = c.RestoreSecret(ctx, &sm.RestoreSecretInput{SecretId: aws.String("s")})
	require.NoError(t, err)
	got, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("s")})
	require.NoError(t, err)
	assert.Equal(t, "y", aws.ToString(got.SecretString))
	_, err = c.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String("s"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	require.NoError(t, err)
	_, err = c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("s")})
	requireCode(t, err, "ResourceNotFoundException")
	_, err = c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("s")})
	require.NoError(t, err)
}

// TestSecretVersionPruning: versions without a label are dropped beyond 100.
func TestSecretVersionPruning(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.SecretsManager(acct)
	_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("0")})
	require.NoError(t, err)
	for i := 0; i < 120; i++ {
		_, err = c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("v")})
		require.NoError(t, err)
	}
	list, err := c.ListSecretVersionIds(ctx, &sm.ListSecretVersionIdsInput{SecretId: aws.String("s"), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(100)})
	require.NoError(t, err)
	assert.Len(t, list.Versions, 100)
	assert.Nil(t, list.NextToken)
}
