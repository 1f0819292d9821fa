package tasks

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/keyflow/keyflow/sandbox"
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

// emailFx gives the case's handler SES in the case's account, with the
// sender's domain verified and NotifyEmailTemplate stored, as the stack
// (or the local backend) sets them up.
func emailFx(f *fx) SESAPI {
	f.t.Helper()
	ses := f.sb.SESv2(f.acct)
	ctx := f.t.Context()
	if _, err := ses.GetEmailTemplate(ctx, &sesv2.GetEmailTemplateInput{TemplateName: aws.String("keyflow-notify")}); err == nil {
		return ses
	}
	if _, err := ses.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String("example.com")}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := ses.CreateEmailTemplate(ctx, &sesv2.CreateEmailTemplateInput{TemplateName: aws.String("keyflow-notify"),
		TemplateContent: &sestypes.EmailTemplateContent{Subject: aws.String(NotifyEmailTemplate.Subject),
			Text: aws.String(NotifyEmailTemplate.Text), Html: aws.String(NotifyEmailTemplate.HTML)}}); err != nil {
		f.t.Fatal(err)
	}
	return ses
}

type faultySES struct {
	inner SESAPI
	f     *faults
}

func (s faultySES) SendEmail(ctx context.Context, in *sesv2.SendEmailInput, o ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	return call(s.f, "SendEmail", func() (*sesv2.SendEmailOutput, error) { return s.inner.SendEmail(ctx, in, o...) })
}

func newEmailNotify(f *fx) func(context.Context, NotifyInput) (*NotifyOutput, error) {
	var ses SESAPI
	if f.sb != nil {
		ses = faultySES{emailFx(f), f.faults}
	}
	return (&Notify{Accounts: f.accounts, Now: f.now, Log: f.log, SecurityTeam: "security@example.com",
		SES: ses, EmailFrom: "keyflow@example.com", EmailTemplate: "keyflow-notify"}).Handle
}

func lastMail(f *fx) sandbox.Email {
	f.t.Helper()
	m := f.sb.Mail()
	if len(m) == 0 {
		f.t.Fatal("no email sent")
	}
	return m[len(m)-1]
}

// The SES template cases run on the sandbox only: moto 5.2.1's sesv2 has no
// email templates (see sandbox/moto_s3ses_test.go).
const noMotoTemplates = "moto 5.2.1's sesv2 has no CreateEmailTemplate and does not send Content.Template"

func TestNotifyEmail(t *testing.T) {
	const secretArn = "arn:aws:secretsmanager:us-east-1:222233334444:secret:Account_222233334444_User_alice_AccessKey-AbCdEf"
	runTable(t, newEmailNotify, []tcase[NotifyInput, NotifyOutput]{
		{
			name:        "a templated email to the owner and the security team, with ids and the secret's ARN only",
			sandboxOnly: noMotoTemplates,
			setup: func(f *fx) NotifyInput {
				ids := f.user("alice", userSpec{keys: 1, tags: map[string]string{"owner": "alice@example.com"}})
				return NotifyInput{AccountID: f.acct, UserName: "alice", Event: "KeyCreated", TopicArn: f.topic(),
					AccessKeyID: ids[0], NewAccessKeyID: "AKIAZZZZZZZZZZZZZZZZ", SecretArn: secretArn}
			},
			check: func(f *fx, in NotifyInput, out *NotifyOutput) {
				if out.MessageID == "" || out.EmailMessageID == "" || strings.Join(out.EmailRecipients, ",") != "alice@example.com,security@example.com" {
					f.t.Fatalf("output %+v", out)
				}
				m := lastMail(f)
				if m.From != "keyflow@example.com" || strings.Join(m.To, ",") != "alice@example.com,security@example.com" || m.Template != "keyflow-notify" {
					f.t.Fatalf("email %+v", m)
				}
				if m.Subject != out.Subject {
					f.t.Errorf("email subject %q, SNS subject %q", m.Subject, out.Subject)
				}
				for _, want := range []string{in.AccessKeyID, in.NewAccessKeyID, secretArn, "a new access key was created and stored", out.DeduplicationID} {
					if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
						f.t.Errorf("email lacks %q:\n%s\n%s", want, m.Text, m.HTML)
					}
				}
			},
		},
		{
			name:        "an owner tag that is not an address: the security team only",
			sandboxOnly: noMotoTemplates,
			setup: func(f *fx) NotifyInput {
				f.user("bob", userSpec{tags: map[string]string{"owner": "team ops"}})
				return NotifyInput{AccountID: f.acct, UserName: "bob", Event: "KeyDeleted", TopicArn: f.topic(), AccessKeyID: "AKIAYYYYYYYYYYYYYYYY"}
			},
			check: func(f *fx, in NotifyInput, out *NotifyOutput) {
				if out.Owner != "team ops" || strings.Join(lastMail(f).To, ",") != "security@example.com" {
					f.t.Fatalf("output %+v, email %+v", out, lastMail(f))
				}
			},
		},
		{
			name:        "dry run sends no email but says to whom it would",
			sandboxOnly: noMotoTemplates,
			setup: func(f *fx) NotifyInput {
				f.user("dave", userSpec{tags: map[string]string{"owner": "dave@example.com"}})
				return NotifyInput{AccountID: f.acct, UserName: "dave", Event: "Quarantined", TopicArn: f.topic(), DryRun: true}
			},
			check: func(f *fx, in NotifyInput, out *NotifyOutput) {
				if len(f.sb.Mail()) != 0 || out.EmailMessageID != "" || len(out.EmailRecipients) != 2 {
					f.t.Fatalf("output %+v, %d emails", out, len(f.sb.Mail()))
				}
			},
		},
	})
}

// TestNotifyEmailOff: without a sender or a template, Notify sends no email
// and says none.
func TestNotifyEmailOff(t *testing.T) {
	f := newSandboxFx(t)
	ses := emailFx(f)
	f.user("alice", userSpec{tags: map[string]string{"owner": "alice@example.com"}})
	for _, h := range []*Notify{
		{Accounts: f.accounts, Now: f.now, SES: ses, EmailTemplate: "keyflow-notify"},
		{Accounts: f.accounts, Now: f.now, SES: ses, EmailFrom: "keyflow@example.com"},
		{Accounts: f.accounts, Now: f.now, EmailFrom: "keyflow@example.com", EmailTemplate: "keyflow-notify"},
	} {
		out, err := invoke(t, h.Handle, NotifyInput{AccountID: f.acct, UserName: "alice", Event: "KeyCreated", TopicArn: f.topic()})
		if err != nil || out.MessageID == "" || out.EmailMessageID != "" || out.EmailRecipients != nil {
			t.Fatalf("%+v %v", out, err)
		}
	}
	if n := len(f.sb.Mail()); n != 0 {
		t.Fatalf("%d emails sent with email off", n)
	}
}

// TestNotifyEmailFailures: SES failures are named errors, and a retry after
// one sends the email.
func TestNotifyEmailFailures(t *testing.T) {
	f := newSandboxFx(t)
	ses := emailFx(f)
	f.user("erin", userSpec{tags: map[string]string{"owner": "erin@example.com"}})
	in := NotifyInput{AccountID: f.acct, UserName: "erin", Event: "KeyDeactivated", TopicArn: f.topic()}

	missing := &Notify{Accounts: f.accounts, Now: f.now, SES: ses, EmailFrom: "keyflow@example.com", EmailTemplate: "nope"}
	if _, err := invoke(t, missing.Handle, in); lambdaErrorType(err) != "ServiceError" || !strings.Contains(err.Error(), "NotFoundException") {
		t.Fatalf("missing template: %T %v", err, err)
	}
	unverified := &Notify{Accounts: f.accounts, Now: f.now, SES: ses, EmailFrom: "keyflow@example.net", EmailTemplate: "keyflow-notify"}
	if _, err := invoke(t, unverified.Handle, in); lambdaErrorType(err) != "ServiceError" || !strings.Contains(err.Error(), "MessageRejected") {
		t.Fatalf("unverified sender: %T %v", err, err)
	}
	h := newEmailNotify(f)
	f.faults.failOp("SendEmail", fault{err: errThrottle})
	if _, err := invoke(t, h, in); lambdaErrorType(err) != "Throttled" {
		t.Fatalf("throttled: %T %v", err, err)
	}
	out, err := invoke(t, h, in)
	if err != nil || out.EmailMessageID == "" {
		t.Fatalf("retry: %+v %v", out, err)
	}
	if n := len(f.sb.Mail()); n != 1 {
		t.Fatalf("%d emails after the retry, want 1", n)
	}
	f.noLeaks(out2json(out))
}
