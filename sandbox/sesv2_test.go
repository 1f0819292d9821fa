package sandbox

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func templated(name, data string, to ...string) *sesv2.SendEmailInput {
	return &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("keyflow@example.com"),
		Destination:      &sestypes.Destination{ToAddresses: to},
		Content:          &sestypes.EmailContent{Template: &sestypes.Template{TemplateName: aws.String(name), TemplateData: aws.String(data)}},
	}
}

func TestSESv2(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.SESv2(acct)
	identityCases := []struct {
		identity, code, typ string
	}{
		{"example.com", "", "DOMAIN"},
		{"Security@Example.org", "", "EMAIL_ADDRESS"},
		{"example.com", "AlreadyExistsException", ""},
		{"not a domain", "BadRequestException", ""},
		{"a@b@c", "BadRequestException", ""},
	}
	for _, tc := range identityCases {
		t.Run("CreateEmailIdentity "+tc.identity, func(t *testing.T) {
			out, err := c.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(tc.identity)})
			requireCode(t, err, tc.code)
			if tc.code == "" {
				assert.Equal(t, tc.typ, string(out.IdentityType))
				assert.False(t, out.VerifiedForSendingStatus, "pending, as on AWS")
			}
		})
	}
	content := &sestypes.EmailTemplateContent{
		Subject: aws.String("keyflow: {{event}} for {{user}}"),
		Text:    aws.String("Key {{key.id}} of {{user}}: {{what}}.{{missing}}"),
		Html:    aws.String("<p>{{what}}</p><p>{{{what}}}</p>"),
	}
	createCases := []struct {
		name string
		in   *sesv2.CreateEmailTemplateInput
		code string
	}{
		{"create", &sesv2.CreateEmailTemplateInput{TemplateName: aws.String("keyflow-notify"), TemplateContent: content}, ""},
		{"duplicate", &sesv2.CreateEmailTemplateInput{TemplateName: aws.String("keyflow-notify"), TemplateContent: content}, "AlreadyExistsException"},
		{"bad name", &sesv2.CreateEmailTemplateInput{TemplateName: aws.String("no spaces"), TemplateContent: content}, "BadRequestException"},
		{"no subject", &sesv2.CreateEmailTemplateInput{TemplateName: aws.String("t2"), TemplateContent: &sestypes.EmailTemplateContent{Text: aws.String("x")}}, "BadRequestException"},
	}
	for _, tc := range createCases {
		t.Run("CreateEmailTemplate "+tc.name, func(t *testing.T) {
			_, err := c.CreateEmailTemplate(ctx, tc.in)
			requireCode(t, err, tc.code)
		})
	}
	got, err := c.GetEmailTemplate(ctx, &sesv2.GetEmailTemplateInput{TemplateName: aws.String("keyflow-notify")})
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(content.Text), aws.ToString(got.TemplateContent.Text))
	_, err = c.GetEmailTemplate(ctx, &sesv2.GetEmailTemplateInput{TemplateName: aws.String("nope")})
	requireCode(t, err, "NotFoundException")
	_, err = s.SESv2("222222222222").GetEmailTemplate(ctx, &sesv2.GetEmailTemplateInput{TemplateName: aws.String("keyflow-notify")})
	requireCode(t, err, "NotFoundException") // templates belong to one account

	data := `{"event":"KeyCreated","user":"alice","what":"a <new> key","key":{"id":"AKIAEXAMPLE"}}`
	sendCases := []struct {
		name string
		in   *sesv2.SendEmailInput
		code string
	}{
		{"templated", templated("keyflow-notify", data, "alice@example.com", "security@example.com"), ""},
		{"missing template", templated("nope", data, "alice@example.com"), "NotFoundException"},
		{"template data not JSON", templated("keyflow-notify", "{", "alice@example.com"), "BadRequestException"},
		{"template data not an object", templated("keyflow-notify", "[1]", "alice@example.com"), "BadRequestException"},
		{"no template data", templated("keyflow-notify", "", "alice@example.com"), "BadRequestException"},
		{"no recipient", templated("keyflow-notify", data), "BadRequestException"},
		{"bad recipient", templated("keyflow-notify", data, "not an address"), "BadRequestException"},
		{"too many recipients", templated("keyflow-notify", data, strings.Split(strings.Repeat("x@example.com,", 51), ",")[:51]...), "MessageRejected"},
		{"no sender", &sesv2.SendEmailInput{Destination: &sestypes.Destination{ToAddresses: []string{"a@example.com"}},
			Content: &sestypes.EmailContent{Template: &sestypes.Template{TemplateName: aws.String("keyflow-notify"), TemplateData: aws.String(data)}}}, "BadRequestException"},
		{"unverified sender", &sesv2.SendEmailInput{FromEmailAddress: aws.String("keyflow@example.net"), Destination: &sestypes.Destination{ToAddresses: []string{"a@example.com"}},
			Content: &sestypes.EmailContent{Template: &sestypes.Template{TemplateName: aws.String("keyflow-notify"), TemplateData: aws.String(data)}}}, "MessageRejected"},
		{"a verified address of another domain", &sesv2.SendEmailInput{FromEmailAddress: aws.String("keyflow <security@example.org>"), Destination: &sestypes.Destination{ToAddresses: []string{"a@example.com"}},
			Content: &sestypes.EmailContent{Template: &sestypes.Template{TemplateName: aws.String("keyflow-notify"), TemplateData: aws.String(data)}}}, ""},
		{"no content kind", &sesv2.SendEmailInput{FromEmailAddress: aws.String("keyflow@example.com"),
			Destination: &sestypes.Destination{ToAddresses: []string{"a@example.com"}}, Content: &sestypes.EmailContent{}}, "BadRequestException"},
		{"simple", &sesv2.SendEmailInput{FromEmailAddress: aws.String("keyflow@example.com"),
			Destination: &sestypes.Destination{ToAddresses: []string{"a@example.com"}},
			Content: &sestypes.EmailContent{Simple: &sestypes.Message{Subject: &sestypes.Content{Data: aws.String("hi")},
				Body: &sestypes.Body{Text: &sestypes.Content{Data: aws.String("body")}}}}}, ""},
	}
	for _, tc := range sendCases {
		t.Run("SendEmail "+tc.name, func(t *testing.T) {
			out, err := c.SendEmail(ctx, tc.in)
			requireCode(t, err, tc.code)
			if tc.code == "" {
				assert.NotEmpty(t, aws.ToString(out.MessageId))
			}
		})
	}
	mail := s.Mail()
	require.Len(t, mail, 3, "refused sends leave nothing in the outbox")
	m := mail[0]
	assert.Equal(t, []string{"alice@example.com", "security@example.com"}, m.To)
	assert.Equal(t, "keyflow: KeyCreated for alice", m.Subject)
	assert.Equal(t, "Key AKIAEXAMPLE of alice: a <new> key.", m.Text, "a missing variable renders empty")
	assert.Equal(t, "<p>a &lt;new&gt; key</p><p>a <new> key</p>", m.HTML, "{{x}} is escaped in HTML, {{{x}}} is not")
	assert.Equal(t, "keyflow-notify", m.Template)
	assert.Equal(t, data, m.TemplateData)
	assert.Equal(t, "keyflow <security@example.org>", mail[1].From)
	assert.Equal(t, "body", mail[2].Text)
	mail[0].To[0] = "changed"
	assert.Equal(t, "alice@example.com", s.Mail()[0].To[0], "Mail returns a copy")
}

func TestSESv2Persists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyflow.db")
	clk := &fakeClock{t: t0}
	s, err := New(Options{Now: clk.Now, DB: openDB(t, path)})
	require.NoError(t, err)
	c := s.SESv2(acct)
	_, err = c.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String("example.com")})
	require.NoError(t, err)
	_, err = c.CreateEmailTemplate(ctx, &sesv2.CreateEmailTemplateInput{TemplateName: aws.String("t"),
		TemplateContent: &sestypes.EmailTemplateContent{Subject: aws.String("s {{a}}"), Text: aws.String("b {{a}}")}})
	require.NoError(t, err)
	for _, v := range []string{"1", "2"} {
		_, err = c.SendEmail(ctx, templated("t", `{"a":"`+v+`"}`, "x@example.com"))
		require.NoError(t, err)
	}
	s2, err := New(Options{Now: clk.Now, DB: openDB(t, path)})
	require.NoError(t, err)
	assert.Equal(t, s.Mail(), s2.Mail())
	_, err = s2.SESv2(acct).SendEmail(ctx, templated("t", `{"a":"3"}`, "x@example.com"))
	require.NoError(t, err, "the template survived the restart")
	s3, err := New(Options{Now: clk.Now, DB: openDB(t, path)})
	require.NoError(t, err)
	var subjects []string
	for _, m := range s3.Mail() {
		subjects = append(subjects, m.Subject)
	}
	assert.Equal(t, []string{"s 1", "s 2", "s 3"}, subjects)
}
