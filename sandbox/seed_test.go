package sandbox

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeedDeterministic(t *testing.T) {
	o := SeedOptions{Accounts: 3, UsersPerAccount: 200, Suspended: 1, Seed: 42, Now: t0}
	a, _ := newSandbox(t)
	ra, err := Seed(a, o)
	require.NoError(t, err)
	b, _ := newSandbox(t)
	rb, err := Seed(b, o)
	require.NoError(t, err)
	assert.Equal(t, ra, rb)
	assert.Equal(t, dump(t, a), dump(t, b), "same seed, same accounts, users, key ids and ages")

	c, _ := newSandbox(t)
	o.Seed = 43
	rc, err := Seed(c, o)
	require.NoError(t, err)
	assert.NotEqual(t, dump(t, a), dump(t, c))
	assert.Equal(t, ra.Users, rc.Users)

	// Seeding again into the same accounts is refused.
	_, err = Seed(a, o)
	assert.Error(t, err)
}

// TestSeedCounts checks the report against what the APIs show and that the
// seeded population covers every case keyflow has to handle.
func TestSeedCounts(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	rep, err := Seed(s, SeedOptions{Accounts: 3, UsersPerAccount: 1000, Suspended: 1, Seed: 1, Now: t0})
	require.NoError(t, err)
	assert.Equal(t, 3000, rep.Users)
	assert.Len(t, rep.MemberAccounts, 4)
	assert.Equal(t, rep.Keys, rep.KeysUnder45+rep.Keys45To60+rep.Keys60To90+rep.Keys90Plus)
	for name, n := range map[string]int{
		"two keys": rep.UsersWithTwoKeys, "no keys": rep.UsersWithoutKeys, "under 45": rep.KeysUnder45, "45-60": rep.Keys45To60,
		"60-90": rep.Keys60To90, "90+": rep.Keys90Plus, "used": rep.KeysUsed, "used recently": rep.KeysUsedRecently,
		"admins": rep.Admins, "exempt": rep.Exempt, "lapsed exemptions": rep.ExemptLapsed, "owners": rep.Owners,
		"console": rep.ConsoleUsers, "mfa": rep.MFAUsers,
	} {
		assert.Positive(t, n, name)
	}
	assert.Less(t, rep.MFAUsers, rep.ConsoleUsers, "some console users lack MFA")
	assert.Less(t, rep.ActiveKeys, rep.Keys, "some keys are inactive")

	// Count through the APIs, as the inventory will.
	org := s.Organizations()
	var active []string
	p := organizations.NewListAccountsPaginator(org, &organizations.ListAccountsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, a := range out.Accounts {
			if a.Status == "ACTIVE" {
				active = append(active, aws.ToString(a.Id))
			}
		}
	}
	assert.Len(t, active, 4, "management and three members; the suspended one is not ACTIVE")
	users, keys, two, maxAge := 0, 0, 0, time.Duration(0)
	for _, id := range rep.MemberAccounts[:3] {
		_, err := s.STS(s.ManagementAccount()).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + id + ":role/" + SeedMemberRole), RoleSessionName: aws.String("test")})
		require.NoError(t, err)
		c := s.IAM(id)
		up := iam.NewListUsersPaginator(c, &iam.ListUsersInput{})
		for up.HasMorePages() {
			out, err := up.NextPage(ctx)
			require.NoError(t, err)
			for _, u := range out.Users {
				users++
				ks, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: u.UserName})
				require.NoError(t, err)
				keys += len(ks.AccessKeyMetadata)
				if len(ks.AccessKeyMetadata) == 2 {
					two++
				}
				for _, k := range ks.AccessKeyMetadata {
					if age := t0.Sub(aws.ToTime(k.CreateDate)); age > maxAge {
						maxAge = age
					}
				}
			}
		}
		_, err = s.SNS(id).Publish(ctx, &sns.PublishInput{TopicArn: aws.String("arn:aws:sns:us-east-1:" + id + ":" + SeedTopic), Message: aws.String("hello")})
		require.NoError(t, err)
		g, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(SeedAdminsGroup), MaxItems: aws.Int32(1000)})
		require.NoError(t, err)
		assert.NotNil(t, g.Group)
	}
	assert.Equal(t, rep.Users, users)
	assert.Equal(t, rep.Keys, keys)
	assert.Equal(t, rep.UsersWithTwoKeys, two)
	assert.LessOrEqual(t, maxAge, 401*24*time.Hour)
	assert.Greater(t, maxAge, 300*24*time.Hour)

	ous, err := org.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(s.org.RootID)})
	require.NoError(t, err)
	assert.Len(t, ous.OrganizationalUnits, 4, "Prod, Dev, Security, Suspended")
}

func BenchmarkSeedMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s, err := New(Options{})
		require.NoError(b, err)
		_, err = Seed(s, SeedOptions{Accounts: 3, UsersPerAccount: 1000, Seed: 1, Now: t0})
		require.NoError(b, err)
	}
}

func BenchmarkSeedSQLite(b *testing.B) {
	dir := b.TempDir()
	for i := 0; i < b.N; i++ {
		db := openDB(b, filepath.Join(dir, "b"+time.Now().Format("150405.000000000")+".db"))
		s, err := New(Options{DB: db})
		require.NoError(b, err)
		_, err = Seed(s, SeedOptions{Accounts: 3, UsersPerAccount: 1000, Seed: 1, Now: t0})
		require.NoError(b, err)
		require.NoError(b, db.Close())
	}
}

// BenchmarkReloadSQLite measures New on a seeded file: a restart.
func BenchmarkReloadSQLite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "r.db")
	db := openDB(b, path)
	s, err := New(Options{DB: db})
	require.NoError(b, err)
	_, err = Seed(s, SeedOptions{Accounts: 3, UsersPerAccount: 1000, Seed: 1, Now: t0})
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := New(Options{DB: db})
		require.NoError(b, err)
	}
}

// BenchmarkMutationSQLite measures one write-through call on a seeded file.
func BenchmarkMutationSQLite(b *testing.B) {
	ctx := context.Background()
	db := openDB(b, filepath.Join(b.TempDir(), "m.db"))
	s, err := New(Options{DB: db})
	require.NoError(b, err)
	rep, err := Seed(s, SeedOptions{Accounts: 3, UsersPerAccount: 1000, Seed: 1, Now: t0})
	require.NoError(b, err)
	c := s.IAM(rep.MemberAccounts[0])
	mustUser(b, c, "bench")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("bench")})
		require.NoError(b, err)
		_, err = c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("bench"), AccessKeyId: k.AccessKey.AccessKeyId})
		require.NoError(b, err)
	}
}
