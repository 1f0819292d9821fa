package cfn

import (
	"testing"

	"github.com/keyflow/keyflow/tasks"
)

// The stack's template is the one Notify's TemplateData fills.
func TestEmailTemplateMatchesNotify(t *testing.T) {
	if notifyEmail != tasks.NotifyEmailTemplate {
		t.Errorf("cfn's SES template differs from tasks.NotifyEmailTemplate:\n%+v\n%+v", notifyEmail, tasks.NotifyEmailTemplate)
	}
}
