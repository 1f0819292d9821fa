package tasks

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

func newRelease(f *fx) func(context.Context, ReleaseInput) (*ReleaseOutput, error) {
	return (&Release{Accounts: f.accounts, Now: f.now, Log: f.log}).Handle
}

// quarantined quarantines a user and returns the state from before, for the
// "undone exactly" comparison, and the snapshot.
func (f *fx) quarantined(user string, deactivate bool) (string, *QuarantineSnapshot, []string) {
	f.t.Helper()
	ids := f.keys(user)
	var orig []string
	for id := range ids {
		orig = append(orig, id)
	}
	before := f.state(user, orig)
	out, err := newQuarantine(f)(f.t.Context(), QuarantineInput{AccountID: f.acct, UserName: user, DeactivateKeys: deactivate})
	if err != nil {
		f.t.Fatal(err)
	}
	return before, &out.Snapshot, orig
}

func TestRelease(t *testing.T) {
	type ctx struct {
		before string
		orig   []string
	}
	saved := map[*fx]ctx{}
	wantRestored := func(f *fx, in ReleaseInput, out *ReleaseOutput) {
		f.t.Helper()
		if out.Result != ResultReleased && out.Result != ResultAlreadyReleased {
			f.t.Fatalf("result %q", out.Result)
		}
		c := saved[f]
		if got := f.state(in.UserName, c.orig); got != c.before {
			f.t.Fatalf("not undone exactly:\n got %s\nwant %s", got, c.before)
		}
	}
	runTable(t, newRelease, []tcase[ReleaseInput, ReleaseOutput]{
		{
			name: "undoes exactly what quarantine did; a retry finds nothing to do",
			setup: func(f *fx) ReleaseInput {
				f.user("mallory", userSpec{keys: 2, groups: []string{"devs"}, policies: []string{"s3read"}, tags: map[string]string{"owner": "m@example.com"}})
				before, snap, orig := f.quarantined("mallory", true)
				saved[f] = ctx{before, orig}
				return ReleaseInput{AccountID: f.acct, UserName: "mallory", Snapshot: snap}
			},
			retry: true,
			check: wantRestored,
		},
		{
			name: "a key a person had deactivated before stays inactive",
			setup: func(f *fx) ReleaseInput {
				f.user("oscar", userSpec{keys: 2, inactive: 1})
				before, snap, orig := f.quarantined("oscar", true)
				saved[f] = ctx{before, orig}
				return ReleaseInput{AccountID: f.acct, UserName: "oscar", Snapshot: snap}
			},
			check: func(f *fx, in ReleaseInput, out *ReleaseOutput) {
				wantRestored(f, in, out)
				if len(out.ReactivatedKeyIDs) != 1 {
					f.t.Fatalf("reactivated %v", out.ReactivatedKeyIDs)
				}
			},
		},
		{
			name: "drift since the snapshot is reported, not reverted",
			setup: func(f *fx) ReleaseInput {
				f.user("peggy", userSpec{keys: 1})
				_, snap, _ := f.quarantined("peggy", false)
				if _, err := f.iam(f.acct).CreateGroup(f.t.Context(), &iam.CreateGroupInput{GroupName: aws.String("auditors")}); err != nil {
					f.t.Fatal(err)
				}
				if _, err := f.iam(f.acct).AddUserToGroup(f.t.Context(), &iam.AddUserToGroupInput{GroupName: aws.String("auditors"), UserName: aws.String("peggy")}); err != nil {
					f.t.Fatal(err)
				}
				return ReleaseInput{AccountID: f.acct, UserName: "peggy", Snapshot: snap}
			},
			check: func(f *fx, in ReleaseInput, out *ReleaseOutput) {
				if out.Result != ResultReleased || len(out.Drift) != 1 {
					f.t.Fatalf("output %+v", out)
				}
			},
		},
		{
			name: "dry run changes nothing",
			setup: func(f *fx) ReleaseInput {
				f.user("trent", userSpec{keys: 1})
				f.quarantined("trent", true)
				return ReleaseInput{AccountID: f.acct, UserName: "trent", DryRun: true}
			},
			check: func(f *fx, in ReleaseInput, out *ReleaseOutput) {
				if out.Result != ResultWouldRelease || len(out.ReactivatedKeyIDs) != 1 {
					f.t.Fatalf("output %+v", out)
				}
				if len(f.inlinePolicies("trent")) != 1 {
					f.t.Fatal("dry run removed the policy")
				}
			},
		},
		{
			name: "a user never quarantined",
			setup: func(f *fx) ReleaseInput {
				f.user("victor", userSpec{keys: 1})
				return ReleaseInput{AccountID: f.acct, UserName: "victor"}
			},
			check: func(f *fx, in ReleaseInput, out *ReleaseOutput) {
				if out.Result != ResultAlreadyReleased {
					f.t.Fatalf("output %+v", out)
				}
			},
		},
		{
			name: "unknown user",
			setup: func(f *fx) ReleaseInput {
				return ReleaseInput{AccountID: f.acct, UserName: "nobody"}
			},
			wantErr: "UserNotFound",
		},
		{
			name: "throttled policy delete propagates; the retry finishes",
			setup: func(f *fx) ReleaseInput {
				f.user("walter", userSpec{keys: 1})
				before, _, orig := f.quarantined("walter", true)
				saved[f] = ctx{before, orig}
				f.faults.failOp("DeleteUserPolicy", fault{err: errThrottle})
				return ReleaseInput{AccountID: f.acct, UserName: "walter"}
			},
			wantErr: "Throttled",
			check: func(f *fx, in ReleaseInput, out *ReleaseOutput) {
				again, err := invoke(f.t, newRelease(f), in)
				if err != nil {
					f.t.Fatal(err)
				}
				wantRestored(f, in, again)
			},
		},
	})
}
