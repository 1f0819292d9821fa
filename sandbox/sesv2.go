package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
)

// SESv2 is one account's Amazon SES (API v2), with the methods of
// *sesv2.Client that notify calls: identities, email templates and
// SendEmail, simple or templated. Nothing is delivered: every message sent
// lands, rendered, in the sandbox's email outbox (Mail). As on AWS the
// sender must be a verified identity (its address or its domain); unlike
// AWS, CreateEmailIdentity verifies at once (no link to click, no DNS), and
// the account is out of the SES sending sandbox, so recipients need no
// verification.
type SESv2 struct {
	s       *Sandbox
	account string
}

// SESv2 returns the SES v2 client of the account.
func (s *Sandbox) SESv2(accountID string) *SESv2 { return &SESv2{s: s, account: accountID} }

// Email is one message sent through SES, kept in the email outbox as the
// recipients would read it.
type Email struct {
	Account   string
	MessageID string
	From      string
	To        []string `json:",omitempty"`
	Cc        []string `json:",omitempty"`
	Bcc       []string `json:",omitempty"`
	Subject   string
	Text      string `json:",omitempty"`
	HTML      string `json:",omitempty"`
	// Template and TemplateData are what a templated send named.
	Template     string `json:",omitempty"`
	TemplateData string `json:",omitempty"`
	Time         time.Time
}

type emailIdentity struct {
	Name    string
	Type    string // EMAIL_ADDRESS or DOMAIN
	Created time.Time
}

type emailTemplate struct {
	Name    string
	Subject string `json:",omitempty"`
	Text    string `json:",omitempty"`
	HTML    string `json:",omitempty"`
	Created time.Time
}

// mailRow is an outbox entry as stored: its place in the outbox and the
// message.
type mailRow struct {
	Seq int
	Email
}

// SES limits the sandbox enforces (Amazon SES quotas and API reference).
const (
	maxRecipients   = 50
	maxTemplateData = 256 * 1024
	maxTemplateSize = 500 * 1024
)

var templateName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func sesBadRequest(format string, args ...any) error {
	return &sestypes.BadRequestException{Message: msg(fmt.Sprintf(format, args...))}
}

var domainName = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$`)

// CreateEmailIdentity adds an email address or a domain as a sending
// identity. Its answer says VerifiedForSendingStatus false, as AWS's does
// while the verification is pending; the sandbox, like moto, then lets it
// send at once, since nobody is there to click the link or add the DNS
// records.
func (c *SESv2) CreateEmailIdentity(ctx context.Context, in *sesv2.CreateEmailIdentityInput, _ ...func(*sesv2.Options)) (*sesv2.CreateEmailIdentityOutput, error) {
	in = orEmpty(in)
	var out *sesv2.CreateEmailIdentityOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreateEmailIdentityInput", param{"EmailIdentity", in.EmailIdentity != nil}); err != nil {
			return err
		}
		name := strings.ToLower(*in.EmailIdentity)
		typ := sestypes.IdentityTypeDomain
		if strings.Contains(name, "@") {
			if a, err := mail.ParseAddress(name); err != nil || a.Address != name {
				return sesBadRequest("Invalid email address %q", truncate(name))
			}
			typ = sestypes.IdentityTypeEmailAddress
		} else if !domainName.MatchString(name) {
			return sesBadRequest("Invalid domain name %q", truncate(name))
		}
		a := c.s.acct(c.account)
		if a.identities[name] != nil {
			return &sestypes.AlreadyExistsException{Message: msg(fmt.Sprintf("Email identity %s already exist.", name))}
		}
		a.identities[name] = &emailIdentity{Name: name, Type: string(typ), Created: c.s.clock()}
		c.s.touch(c.account, kindIdentity, name)
		out = &sesv2.CreateEmailIdentityOutput{IdentityType: typ, VerifiedForSendingStatus: false}
		return nil
	})
	return out, fail("SESv2", "CreateEmailIdentity", err)
}

// verified is whether the address, or its domain, is a sending identity of
// the account.
func (a *account) verified(address string) bool {
	address = strings.ToLower(address)
	if a.identities[address] != nil {
		return true
	}
	_, domain, ok := strings.Cut(address, "@")
	return ok && a.identities[domain] != nil
}

// CreateEmailTemplate stores a template: a subject and a text and/or HTML
// part with {{name}} placeholders.
func (c *SESv2) CreateEmailTemplate(ctx context.Context, in *sesv2.CreateEmailTemplateInput, _ ...func(*sesv2.Options)) (*sesv2.CreateEmailTemplateOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("CreateEmailTemplateInput", param{"TemplateName", in.TemplateName != nil}, param{"TemplateContent", in.TemplateContent != nil}); err != nil {
			return err
		}
		name := *in.TemplateName
		if !templateName.MatchString(name) {
			return sesBadRequest("Invalid template name: %q", truncate(name))
		}
		tc := in.TemplateContent
		t := &emailTemplate{Name: name, Subject: aws.ToString(tc.Subject), Text: aws.ToString(tc.Text), HTML: aws.ToString(tc.Html), Created: c.s.clock()}
		if t.Subject == "" || (t.Text == "" && t.HTML == "") {
			return sesBadRequest("Template must have a subject and a text or HTML part")
		}
		if len(t.Subject)+len(t.Text)+len(t.HTML) > maxTemplateSize {
			return sesBadRequest("Template is larger than %d bytes", maxTemplateSize)
		}
		a := c.s.acct(c.account)
		if a.templates[name] != nil {
			return &sestypes.AlreadyExistsException{Message: msg(fmt.Sprintf("Template %s already exists", name))}
		}
		a.templates[name] = t
		c.s.touch(c.account, kindTemplate, name)
		return nil
	})
	if err != nil {
		return nil, fail("SESv2", "CreateEmailTemplate", err)
	}
	return &sesv2.CreateEmailTemplateOutput{}, nil
}

// GetEmailTemplate returns a template; a missing one is NotFoundException.
func (c *SESv2) GetEmailTemplate(ctx context.Context, in *sesv2.GetEmailTemplateInput, _ ...func(*sesv2.Options)) (*sesv2.GetEmailTemplateOutput, error) {
	in = orEmpty(in)
	var out *sesv2.GetEmailTemplateOutput
	err := c.s.read(ctx, func() error {
		if err := required("GetEmailTemplateInput", param{"TemplateName", in.TemplateName != nil}); err != nil {
			return err
		}
		t := c.s.peek(c.account).templates[*in.TemplateName]
		if t == nil {
			return &sestypes.NotFoundException{Message: msg(fmt.Sprintf("Template %s does not exist.", truncate(*in.TemplateName)))}
		}
		out = &sesv2.GetEmailTemplateOutput{TemplateName: aws.String(t.Name), TemplateContent: &sestypes.EmailTemplateContent{Subject: aws.String(t.Subject)}}
		if t.Text != "" {
			out.TemplateContent.Text = aws.String(t.Text)
		}
		if t.HTML != "" {
			out.TemplateContent.Html = aws.String(t.HTML)
		}
		return nil
	})
	return out, fail("SESv2", "GetEmailTemplate", err)
}

// SendEmail renders the message (a stored template with its TemplateData,
// or simple content) and puts it in the email outbox. Raw messages are not
// supported.
func (c *SESv2) SendEmail(ctx context.Context, in *sesv2.SendEmailInput, _ ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	in = orEmpty(in)
	var out *sesv2.SendEmailOutput
	err := c.s.write(ctx, func() error {
		if err := required("SendEmailInput", param{"Content", in.Content != nil}); err != nil {
			return err
		}
		from := aws.ToString(in.FromEmailAddress)
		if from == "" {
			return sesBadRequest("Missing required field FromEmailAddress")
		}
		sender, err := mail.ParseAddress(from)
		if err != nil {
			return sesBadRequest("Illegal address: %q", truncate(from))
		}
		if !c.s.peek(c.account).verified(sender.Address) {
			return &sestypes.MessageRejected{Message: msg(fmt.Sprintf("Email address is not verified. The following identities failed the check in region %s: %s",
				strings.ToUpper(c.s.region), truncate(from)))}
		}
		m := Email{Account: c.account, From: from, Time: c.s.now().UTC()}
		if d := in.Destination; d != nil {
			m.To, m.Cc, m.Bcc = append([]string(nil), d.ToAddresses...), append([]string(nil), d.CcAddresses...), append([]string(nil), d.BccAddresses...)
		}
		n := len(m.To) + len(m.Cc) + len(m.Bcc)
		if n == 0 {
			return sesBadRequest("Destination must name at least one recipient")
		}
		if n > maxRecipients {
			return &sestypes.MessageRejected{Message: msg(fmt.Sprintf("Recipient count exceeds %d.", maxRecipients))}
		}
		for _, list := range [][]string{m.To, m.Cc, m.Bcc} {
			for _, addr := range list {
				if _, err := mail.ParseAddress(addr); err != nil {
					return sesBadRequest("Illegal address: %q", truncate(addr))
				}
			}
		}
		switch ct := in.Content; {
		case ct.Template != nil:
			if err := c.render(&m, ct.Template); err != nil {
				return err
			}
		case ct.Simple != nil:
			if ct.Simple.Subject == nil || ct.Simple.Body == nil {
				return sesBadRequest("Simple content needs a subject and a body")
			}
			m.Subject = aws.ToString(ct.Simple.Subject.Data)
			if ct.Simple.Body.Text != nil {
				m.Text = aws.ToString(ct.Simple.Body.Text.Data)
			}
			if ct.Simple.Body.Html != nil {
				m.HTML = aws.ToString(ct.Simple.Body.Html.Data)
			}
		case ct.Raw != nil:
			return sesBadRequest("the sandbox does not send raw messages")
		default:
			return sesBadRequest("Content must have one of Simple, Raw or Template")
		}
		m.MessageID = fmt.Sprintf("%s-%s-000000", c.s.ids.pick(16, hexChars), c.s.uuid())
		c.s.mail = append(c.s.mail, m)
		c.s.touch(c.account, kindMail, mailSeq(len(c.s.mail)-1))
		out = &sesv2.SendEmailOutput{MessageId: aws.String(m.MessageID)}
		return nil
	})
	return out, fail("SESv2", "SendEmail", err)
}

// render fills m from a stored template (by name) or inline template
// content, with the variables of TemplateData, a JSON object.
func (c *SESv2) render(m *Email, t *sestypes.Template) error {
	var tpl emailTemplate
	switch {
	case t.TemplateName != nil:
		stored := c.s.peek(c.account).templates[*t.TemplateName]
		if stored == nil {
			return &sestypes.NotFoundException{Message: msg(fmt.Sprintf("Template %s does not exist.", truncate(*t.TemplateName)))}
		}
		tpl = *stored
	case t.TemplateContent != nil:
		tpl = emailTemplate{Subject: aws.ToString(t.TemplateContent.Subject), Text: aws.ToString(t.TemplateContent.Text), HTML: aws.ToString(t.TemplateContent.Html)}
	case t.TemplateArn != nil:
		return sesBadRequest("the sandbox names templates by TemplateName, not TemplateArn")
	default:
		return sesBadRequest("Template must have a TemplateName or TemplateContent")
	}
	data := aws.ToString(t.TemplateData)
	if data == "" {
		return sesBadRequest("Missing required field TemplateData")
	}
	if len(data) > maxTemplateData {
		return sesBadRequest("TemplateData is larger than %d bytes", maxTemplateData)
	}
	var vars map[string]any
	if err := json.Unmarshal([]byte(data), &vars); err != nil || vars == nil {
		return sesBadRequest("TemplateData is not a JSON object")
	}
	m.Template, m.TemplateData = tpl.Name, data
	m.Subject, m.Text, m.HTML = renderTemplate(tpl.Subject, vars, false), renderTemplate(tpl.Text, vars, false), renderTemplate(tpl.HTML, vars, true)
	return nil
}

// placeholder is a Handlebars variable: {{name}}, {{a.b}} or, unescaped,
// {{{name}}}. Sections and helpers are not supported and stay as written.
var placeholder = regexp.MustCompile(`\{\{\{?\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}?\}\}`)

// renderTemplate substitutes placeholders as SES does: a missing variable
// renders empty; in HTML, {{x}} is escaped and {{{x}}} is not.
func renderTemplate(s string, vars map[string]any, html bool) string {
	return placeholder.ReplaceAllStringFunc(s, func(p string) string {
		name := placeholder.FindStringSubmatch(p)[1]
		var v any = vars
		for _, part := range strings.Split(name, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				return ""
			}
			v = obj[part]
		}
		var out string
		switch x := v.(type) {
		case nil:
			return ""
		case string:
			out = x
		default:
			b, _ := json.Marshal(x)
			out = string(b)
		}
		if html && !strings.HasPrefix(p, "{{{") {
			out = htmlEscaper.Replace(out)
		}
		return out
	})
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;", "`", "&#x60;", "=", "&#x3D;")

func mailSeq(i int) string { return fmt.Sprintf("%010d", i) }

// Mail returns every email sent so far, oldest first.
func (s *Sandbox) Mail() []Email {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Email, len(s.mail))
	for i, m := range s.mail {
		m.To, m.Cc, m.Bcc = append([]string(nil), m.To...), append([]string(nil), m.Cc...), append([]string(nil), m.Bcc...)
		out[i] = m
	}
	return out
}
