package tasks

import (
	"context"
	"testing"
	"time"
)

func newDeactivateKey(f *fx) func(context.Context, DeactivateKeyInput) (*DeactivateKeyOutput, error) {
	return (&DeactivateKey{Accounts: f.accounts, Now: f.now, Log: f.log}).Handle
}

// rotated makes a user with an old key (its secret known, for use) and a new
// key created an hour later.
func (f *fx) rotated(user string) (oldID, oldSecret, newID string) {
	f.user(user, userSpec{})
	oldID, oldSecret = f.key(user)
	f.advance(time.Hour)
	newID, _ = f.key(user)
	return
}

func TestDeactivateKey(t *testing.T) {
	wantInactive := func(f *fx, in DeactivateKeyInput, out *DeactivateKeyOutput) {
		if out.Result != ResultDeactivated && out.Result != ResultAlreadyInactive {
			f.t.Fatalf("result %q", out.Result)
		}
		if st := f.keys(in.UserName)[in.AccessKeyID]; st != "Inactive" {
			f.t.Fatalf("key is %s", st)
		}
		if st := f.keys(in.UserName)[in.NewAccessKeyID]; in.NewAccessKeyID != "" && st != "Active" {
			f.t.Fatalf("new key is %s", st)
		}
	}
	runTable(t, newDeactivateKey, []tcase[DeactivateKeyInput, DeactivateKeyOutput]{
		{
			name: "unused old key is deactivated; a retry sees it inactive",
			setup: func(f *fx) DeactivateKeyInput {
				old, _, nk := f.rotated("alice")
				return DeactivateKeyInput{AccountID: f.acct, UserName: "alice", AccessKeyID: old, NewAccessKeyID: nk}
			},
			retry: true,
			check: wantInactive,
		},
		{
			name: "key used after the new key was created: KeyStillInUse result, key stays active",
			setup: func(f *fx) DeactivateKeyInput {
				old, secret, nk := f.rotated("bob")
				f.advance(time.Hour)
				f.useKey(old, secret)
				return DeactivateKeyInput{AccountID: f.acct, UserName: "bob", AccessKeyID: old, NewAccessKeyID: nk}
			},
			retry: true,
			check: func(f *fx, in DeactivateKeyInput, out *DeactivateKeyOutput) {
				if out.Result != ResultKeyStillInUse || !out.InUse || out.LastUsedDate.IsZero() {
					f.t.Fatalf("output %+v", out)
				}
				if st := f.keys("bob")[in.AccessKeyID]; st != "Active" {
					f.t.Fatalf("in-use key is %s", st)
				}
			},
		},
		{
			name: "key used only before the new key existed is deactivated",
			setup: func(f *fx) DeactivateKeyInput {
				f.user("carol", userSpec{})
				old, secret := f.key("carol")
				f.useKey(old, secret)
				f.advance(24 * time.Hour)
				nk, _ := f.key("carol")
				return DeactivateKeyInput{AccountID: f.acct, UserName: "carol", AccessKeyID: old, NewAccessKeyID: nk}
			},
			sandboxOnly: "moto stamps last use and key creation with the wall clock, so a use before the new key cannot be arranged without sleeping",
			check:       wantInactive,
		},
		{
			name: "force deactivates a key in use",
			setup: func(f *fx) DeactivateKeyInput {
				old, secret, nk := f.rotated("dave")
				f.useKey(old, secret)
				return DeactivateKeyInput{AccountID: f.acct, UserName: "dave", AccessKeyID: old, NewAccessKeyID: nk, Force: true}
			},
			check: wantInactive,
		},
		{
			name: "failIfInUse turns the result into the KeyStillInUse error",
			setup: func(f *fx) DeactivateKeyInput {
				old, secret, nk := f.rotated("erin")
				f.useKey(old, secret)
				return DeactivateKeyInput{AccountID: f.acct, UserName: "erin", AccessKeyID: old, NewAccessKeyID: nk, FailIfInUse: true}
			},
			wantErr: "KeyStillInUse",
		},
		{
			name: "dry run changes nothing",
			setup: func(f *fx) DeactivateKeyInput {
				old, _, nk := f.rotated("frank")
				return DeactivateKeyInput{AccountID: f.acct, UserName: "frank", AccessKeyID: old, NewAccessKeyID: nk, DryRun: true}
			},
			check: func(f *fx, in DeactivateKeyInput, out *DeactivateKeyOutput) {
				if out.Result != ResultWouldDeactivate || f.keys("frank")[in.AccessKeyID] != "Active" {
					f.t.Fatalf("output %+v keys %v", out, f.keys("frank"))
				}
			},
		},
		{
			name: "unknown key",
			setup: func(f *fx) DeactivateKeyInput {
				f.user("gina", userSpec{keys: 1})
				return DeactivateKeyInput{AccountID: f.acct, UserName: "gina", AccessKeyID: "AKIAAAAAAAAAAAAAAAAA", Force: true}
			},
			wantErr: "KeyNotFound",
		},
		{
			name: "unknown user",
			setup: func(f *fx) DeactivateKeyInput {
				return DeactivateKeyInput{AccountID: f.acct, UserName: "nobody", AccessKeyID: "AKIAAAAAAAAAAAAAAAAA", Force: true}
			},
			wantErr: "UserNotFound",
		},
		{
			name: "no cut-off for the last-use check",
			setup: func(f *fx) DeactivateKeyInput {
				return DeactivateKeyInput{AccountID: f.acct, UserName: "x", AccessKeyID: "AKIAAAAAAAAAAAAAAAAA"}
			},
			wantErr: "InvalidInput",
		},
		{
			name: "throttled UpdateAccessKey propagates; the key is untouched",
			setup: func(f *fx) DeactivateKeyInput {
				old, _, nk := f.rotated("hank")
				f.faults.failOp("UpdateAccessKey", fault{err: errThrottle})
				return DeactivateKeyInput{AccountID: f.acct, UserName: "hank", AccessKeyID: old, NewAccessKeyID: nk}
			},
			wantErr: "Throttled",
			check: func(f *fx, in DeactivateKeyInput, out *DeactivateKeyOutput) {
				if f.keys("hank")[in.AccessKeyID] != "Active" {
					f.t.Fatal("key changed")
				}
			},
		},
	})
}
