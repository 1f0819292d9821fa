package tasks

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

func newQuarantine(f *fx) func(context.Context, QuarantineInput) (*QuarantineOutput, error) {
	return (&Quarantine{Accounts: f.accounts, Now: f.now, Log: f.log}).Handle
}

func TestQuarantinePolicyDocument(t *testing.T) {
	var doc struct {
		Statement []struct {
			Effect    string
			NotAction []string
			Resource  string
		}
	}
	if err := json.Unmarshal([]byte(QuarantinePolicyDocument), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Statement) != 1 || doc.Statement[0].Effect != "Deny" || doc.Statement[0].Resource != "*" {
		t.Fatalf("policy %+v", doc)
	}
	// Everything AWSCompromisedKeyQuarantineV2 denies must stay denied.
	for _, a := range []string{"iam:CreateAccessKey", "iam:AttachUserPolicy", "iam:CreateUser", "ec2:RunInstances", "lambda:CreateFunction", "organizations:CreateAccount"} {
		if slices.Contains(doc.Statement[0].NotAction, a) {
			t.Errorf("%s is allowed", a)
		}
	}
	if len(QuarantinePolicyDocument) > 2048 {
		t.Errorf("policy is %d characters; a user's inline policies share 2048", len(QuarantinePolicyDocument))
	}
}

func TestQuarantine(t *testing.T) {
	wantQuarantined := func(f *fx, in QuarantineInput, out *QuarantineOutput) {
		f.t.Helper()
		if out.Result != ResultQuarantined && out.Result != ResultAlreadyQuarantined {
			f.t.Fatalf("result %q", out.Result)
		}
		p, err := f.iam(f.acct).GetUserPolicy(f.t.Context(), &iam.GetUserPolicyInput{UserName: aws.String(in.UserName), PolicyName: aws.String(DefaultQuarantinePolicy)})
		if err != nil {
			f.t.Fatalf("deny policy missing: %v", err)
		}
		_ = p
		if _, ok := f.tags(in.UserName)[QuarantineTag]; !ok {
			f.t.Fatal("quarantine marker missing")
		}
		for id, st := range f.keys(in.UserName) {
			if in.DeactivateKeys && st != "Inactive" {
				f.t.Fatalf("key %s is %s", id, st)
			}
		}
	}
	runTable(t, newQuarantine, []tcase[QuarantineInput, QuarantineOutput]{
		{
			name: "deny policy and keys deactivated, snapshot first; a retry is a no-op",
			setup: func(f *fx) QuarantineInput {
				f.user("mallory", userSpec{keys: 2, groups: []string{"devs"}, policies: []string{"s3read"}})
				return QuarantineInput{AccountID: f.acct, UserName: "mallory", DeactivateKeys: true}
			},
			retry: true,
			check: func(f *fx, in QuarantineInput, out *QuarantineOutput) {
				wantQuarantined(f, in, out)
				s := out.Snapshot
				if !slices.Equal(s.Groups, []string{"devs"}) || !slices.Equal(s.InlinePolicyNames, []string{"s3read"}) || len(s.ActiveAccessKeyIDs) != 2 {
					f.t.Fatalf("snapshot %+v", s)
				}
				if len(out.DeactivatedKeyIDs) != 2 {
					f.t.Fatalf("deactivated %v", out.DeactivatedKeyIDs)
				}
			},
		},
		{
			name: "keys left active unless asked",
			setup: func(f *fx) QuarantineInput {
				f.user("oscar", userSpec{keys: 1})
				return QuarantineInput{AccountID: f.acct, UserName: "oscar"}
			},
			check: func(f *fx, in QuarantineInput, out *QuarantineOutput) {
				wantQuarantined(f, in, out)
				for _, st := range f.keys("oscar") {
					if st != "Active" {
						f.t.Fatal("key deactivated")
					}
				}
			},
		},
		{
			name: "an admin is never quarantined",
			setup: func(f *fx) QuarantineInput {
				f.user("root-ish", userSpec{keys: 1, groups: []string{"admins"}})
				return QuarantineInput{AccountID: f.acct, UserName: "root-ish", DeactivateKeys: true}
			},
			wantErr: "NotQuarantinable",
			check: func(f *fx, in QuarantineInput, out *QuarantineOutput) {
				if len(f.inlinePolicies("root-ish")) != 0 {
					f.t.Fatal("policy attached to an admin")
				}
			},
		},
		{
			name: "dry run changes nothing",
			setup: func(f *fx) QuarantineInput {
				f.user("peggy", userSpec{keys: 1})
				return QuarantineInput{AccountID: f.acct, UserName: "peggy", DeactivateKeys: true, DryRun: true}
			},
			check: func(f *fx, in QuarantineInput, out *QuarantineOutput) {
				if out.Result != ResultWouldQuarantine || len(out.DeactivatedKeyIDs) != 1 {
					f.t.Fatalf("output %+v", out)
				}
				if len(f.inlinePolicies("peggy")) != 0 || len(f.tags("peggy")) != 0 {
					f.t.Fatal("dry run changed the user")
				}
			},
		},
		{
			name: "unknown user",
			setup: func(f *fx) QuarantineInput {
				return QuarantineInput{AccountID: f.acct, UserName: "nobody"}
			},
			wantErr: "UserNotFound",
		},
		{
			name: "throttled policy write propagates; the marker lets the retry finish",
			setup: func(f *fx) QuarantineInput {
				f.user("trent", userSpec{keys: 1})
				f.faults.failOp("PutUserPolicy", fault{err: errThrottle})
				return QuarantineInput{AccountID: f.acct, UserName: "trent", DeactivateKeys: true}
			},
			wantErr: "Throttled",
			check: func(f *fx, in QuarantineInput, out *QuarantineOutput) {
				again, err := invoke(f.t, newQuarantine(f), in)
				if err != nil {
					f.t.Fatal(err)
				}
				wantQuarantined(f, in, again)
			},
		},
	})
}
