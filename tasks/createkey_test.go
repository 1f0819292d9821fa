package tasks

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

func newCreateKey(f *fx) func(context.Context, CreateKeyInput) (*CreateKeyOutput, error) {
	return (&CreateKey{Accounts: f.accounts, Now: f.now, Log: f.log}).Handle
}

// storedKeyID reads the secret back (tests may; handlers never do) and
// returns the key id its current version holds.
func (f *fx) storedKeyID(user string) string {
	f.t.Helper()
	out, err := f.sm(f.acct).GetSecretValue(f.t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(DefaultSecretName(f.acct, user))})
	if err != nil {
		f.t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
		f.t.Fatal("secret is not a key/value document")
	}
	if len(v["SecretAccessKey"]) != 40 {
		f.t.Fatalf("stored secret access key has %d characters, want 40", len(v["SecretAccessKey"]))
	}
	f.secrets = append(f.secrets, v["SecretAccessKey"])
	return v["AccessKeyId"]
}

func (f *fx) secretStages(user string) map[string][]string {
	f.t.Helper()
	d, err := describeSecret(f.t.Context(), f.sm(f.acct), DefaultSecretName(f.acct, user))
	if err != nil || d == nil {
		f.t.Fatalf("secret of %s: %v", user, err)
	}
	return d.VersionIdsToStages
}

func wantCreated(f *fx, in CreateKeyInput, out *CreateKeyOutput) {
	t := f.t
	t.Helper()
	if out.AccessKeyID == "" || out.AccessKeyID == in.OldAccessKeyID || !strings.HasPrefix(out.AccessKeyID, "AKIA") {
		t.Fatalf("new key id %q", out.AccessKeyID)
	}
	if out.Action != "created" && out.Action != "alreadyStored" {
		t.Fatalf("action %q", out.Action)
	}
	if !strings.HasPrefix(out.SecretArn, "arn:aws:secretsmanager:") || accountOfARN(out.SecretArn) != f.acct {
		t.Fatalf("secret ARN %q", out.SecretArn)
	}
	if ks := f.keys(in.UserName); ks[out.AccessKeyID] != "Active" {
		t.Fatalf("new key not active: %v", ks)
	}
	if got := f.storedKeyID(in.UserName); got != out.AccessKeyID {
		t.Fatalf("secret holds %s, want %s", got, out.AccessKeyID)
	}
	if _, ok := f.tags(in.UserName)[CreatingKeyTag]; ok {
		t.Fatal("creating-key marker left on the user")
	}
	pol, err := f.sm(f.acct).GetResourcePolicy(t.Context(), &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(out.SecretArn)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(aws.ToString(pol.ResourcePolicy), ":user/"+in.UserName) {
		t.Fatalf("resource policy does not name the user: %s", aws.ToString(pol.ResourcePolicy))
	}
	f.noLeaks(out2json(out))
}

func TestCreateKey(t *testing.T) {
	accessDenied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not allowed to use the KMS key"}
	runTable(t, newCreateKey, []tcase[CreateKeyInput, CreateKeyOutput]{
		{
			name: "rotates one key and stores the new one; a retry finds it",
			setup: func(f *fx) CreateKeyInput {
				ids := f.user("alice", userSpec{keys: 1})
				return CreateKeyInput{AccountID: f.acct, UserName: "alice", OldAccessKeyID: ids[0]}
			},
			retry: true,
			check: func(f *fx, in CreateKeyInput, out *CreateKeyOutput) {
				wantCreated(f, in, out)
				if len(f.keys("alice")) != 2 || f.keys("alice")[in.OldAccessKeyID] != "Active" {
					t.Fatalf("old key must stay active beside the new one: %v", f.keys("alice"))
				}
			},
		},
		{
			name: "first key of a user without keys",
			setup: func(f *fx) CreateKeyInput {
				f.user("bob", userSpec{})
				return CreateKeyInput{AccountID: f.acct, UserName: "bob"}
			},
			check: wantCreated,
		},
		{
			name: "the previous key stays as AWSPREVIOUS",
			setup: func(f *fx) CreateKeyInput {
				f.user("carol", userSpec{})
				first, err := newCreateKey(f)(f.t.Context(), CreateKeyInput{AccountID: f.acct, UserName: "carol"})
				if err != nil {
					f.t.Fatal(err)
				}
				return CreateKeyInput{AccountID: f.acct, UserName: "carol", OldAccessKeyID: first.AccessKeyID}
			},
			retry: true,
			check: func(f *fx, in CreateKeyInput, out *CreateKeyOutput) {
				wantCreated(f, in, out)
				st := f.secretStages("carol")
				if !slices.Contains(st[versionToken(in.OldAccessKeyID)], "AWSPREVIOUS") || !slices.Contains(st[versionToken(out.AccessKeyID)], "AWSCURRENT") {
					f.t.Fatalf("version stages %v", st)
				}
			},
		},
		{
			name: "unknown user",
			setup: func(f *fx) CreateKeyInput {
				return CreateKeyInput{AccountID: f.acct, UserName: "nobody"}
			},
			wantErr: "UserNotFound",
		},
		{
			name: "old key is not the user's",
			setup: func(f *fx) CreateKeyInput {
				f.user("dave", userSpec{keys: 1})
				return CreateKeyInput{AccountID: f.acct, UserName: "dave", OldAccessKeyID: "AKIAAAAAAAAAAAAAAAAA"}
			},
			wantErr: "KeyNotFound",
		},
		{
			name: "two active keys: KeyLimitExceeded, nothing changes",
			setup: func(f *fx) CreateKeyInput {
				ids := f.user("erin", userSpec{keys: 2})
				return CreateKeyInput{AccountID: f.acct, UserName: "erin", OldAccessKeyID: ids[1], DeleteInactiveKey: true}
			},
			wantErr: "KeyLimitExceeded",
			retry:   true,
			check: func(f *fx, in CreateKeyInput, out *CreateKeyOutput) {
				if len(f.keys("erin")) != 2 {
					f.t.Fatalf("keys %v", f.keys("erin"))
				}
			},
		},
		{
			name: "two keys, the other inactive, without the policy: KeyLimitExceeded",
			setup: func(f *fx) CreateKeyInput {
				ids := f.user("frank", userSpec{keys: 2, inactive: 1})
				return CreateKeyInput{AccountID: f.acct, UserName: "frank", OldAccessKeyID: ids[1]}
			},
			wantErr: "KeyLimitExceeded",
		},
		{
			name: "two keys, the other inactive, policy deletes it first",
			setup: func(f *fx) CreateKeyInput {
				ids := f.user("gina", userSpec{keys: 2, inactive: 1})
				return CreateKeyInput{AccountID: f.acct, UserName: "gina", OldAccessKeyID: ids[1], DeleteInactiveKey: true}
			},
			retry: true,
			check: func(f *fx, in CreateKeyInput, out *CreateKeyOutput) {
				wantCreated(f, in, out)
				ks := f.keys("gina")
				if len(ks) != 2 || ks[in.OldAccessKeyID] != "Active" {
					f.t.Fatalf("keys %v", ks)
				}
			},
		},
		{
			name: "failed secret write: the new key is removed, a retry succeeds",
			setup: func(f *fx) CreateKeyInput {
				ids := f.user("hank", userSpec{keys: 1})
				f.faults.failOp("CreateSecret", fault{err: accessDenied})
				return CreateKeyInput{AccountID: f.acct, UserName: "hank", OldAccessKeyID: ids[0]}
			},
			wantErr: "SecretStoreFailed",
			check: func(f *fx, in CreateKeyInput, out *CreateKeyOutput) {
				if ks := f.keys("hank"); len(ks) != 1 || ks[in.OldAccessKeyID] != "Active" {
					f.t.Fatalf("the unstored key survived: %v", ks)
				}
				if _, ok := f.tags("hank")[CreatingKeyTag]; ok {
					f.t.Fatal("marker left although the key was removed")
				}
				again, err := invoke(f.t, newCreateKey(f), in)
				if err != nil {
					f.t.Fatal(err)
				}
				wantCreated(f, in, again)
			},
		},
		{
			name: "throttled secret write: the key is removed and the error is Throttled",
			setup: func(f *fx) CreateKeyInput {
				f.user("ivy", userSpec{})
				f.faults.failOp("CreateSecret", fault{err: errThrottle})
				return CreateKeyInput{AccountID: f.acct, UserName: "ivy"}
			},
			wantErr: "Throttled",
			check: func(f *fx, in CreateKeyInput, out *CreateKeyOutput) {
				if ks := f.keys("ivy"); len(ks) != 0 {
					f.t.Fatalf("the unstored key survived: %v", ks)
				}
			},
		},
		{
			name: "lost CreateSecret response: the write landed, the key is kept",
			setup: func(f *fx) CreateKeyInput {
				f.user("jack", userSpec{})
				f.faults.failOp("CreateSecret", fault{after: true, err: errThrottle})
				return CreateKeyInput{AccountID: f.acct, UserName: "jack"}
			},
			check: wantCreated,
		},
		{
			name: "lost CreateAccessKey response: the retry deletes the orphan",
			setup: func(f *fx) CreateKeyInput {
				ids := f.user("kate", userSpec{keys: 1})
				f.faults.failOp("CreateAccessKey", fault{after: true, err: errThrottle})
				return CreateKeyInput{AccountID: f.acct, UserName: "kate", OldAccessKeyID: ids[0]}
			},
			wantErr: "Throttled",
			check: func(f *fx, in CreateKeyInput, out *CreateKeyOutput) {
				if len(f.keys("kate")) != 2 {
					f.t.Fatalf("want the orphan present before the retry: %v", f.keys("kate"))
				}
				again, err := invoke(f.t, newCreateKey(f), in)
				if err != nil {
					f.t.Fatal(err)
				}
				wantCreated(f, in, again)
				if len(again.OrphanAccessKeyIDs) != 1 || len(f.keys("kate")) != 2 {
					f.t.Fatalf("orphans %v keys %v", again.OrphanAccessKeyIDs, f.keys("kate"))
				}
			},
		},
		{
			name: "throttling on a read propagates",
			setup: func(f *fx) CreateKeyInput {
				f.user("liam", userSpec{keys: 1})
				f.faults.failOp("ListAccessKeys", fault{err: errThrottle})
				return CreateKeyInput{AccountID: f.acct, UserName: "liam"}
			},
			wantErr: "Throttled",
		},
		{
			name: "dry run changes nothing",
			setup: func(f *fx) CreateKeyInput {
				ids := f.user("mia", userSpec{keys: 2, inactive: 1})
				return CreateKeyInput{AccountID: f.acct, UserName: "mia", OldAccessKeyID: ids[1], DeleteInactiveKey: true, DryRun: true}
			},
			check: func(f *fx, in CreateKeyInput, out *CreateKeyOutput) {
				if out.Action != "wouldCreate" || out.RemovedAccessKeyID == "" || out.AccessKeyID != "" {
					f.t.Fatalf("output %+v", out)
				}
				if ks := f.keys("mia"); len(ks) != 2 {
					f.t.Fatalf("dry run changed keys: %v", ks)
				}
				if d, _ := describeSecret(f.t.Context(), f.sm(f.acct), DefaultSecretName(f.acct, "mia")); d != nil {
					f.t.Fatal("dry run created the secret")
				}
			},
		},
		{
			name: "invalid account id",
			setup: func(f *fx) CreateKeyInput {
				return CreateKeyInput{AccountID: "12", UserName: "x"}
			},
			wantErr: "InvalidInput",
		},
	})
}
