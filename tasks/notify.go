package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// DefaultOwnerTag is the user tag that names a key's owner.
const DefaultOwnerTag = "owner"

// NotifyInput says what happened to which key. It carries ids and ARNs
// only; there is no field in which a secret could travel.
type NotifyInput struct {
	AccountID string `json:"accountId"`
	UserName  string `json:"userName"`
	// Event is what happened: KeyCreated, KeyStillInUse, KeyDeactivated,
	// KeyDeleted, RotationFailed, Quarantined, QuarantineRejected, Released,
	// MFARequired, MFAEnforced, MFAReleased.
	Event          string `json:"event"`
	AccessKeyID    string `json:"accessKeyId,omitempty"`
	NewAccessKeyID string `json:"newAccessKeyId,omitempty"`
	SecretArn      string `json:"secretArn,omitempty"`
	// Detail is a short free text (an error name, a reason); it is checked
	// for anything shaped like a secret before sending.
	Detail string `json:"detail,omitempty"`
	// TopicArn overrides the handler's topic.
	TopicArn string `json:"topicArn,omitempty"`
	DryRun   bool   `json:"dryRun,omitempty"`
}

// NotifyOutput says what was (or in a dry run would be) published.
type NotifyOutput struct {
	MessageID  string   `json:"messageId,omitempty"`
	TopicArn   string   `json:"topicArn"`
	Subject    string   `json:"subject"`
	Owner      string   `json:"owner,omitempty"`
	Recipients []string `json:"recipients"`
	// DeduplicationID is the same for the same input, so subscribers (and
	// FIFO topics) can drop the duplicate a retry may send.
	DeduplicationID string    `json:"deduplicationId"`
	SentAt          time.Time `json:"sentAt,omitzero"`
	DryRun          bool      `json:"dryRun"`
	// EmailMessageID is SES's id of the email, when email is configured and
	// one was (or, in a dry run, would be) sent to EmailRecipients.
	EmailMessageID  string   `json:"emailMessageId,omitempty"`
	EmailRecipients []string `json:"emailRecipients,omitempty"`
}

// Notify publishes one message to the keyflow SNS topic, addressed to the
// key's owner (from the owner tag of the user) and to the security team.
// Subscriptions route on the "audience" and "owner" message attributes.
type Notify struct {
	Accounts Accounts
	Now      func() time.Time
	Log      *slog.Logger
	// TopicArn is the default topic (the template passes it in the
	// function's environment).
	TopicArn string
	// SecurityTeam is the security team's address, always a recipient.
	SecurityTeam string
	// OwnerTag defaults to DefaultOwnerTag.
	OwnerTag string

	// Email through SES is off unless SES, EmailFrom (a verified identity
	// of the deployment's account) and EmailTemplate (an SES template, see
	// NotifyEmailTemplate) are all set. The email goes to the owner (when
	// the owner tag is an address) and the security team, in the
	// deployment's own account, whatever account the user is in.
	SES           SESAPI
	EmailFrom     string
	EmailTemplate string
}

// NotifyEmailTemplate is the SES template Notify's TemplateData fills: the
// template the CloudFormation stack creates and the local backend puts in
// the sandbox. Its variables are the keys of NotifyEmailData.
var NotifyEmailTemplate = struct{ Subject, Text, HTML string }{
	Subject: "{{subject}}",
	Text: "IAM user {{userName}} in account {{accountId}}: {{what}}.\n" +
		"Access key: {{accessKeyId}}\nNew access key: {{newAccessKeyId}}\n" +
		"Stored in Secrets Manager: {{secretArn}}\nDetail: {{detail}}\n" +
		"Owner: {{owner}}\nTime: {{time}}\nReference: {{deduplicationId}}\n",
	HTML: "<p>IAM user <b>{{userName}}</b> in account {{accountId}}: {{what}}.</p>" +
		"<ul><li>Access key: {{accessKeyId}}</li><li>New access key: {{newAccessKeyId}}</li>" +
		"<li>Stored in Secrets Manager: {{secretArn}}</li><li>Detail: {{detail}}</li>" +
		"<li>Owner: {{owner}}</li><li>Time: {{time}}</li></ul><p>Reference: {{deduplicationId}}</p>",
}

// NotifyEmailData is the TemplateData of Notify's email: ids, ARNs and
// words only, like the SNS message.
type NotifyEmailData struct {
	Subject         string `json:"subject"`
	Event           string `json:"event"`
	What            string `json:"what"`
	AccountID       string `json:"accountId"`
	UserName        string `json:"userName"`
	AccessKeyID     string `json:"accessKeyId"`
	NewAccessKeyID  string `json:"newAccessKeyId"`
	SecretArn       string `json:"secretArn"`
	Detail          string `json:"detail"`
	Owner           string `json:"owner"`
	Time            string `json:"time"`
	DeduplicationID string `json:"deduplicationId"`
}

func (h *Notify) emailOn() bool { return h.SES != nil && h.EmailFrom != "" && h.EmailTemplate != "" }

var notifyEvents = map[string]string{
	"KeyCreated":         "a new access key was created and stored",
	"KeyStillInUse":      "the old access key is still in use; it stays active for now",
	"KeyDeactivated":     "the old access key was deactivated",
	"KeyDeleted":         "the old access key was deleted",
	"RotationFailed":     "the access key rotation failed and needs attention",
	"Quarantined":        "the user was quarantined",
	"QuarantineRejected": "quarantine of the user was rejected",
	"Released":           "the user was released from quarantine",
	"ApprovalRequested":  "an approver's decision is requested (see the detail for how to answer)",
	"WorkflowFailed":     "a keyflow workflow failed and needs attention",
	// The MFA workflow's events. MFARequired is the user's only warning,
	// so it says how to enrol; the detail carries the deadline.
	"MFARequired": "console sign-in needs an MFA device: enrol one before the deadline in the detail " +
		"(AWS console > your user name > Security credentials > Assign MFA device), or every action except enrolling will be denied",
	"MFAEnforced": "the user has no MFA device after the grace period: the MFA-required policy now denies every action except enrolling one",
	"MFAReleased": "the user has enrolled an MFA device (or no longer signs in to the console): the MFA-required policy was removed",
}

// Handle implements the handler: it publishes to SNS and then, when email
// is configured, sends the templated email.
//
// Errors: InvalidInput, SecretDetected, AccountUnavailable, Throttled,
// ServiceError.
func (h *Notify) Handle(ctx context.Context, in NotifyInput) (*NotifyOutput, error) {
	if err := validateUser(in.AccountID, in.UserName); err != nil {
		return nil, err
	}
	what, ok := notifyEvents[in.Event]
	if !ok {
		return nil, &InvalidInput{Field: "event", Reason: fmt.Sprintf("unknown event %q", truncate(in.Event))}
	}
	topic := in.TopicArn
	if topic == "" {
		topic = h.TopicArn
	}
	topicAccount := accountOfARN(topic)
	if !validAccountID(topicAccount) {
		return nil, &InvalidInput{Field: "topicArn", Reason: fmt.Sprintf("%q is not an SNS topic ARN", truncate(topic))}
	}
	for field, v := range map[string]string{
		"accessKeyId": in.AccessKeyID, "newAccessKeyId": in.NewAccessKeyID,
		"secretArn": in.SecretArn, "detail": in.Detail, "userName": in.UserName,
	} {
		if LooksLikeSecret(v) {
			return nil, &SecretDetected{Field: field}
		}
	}
	log := logger(h.Log).With("handler", "notify", "accountId", in.AccountID, "userName", in.UserName, "event", in.Event)

	// The owner is best effort: a deleted user still deserves a message to
	// the security team.
	owner := ""
	if iamc, err := h.Accounts.IAM(ctx, in.AccountID); err != nil {
		return nil, err
	} else if tags, err := userTags(ctx, iamc, in.AccountID, in.UserName); err == nil {
		tag := h.OwnerTag
		if tag == "" {
			tag = DefaultOwnerTag
		}
		owner = tags[tag]
	} else if _, gone := err.(*UserNotFound); !gone {
		return nil, err
	}

	out := &NotifyOutput{TopicArn: topic, Owner: owner, DryRun: in.DryRun}
	audience := []string{"security"}
	if owner != "" {
		out.Recipients = append(out.Recipients, owner)
		audience = append(audience, "owner")
	}
	if h.SecurityTeam != "" {
		out.Recipients = append(out.Recipients, h.SecurityTeam)
	}
	if out.Recipients == nil {
		out.Recipients = []string{}
	}
	out.Subject = truncateSubject(fmt.Sprintf("keyflow: %s: %s in account %s", in.Event, in.UserName, in.AccountID))
	body := h.body(in, what, owner)
	if LooksLikeSecret(body) {
		return nil, &SecretDetected{Field: "message"}
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{in.AccountID, in.UserName, in.Event, in.AccessKeyID, in.NewAccessKeyID, in.SecretArn, in.Detail}, "\x00")))
	out.DeduplicationID = hex.EncodeToString(sum[:16])
	var email *sesv2.SendEmailInput
	if h.emailOn() {
		email, out.EmailRecipients = h.email(in, out, what)
		if email != nil && LooksLikeSecret(aws.ToString(email.Content.Template.TemplateData)) {
			return nil, &SecretDetected{Field: "email"}
		}
	}
	if in.DryRun {
		return out, nil
	}

	snsc, err := h.Accounts.SNS(ctx, topicAccount)
	if err != nil {
		return nil, err
	}
	pub := &sns.PublishInput{
		TopicArn: aws.String(topic),
		Subject:  aws.String(out.Subject),
		Message:  aws.String(body),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"event":           {DataType: aws.String("String"), StringValue: aws.String(in.Event)},
			"audience":        {DataType: aws.String("String.Array"), StringValue: aws.String(`["` + strings.Join(audience, `","`) + `"]`)},
			"deduplicationId": {DataType: aws.String("String"), StringValue: aws.String(out.DeduplicationID)},
		},
	}
	if owner != "" {
		pub.MessageAttributes["owner"] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(owner)}
	}
	if strings.HasSuffix(topic, ".fifo") {
		pub.MessageGroupId = aws.String(in.AccountID + "/" + in.UserName)
		pub.MessageDeduplicationId = aws.String(out.DeduplicationID)
	}
	res, err := snsc.Publish(ctx, pub)
	if err != nil {
		return nil, awsErr("Publish", err)
	}
	out.MessageID = aws.ToString(res.MessageId)
	out.SentAt = clock(h.Now)
	log.Info("published notification", "messageId", out.MessageID)
	if email != nil {
		// A retry after a failed send publishes to SNS again, with the same
		// deduplicationId attribute, so subscribers can drop the copy.
		sent, err := h.SES.SendEmail(ctx, email)
		if err != nil {
			return nil, awsErr("SendEmail", err)
		}
		out.EmailMessageID = aws.ToString(sent.MessageId)
		log.Info("sent notification email", "emailMessageId", out.EmailMessageID, "recipients", len(out.EmailRecipients))
	}
	return out, nil
}

// email is the templated SES email of the notification, or nil when nobody
// has an address: the owner tag may name a team rather than a mailbox.
func (h *Notify) email(in NotifyInput, out *NotifyOutput, what string) (*sesv2.SendEmailInput, []string) {
	var to []string
	for _, r := range []string{out.Owner, h.SecurityTeam} {
		if a, err := mail.ParseAddress(r); err == nil && a.Address == r {
			to = append(to, r)
		}
	}
	if len(to) == 0 {
		return nil, nil
	}
	data, _ := json.Marshal(NotifyEmailData{
		Subject: out.Subject, Event: in.Event, What: what, AccountID: in.AccountID, UserName: in.UserName,
		AccessKeyID: in.AccessKeyID, NewAccessKeyID: in.NewAccessKeyID, SecretArn: in.SecretArn, Detail: in.Detail,
		Owner: out.Owner, Time: clock(h.Now).Format(time.RFC3339), DeduplicationID: out.DeduplicationID,
	})
	return &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(h.EmailFrom),
		Destination:      &sestypes.Destination{ToAddresses: to},
		Content: &sestypes.EmailContent{Template: &sestypes.Template{
			TemplateName: aws.String(h.EmailTemplate), TemplateData: aws.String(string(data)),
		}},
		EmailTags: []sestypes.MessageTag{{Name: aws.String("event"), Value: aws.String(in.Event)}},
	}, to
}

func (h *Notify) body(in NotifyInput, what, owner string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "IAM user %s in account %s: %s.\n", in.UserName, in.AccountID, what)
	if in.AccessKeyID != "" {
		fmt.Fprintf(&b, "Access key: %s\n", in.AccessKeyID)
	}
	if in.NewAccessKeyID != "" {
		fmt.Fprintf(&b, "New access key: %s\n", in.NewAccessKeyID)
	}
	if in.SecretArn != "" {
		fmt.Fprintf(&b, "The new key is stored in Secrets Manager: %s (readable only by the user).\n", in.SecretArn)
	}
	if in.Detail != "" {
		fmt.Fprintf(&b, "Detail: %s\n", in.Detail)
	}
	if owner != "" {
		fmt.Fprintf(&b, "Owner: %s\n", owner)
	}
	if h.SecurityTeam != "" {
		fmt.Fprintf(&b, "Security team: %s\n", h.SecurityTeam)
	}
	fmt.Fprintf(&b, "Time: %s\n", clock(h.Now).Format(time.RFC3339))
	return b.String()
}

// truncateSubject keeps SNS's 100-character subject limit.
func truncateSubject(s string) string {
	if len(s) > 100 {
		return s[:97] + "..."
	}
	return s
}
