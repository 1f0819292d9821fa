package cfn

import (
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/ses"
)

// NotifyEmailTemplateName is the SES template the stack creates (when
// EmailSender is set) and notify sends with (KEYFLOW_EMAIL_TEMPLATE).
const NotifyEmailTemplateName = "keyflow-notify"

// notifyEmail is tasks.NotifyEmailTemplate, copied because cfn must not
// import tasks; TestEmailTemplateMatchesNotify keeps the two equal.
var notifyEmail = struct{ Subject, Text, HTML string }{
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

// emailTemplate adds notify's SES template, only when email is on.
func emailTemplate(t *cloudformation.Template) {
	t.Resources["NotifyEmailTemplate"] = &ses.Template{
		Template: &ses.Template_Template{
			TemplateName: cloudformation.String(NotifyEmailTemplateName),
			SubjectPart:  notifyEmail.Subject,
			TextPart:     cloudformation.String(notifyEmail.Text),
			HtmlPart:     cloudformation.String(notifyEmail.HTML),
		},
		AWSCloudFormationCondition: condSESEmail,
	}
}
