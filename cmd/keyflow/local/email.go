package local

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/keyflow/keyflow/tasks"
)

// DefaultEmailTemplate is the SES template Notify uses when email is on and
// no template is named: the name the stack gives its template.
const DefaultEmailTemplate = "keyflow-notify"

// setUpEmail completes the email options: with a sandbox, SES is the
// sandbox's in the deployment's account, where the sender's domain is made
// a sending identity and the template stored, as the stack and the
// operator do on AWS.
func (b *Backend) setUpEmail() error {
	o := &b.opts
	if o.EmailFrom == "" {
		return nil
	}
	if o.EmailTemplate == "" {
		o.EmailTemplate = DefaultEmailTemplate
	}
	if o.SES != nil || o.Sandbox == nil {
		if o.SES == nil {
			return fmt.Errorf("local: email from %q needs an SES client", o.EmailFrom)
		}
		return nil
	}
	addr, err := mail.ParseAddress(o.EmailFrom)
	if err != nil {
		return fmt.Errorf("local: email sender %q: %w", o.EmailFrom, err)
	}
	ses := o.Sandbox.SESv2(o.AccountID)
	ctx := context.Background()
	_, domain, _ := strings.Cut(addr.Address, "@")
	if _, err := ses.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(domain)}); err != nil && !alreadyExists(err) {
		return fmt.Errorf("local: email identity %q: %w", domain, err)
	}
	t := tasks.NotifyEmailTemplate
	if _, err := ses.CreateEmailTemplate(ctx, &sesv2.CreateEmailTemplateInput{
		TemplateName:    aws.String(o.EmailTemplate),
		TemplateContent: &sestypes.EmailTemplateContent{Subject: aws.String(t.Subject), Text: aws.String(t.Text), Html: aws.String(t.HTML)},
	}); err != nil && !alreadyExists(err) {
		return fmt.Errorf("local: email template %q: %w", o.EmailTemplate, err)
	}
	o.SES = ses
	return nil
}

func alreadyExists(err error) bool {
	var e *sestypes.AlreadyExistsException
	return errors.As(err, &e)
}
