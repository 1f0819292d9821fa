package tasks

import (
	"context"
	"testing"
	"time"
)

func newDeleteKey(f *fx) func(context.Context, DeleteKeyInput) (*DeleteKeyOutput, error) {
	return (&DeleteKey{Accounts: f.accounts, Now: f.now, Log: f.log}).Handle
}

const day = 24 * time.Hour

func TestDeleteKey(t *testing.T) {
	runTable(t, newDeleteKey, []tcase[DeleteKeyInput, DeleteKeyOutput]{
		{
			name: "inactive key past the buffer is deleted; a retry finds it gone",
			setup: func(f *fx) DeleteKeyInput {
				ids := f.user("alice", userSpec{keys: 2, inactive: 1})
				f.advance(91 * day)
				return DeleteKeyInput{AccountID: f.acct, UserName: "alice", AccessKeyID: ids[0]}
			},
			retry: true,
			check: func(f *fx, in DeleteKeyInput, out *DeleteKeyOutput) {
				if out.Result != ResultDeleted && out.Result != ResultAlreadyDeleted {
					f.t.Fatalf("result %q", out.Result)
				}
				if ks := f.keys("alice"); len(ks) != 1 {
					f.t.Fatalf("keys %v", ks)
				}
			},
		},
		{
			name: "an active key is never deleted",
			setup: func(f *fx) DeleteKeyInput {
				ids := f.user("bob", userSpec{keys: 1})
				f.advance(200 * day)
				return DeleteKeyInput{AccountID: f.acct, UserName: "bob", AccessKeyID: ids[0]}
			},
			wantErr: "KeyNotInactive",
			check: func(f *fx, in DeleteKeyInput, out *DeleteKeyOutput) {
				if len(f.keys("bob")) != 1 {
					f.t.Fatal("key deleted")
				}
			},
		},
		{
			name: "inactive key before the buffer point",
			setup: func(f *fx) DeleteKeyInput {
				ids := f.user("carol", userSpec{keys: 1, inactive: 1})
				f.advance(89 * day)
				return DeleteKeyInput{AccountID: f.acct, UserName: "carol", AccessKeyID: ids[0]}
			},
			wantErr: "BufferNotPassed",
		},
		{
			name: "explicit buffer point",
			setup: func(f *fx) DeleteKeyInput {
				ids := f.user("dave", userSpec{keys: 1, inactive: 1})
				f.advance(time.Hour)
				return DeleteKeyInput{AccountID: f.acct, UserName: "dave", AccessKeyID: ids[0], NotBefore: f.now().Add(-time.Minute)}
			},
			check: func(f *fx, in DeleteKeyInput, out *DeleteKeyOutput) {
				if out.Result != ResultDeleted || len(f.keys("dave")) != 0 {
					f.t.Fatalf("output %+v", out)
				}
			},
		},
		{
			name: "custom buffer days",
			setup: func(f *fx) DeleteKeyInput {
				ids := f.user("erin", userSpec{keys: 1, inactive: 1})
				f.advance(31 * day)
				return DeleteKeyInput{AccountID: f.acct, UserName: "erin", AccessKeyID: ids[0], BufferDays: 30}
			},
			check: func(f *fx, in DeleteKeyInput, out *DeleteKeyOutput) {
				if out.Result != ResultDeleted {
					f.t.Fatalf("output %+v", out)
				}
			},
		},
		{
			name: "dry run changes nothing",
			setup: func(f *fx) DeleteKeyInput {
				ids := f.user("frank", userSpec{keys: 1, inactive: 1})
				f.advance(91 * day)
				return DeleteKeyInput{AccountID: f.acct, UserName: "frank", AccessKeyID: ids[0], DryRun: true}
			},
			check: func(f *fx, in DeleteKeyInput, out *DeleteKeyOutput) {
				if out.Result != ResultWouldDelete || len(f.keys("frank")) != 1 {
					f.t.Fatalf("output %+v", out)
				}
			},
		},
		{
			name: "a key that is already gone, and a user that is gone",
			setup: func(f *fx) DeleteKeyInput {
				f.user("gina", userSpec{keys: 1})
				return DeleteKeyInput{AccountID: f.acct, UserName: "gina", AccessKeyID: "AKIAAAAAAAAAAAAAAAAA"}
			},
			check: func(f *fx, in DeleteKeyInput, out *DeleteKeyOutput) {
				if out.Result != ResultAlreadyDeleted {
					f.t.Fatalf("output %+v", out)
				}
				in.UserName = "nobody"
				out, err := invoke(f.t, newDeleteKey(f), in)
				if err != nil || out.Result != ResultAlreadyDeleted {
					f.t.Fatalf("gone user: %+v %v", out, err)
				}
			},
		},
		{
			name: "throttled delete propagates",
			setup: func(f *fx) DeleteKeyInput {
				ids := f.user("hank", userSpec{keys: 1, inactive: 1})
				f.advance(91 * day)
				f.faults.failOp("DeleteAccessKey", fault{err: errThrottle})
				return DeleteKeyInput{AccountID: f.acct, UserName: "hank", AccessKeyID: ids[0]}
			},
			wantErr: "Throttled",
		},
		{
			name: "bad key id",
			setup: func(f *fx) DeleteKeyInput {
				return DeleteKeyInput{AccountID: f.acct, UserName: "x", AccessKeyID: "nope"}
			},
			wantErr: "InvalidInput",
		},
	})
}
