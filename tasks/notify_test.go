package tasks

import (
	"context"
	"strings"
	"testing"
)

func newNotify(f *fx) func(context.Context, NotifyInput) (*NotifyOutput, error) {
	return (&Notify{Accounts: f.accounts, Now: f.now, Log: f.log, SecurityTeam: "security@example.com"}).Handle
}

func TestNotify(t *testing.T) {
	const secretArn = "arn:aws:secretsmanager:us-east-1:222233334444:secret:Account_222233334444_User_alice_AccessKey-AbCdEf"
	runTable(t, newNotify, []tcase[NotifyInput, NotifyOutput]{
		{
			name: "to the owner and the security team, with the key and the secret's ARN only",
			setup: func(f *fx) NotifyInput {
				ids := f.user("alice", userSpec{keys: 1, tags: map[string]string{"owner": "alice@example.com"}})
				return NotifyInput{AccountID: f.acct, UserName: "alice", Event: "KeyCreated", TopicArn: f.topic(),
					AccessKeyID: ids[0], NewAccessKeyID: "AKIAZZZZZZZZZZZZZZZZ", SecretArn: secretArn}
			},
			retry: true,
			check: func(f *fx, in NotifyInput, out *NotifyOutput) {
				if out.MessageID == "" || out.Owner != "alice@example.com" || strings.Join(out.Recipients, ",") != "alice@example.com,security@example.com" {
					f.t.Fatalf("output %+v", out)
				}
				if f.outbox == nil {
					return
				}
				msgs := f.outbox()
				if len(msgs) == 0 {
					f.t.Fatal("nothing published")
				}
				last := msgs[len(msgs)-1]
				for _, want := range []string{in.AccessKeyID, in.NewAccessKeyID, secretArn, "alice@example.com", "security@example.com"} {
					if !strings.Contains(last, want) {
						f.t.Errorf("message lacks %q: %s", want, last)
					}
				}
			},
		},
		{
			name: "no owner tag: the security team only",
			setup: func(f *fx) NotifyInput {
				f.user("bob", userSpec{keys: 1})
				return NotifyInput{AccountID: f.acct, UserName: "bob", Event: "KeyDeleted", TopicArn: f.topic(), AccessKeyID: "AKIAYYYYYYYYYYYYYYYY"}
			},
			check: func(f *fx, in NotifyInput, out *NotifyOutput) {
				if out.Owner != "" || len(out.Recipients) != 1 || out.MessageID == "" {
					f.t.Fatalf("output %+v", out)
				}
			},
		},
		{
			name: "a deleted user still reaches the security team",
			setup: func(f *fx) NotifyInput {
				return NotifyInput{AccountID: f.acct, UserName: "gone", Event: "RotationFailed", TopicArn: f.topic(), Detail: "UserNotFound"}
			},
			check: func(f *fx, in NotifyInput, out *NotifyOutput) {
				if out.MessageID == "" {
					f.t.Fatalf("output %+v", out)
				}
			},
		},
		{
			name: "a secret-shaped detail is refused and nothing is sent",
			setup: func(f *fx) NotifyInput {
				f.user("carol", userSpec{})
				return NotifyInput{AccountID: f.acct, UserName: "carol", Event: "RotationFailed", TopicArn: f.topic(),
					Detail: "leaked wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here"}
			},
			wantErr: "SecretDetected",
			check: func(f *fx, in NotifyInput, out *NotifyOutput) {
				if f.outbox != nil && len(f.outbox()) != 0 {
					f.t.Fatal("published anyway")
				}
				f.outbox = nil // the refused text is in the input on purpose
			},
		},
		{
			name: "dry run publishes nothing",
			setup: func(f *fx) NotifyInput {
				f.user("dave", userSpec{tags: map[string]string{"owner": "dave@example.com"}})
				return NotifyInput{AccountID: f.acct, UserName: "dave", Event: "Quarantined", TopicArn: f.topic(), DryRun: true}
			},
			check: func(f *fx, in NotifyInput, out *NotifyOutput) {
				if out.MessageID != "" || out.Subject == "" {
					f.t.Fatalf("output %+v", out)
				}
				if f.outbox != nil && len(f.outbox()) != 0 {
					f.t.Fatal("dry run published")
				}
			},
		},
		{
			name: "unknown event",
			setup: func(f *fx) NotifyInput {
				return NotifyInput{AccountID: f.acct, UserName: "x", Event: "Nope", TopicArn: "arn:aws:sns:us-east-1:222233334444:t"}
			},
			wantErr: "InvalidInput",
		},
		{
			name: "throttled publish propagates",
			setup: func(f *fx) NotifyInput {
				f.user("erin", userSpec{})
				f.faults.failOp("Publish", fault{err: errThrottle})
				return NotifyInput{AccountID: f.acct, UserName: "erin", Event: "KeyDeactivated", TopicArn: f.topic()}
			},
			wantErr: "Throttled",
		},
		{
			name: "missing topic is a ServiceError, not a success",
			setup: func(f *fx) NotifyInput {
				f.user("frank", userSpec{})
				return NotifyInput{AccountID: f.acct, UserName: "frank", Event: "KeyDeactivated", TopicArn: "arn:aws:sns:us-east-1:" + f.acct + ":missing"}
			},
			wantErr: "ServiceError",
		},
	})
}

func TestLooksLikeSecret(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", true},
		{`{"SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`, true},
		{"AKIAIOSFODNN7EXAMPLE", false},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:Account_123456789012_User_alice_AccessKey-AbCdEf", false},
		{"0123456789abcdef0123456789abcdef01234567", false},        // a hex digest
		{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYandmore", false}, // part of a longer run
		{"Account_123456789012_User_alice_AccessKey", false},
	} {
		if got := LooksLikeSecret(c.in); got != c.want {
			t.Errorf("LooksLikeSecret(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}
