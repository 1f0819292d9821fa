package sandbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"
)

func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	return db
}

// dump renders every object of the sandbox as its persisted JSON, plus the
// outbox, so two sandboxes can be compared whole.
func dump(t testing.TB, s *Sandbox) map[string]string {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]string{}
	put := func(k objKey) {
		b, err := json.Marshal(s.current(k))
		require.NoError(t, err)
		out[k.account+"/"+k.kind+"/"+k.id] = string(b)
	}
	put(objKey{"", kindOrg, "org"})
	for id := range s.org.ous {
		put(objKey{"", kindOU, id})
	}
	for id := range s.org.accounts {
		put(objKey{"", kindOrgAccount, id})
	}
	for id, a := range s.accounts {
		put(objKey{id, kindAccount, id})
		for k := range a.users {
			put(objKey{id, kindUser, k})
		}
		for k := range a.groups {
			put(objKey{id, kindGroup, k})
		}
		for k := range a.policies {
			put(objKey{id, kindPolicy, k})
		}
		for k := range a.mfa {
			put(objKey{id, kindMFA, k})
		}
		for k := range a.secrets {
			put(objKey{id, kindSecret, k})
		}
		for k := range a.topics {
			put(objKey{id, kindTopic, k})
		}
	}
	b, err := json.Marshal(s.outbox)
	require.NoError(t, err)
	out["outbox"] = string(b)
	keys := make([]string, 0, len(s.keys))
	for k, ref := range s.keys {
		keys = append(keys, k+"="+ref.account+"/"+ref.user)
	}
	sort.Strings(keys)
	out["keys"] = fmt.Sprint(keys)
	return out
}

func TestPersistenceRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyflow.db")
	db := openDB(t, path)
	clk := &fakeClock{t: t0}
	s, err := New(Options{Now: clk.Now, DB: db, ManagementAccount: "999999999999"})
	require.NoError(t, err)

	_, err = Seed(s, SeedOptions{Accounts: 2, UsersPerAccount: 30, Suspended: 1, Seed: 7, Now: t0})
	require.NoError(t, err)
	c := s.IAM(acct)
	mustUser(t, c, "alice")
	mustUser(t, c, "gone")
	k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	keyID := aws.ToString(k.AccessKey.AccessKeyId)
	require.NoError(t, s.RecordKeyUse(keyID, "s3", t0))
	_, err = c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: aws.String(keyID), Status: types.StatusTypeInactive})
	require.NoError(t, err)
	_, err = c.TagUser(ctx, &iam.TagUserInput{UserName: aws.String("alice"), Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("a@example.com")}}})
	require.NoError(t, err)
	_, err = c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("admins")})
	require.NoError(t, err)
	_, err = c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("admins"), UserName: aws.String("alice")})
	require.NoError(t, err)
	_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("p"), PolicyDocument: aws.String(policyDoc)})
	require.NoError(t, err)
	_, err = c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("i"), PolicyDocument: aws.String(policyDoc)})
	require.NoError(t, err)
	_, err = c.CreateVirtualMFADevice(ctx, &iam.CreateVirtualMFADeviceInput{VirtualMFADeviceName: aws.String("alice")})
	require.NoError(t, err)
	_, err = c.UpdateAccountPasswordPolicy(ctx, &iam.UpdateAccountPasswordPolicyInput{MinimumPasswordLength: aws.Int32(10)})
	require.NoError(t, err)
	_, err = c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("gone")})
	require.NoError(t, err)
	secrets := s.SecretsManager(acct)
	_, err = secrets.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("v1")})
	require.NoError(t, err)
	_, err = secrets.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("v2")})
	require.NoError(t, err)
	_, err = secrets.PutResourcePolicy(ctx, &sm.PutResourcePolicyInput{SecretId: aws.String("s"), ResourcePolicy: aws.String(policyDoc)})
	require.NoError(t, err)
	tp, err := s.SNS(acct).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("t")})
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		_, err = s.SNS(acct).Publish(ctx, &sns.PublishInput{TopicArn: tp.TopicArn, Message: aws.String(fmt.Sprint("m", i))})
		require.NoError(t, err)
	}
	require.NoError(t, s.SetCallerIdentity(acct, "arn:aws:iam::"+acct+":user/ci"))
	require.NoError(t, s.RegisterRole(acct, "R"))
	require.NoError(t, s.AddAccount(acct, "mine", "Sandbox", "Deep"))

	before := dump(t, s)
	require.NoError(t, db.Close())

	db2 := openDB(t, path)
	defer db2.Close()
	s2, err := New(Options{Now: clk.Now, DB: db2})
	require.NoError(t, err)
	assert.Equal(t, before, dump(t, s2))
	assert.Equal(t, "999999999999", s2.ManagementAccount(), "the stored Organization wins")
	assert.Equal(t, s.Outbox(), s2.Outbox())

	// And the reloaded sandbox keeps working and writing.
	got, err := s2.SecretsManager(acct).GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("s"), VersionStage: aws.String("AWSPREVIOUS")})
	require.NoError(t, err)
	assert.Equal(t, "v1", aws.ToString(got.SecretString))
	_, err = s2.IAM(acct).DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: aws.String(keyID)})
	require.NoError(t, err)
	var n int
	require.NoError(t, db2.QueryRow(`SELECT count(*) FROM sandbox_objects WHERE kind = 'user' AND id = 'gone'`).Scan(&n))
	assert.Zero(t, n, "a deleted user's row is deleted")
	var body string
	require.NoError(t, db2.QueryRow(`SELECT body FROM sandbox_objects WHERE kind = 'user' AND account = ? AND id = 'alice'`, acct).Scan(&body))
	assert.NotContains(t, body, keyID)
}

// TestConcurrentUse hammers one account from many goroutines (run it with
// -race): every user ends with exactly the keys the quota allows.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s, err := New(Options{DB: openDB(t, filepath.Join(t.TempDir(), "c.db"))})
	require.NoError(t, err)
	c := s.IAM(acct)
	for i := 0; i < 8; i++ {
		mustUser(t, c, fmt.Sprint("u", i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				_, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(fmt.Sprint("u", i))})
				if err == nil {
					mu.Lock()
					created++
					mu.Unlock()
				}
				_, _ = c.ListUsers(ctx, &iam.ListUsersInput{})
				_, _ = s.SNS(acct).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("t")})
			}
		}(g)
	}
	wg.Wait()
	assert.Equal(t, 16, created, "two keys for each of eight users, never a third")
}

// TestWriteFailureSurfaces: when the database refuses a write the call
// returns the error instead of pretending the change is durable.
func TestWriteFailureSurfaces(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "f.db"))
	s, err := New(Options{DB: db})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = s.IAM(acct).CreateUser(context.Background(), &iam.CreateUserInput{UserName: aws.String("alice")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sandbox: save")
}
