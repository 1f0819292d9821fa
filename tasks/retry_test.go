package tasks

import (
	"fmt"
	"testing"
)

// scenario is one handler call on one user, for the fault sweep.
type scenario struct {
	name  string
	user  string
	setup func(f *fx) (orig []string)
	run   func(f *fx, orig []string) error
}

// TestRetryAfterEveryStep is the idempotency proof. For every handler, a
// clean run records the AWS calls it makes; then, for each call, a fresh
// world makes that call fail, once before it takes effect and once after (a
// lost response, a timeout), and the handler is simply called again, as
// Step Functions' Retry would. The second call must succeed and leave the
// user exactly as the clean run did.
func TestRetryAfterEveryStep(t *testing.T) {
	scenarios := []scenario{
		{
			name: "create-key", user: "alice",
			setup: func(f *fx) []string { return f.user("alice", userSpec{keys: 1}) },
			run: func(f *fx, orig []string) error {
				_, err := newCreateKey(f)(f.t.Context(), CreateKeyInput{AccountID: f.acct, UserName: "alice", OldAccessKeyID: orig[0]})
				return err
			},
		},
		{
			name: "create-key-two-key-policy", user: "alice",
			setup: func(f *fx) []string { return f.user("alice", userSpec{keys: 2, inactive: 1}) },
			run: func(f *fx, orig []string) error {
				_, err := newCreateKey(f)(f.t.Context(), CreateKeyInput{AccountID: f.acct, UserName: "alice", OldAccessKeyID: orig[1], DeleteInactiveKey: true})
				return err
			},
		},
		{
			name: "deactivate-key", user: "alice",
			setup: func(f *fx) []string {
				o, _, n := f.rotated("alice")
				return []string{o, n}
			},
			run: func(f *fx, orig []string) error {
				_, err := newDeactivateKey(f)(f.t.Context(), DeactivateKeyInput{AccountID: f.acct, UserName: "alice", AccessKeyID: orig[0], NewAccessKeyID: orig[1]})
				return err
			},
		},
		{
			name: "delete-key", user: "alice",
			setup: func(f *fx) []string {
				ids := f.user("alice", userSpec{keys: 2, inactive: 1})
				f.advance(91 * day)
				return ids
			},
			run: func(f *fx, orig []string) error {
				_, err := newDeleteKey(f)(f.t.Context(), DeleteKeyInput{AccountID: f.acct, UserName: "alice", AccessKeyID: orig[0]})
				return err
			},
		},
		{
			name: "quarantine", user: "alice",
			setup: func(f *fx) []string { return f.user("alice", userSpec{keys: 2, groups: []string{"devs"}}) },
			run: func(f *fx, orig []string) error {
				_, err := newQuarantine(f)(f.t.Context(), QuarantineInput{AccountID: f.acct, UserName: "alice", DeactivateKeys: true})
				return err
			},
		},
		{
			name: "release", user: "alice",
			setup: func(f *fx) []string {
				ids := f.user("alice", userSpec{keys: 2, inactive: 1})
				f.quarantined("alice", true)
				return ids
			},
			run: func(f *fx, orig []string) error {
				_, err := newRelease(f)(f.t.Context(), ReleaseInput{AccountID: f.acct, UserName: "alice"})
				return err
			},
		},
		{
			name: "notify", user: "alice",
			setup: func(f *fx) []string {
				f.topic()
				return f.user("alice", userSpec{keys: 1, tags: map[string]string{"owner": "a@example.com"}})
			},
			run: func(f *fx, orig []string) error {
				_, err := newNotify(f)(f.t.Context(), NotifyInput{AccountID: f.acct, UserName: "alice", Event: "KeyCreated",
					TopicArn: "arn:aws:sns:us-east-1:" + f.acct + ":keyflow-notifications"})
				return err
			},
		},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					clean := b.mk(t)
					orig := sc.setup(clean)
					clean.faults.reset()
					if err := sc.run(clean, orig); err != nil {
						t.Fatalf("clean run: %v", err)
					}
					calls := clean.faults.calls
					want := clean.state(sc.user, orig)
					for i, op := range calls {
						for _, after := range []bool{false, true} {
							t.Run(fmt.Sprintf("%02d-%s-after=%v", i, op, after), func(t *testing.T) {
								f := b.mk(t)
								orig := sc.setup(f)
								f.faults.reset()
								f.faults.failAt(i, fault{after: after, err: errThrottle})
								err := sc.run(f, orig)
								switch lambdaErrorType(err) {
								case "", "Throttled", "SecretStoreFailed":
								default:
									t.Fatalf("first attempt: %T %v", err, err)
								}
								f.faults.reset()
								if err := sc.run(f, orig); err != nil {
									t.Fatalf("retry: %T %v", err, err)
								}
								if got := f.state(sc.user, orig); got != want {
									t.Fatalf("after the retry:\n got %s\nwant %s", got, want)
								}
								f.noLeaks()
							})
						}
					}
				})
			}
		})
	}
}
