package cfn

import (
	"testing"

	"github.com/keyflow/keyflow/policy"
	"github.com/keyflow/keyflow/tasks"
)

// The handlers find the MFA policy by the name the template gives it.
func TestMFAPolicyNameAgrees(t *testing.T) {
	if tasks.DefaultMFAPolicyName != policy.MFARequiredName {
		t.Errorf("tasks says %q, policy says %q", tasks.DefaultMFAPolicyName, policy.MFARequiredName)
	}
}
