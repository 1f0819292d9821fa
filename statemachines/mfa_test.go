package statemachines

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/tasks"
)

// TestMFAExecutionName: the hygiene machine's intrinsics name executions
// exactly as MFAExecutionName does, within AWS's rules; an enforcement's
// name is the same all day (two runs on one day start one) and changes
// from one day to the next (a user who loses MFA again after an
// enforcement ended can be enforced again); every enforcement of a user
// starts with the prefix the hygiene handler and the report look for.
func TestMFAExecutionName(t *testing.T) {
	def, err := states.NewMachine("").StartAt("Name").
		Pass("Name").Parameters(map[string]any{"enforce.$": mfaEnforceNameExpr, "release.$": mfaReleaseNameExpr}).End().
		Build()
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.New(engine.Options{}).Compile(def, "name")
	if err != nil {
		t.Fatal(err)
	}
	const acct, user = "210987654321", "ops,admin@example.com"
	for i, at := range []string{"2026-01-01T00:00:00Z", "2026-01-01T23:59:59.999Z", "2026-01-02T09:00:00Z"} {
		in := map[string]any{"accountId": acct, "userName": user, "checkedAt": at}
		res := m.Run(context.Background(), fmt.Sprint("x", i), in)
		if res.Status != engine.StatusSucceeded {
			t.Fatalf("%s %s: %s", res.Status, res.Error, res.Cause)
		}
		out := res.Output.(map[string]any)
		for _, action := range []string{"enforce", "release"} {
			want := MFAExecutionName(action, acct, user, at)
			if out[action] != want {
				t.Errorf("%s: intrinsic gives %q, Go gives %q", action, out[action], want)
			}
			if err := engine.CheckName(want); err != nil || len(want) > 80 {
				t.Errorf("%q is not a valid execution name: %v", want, err)
			}
		}
		if n := MFAExecutionName("enforce", acct, user, at); !strings.HasPrefix(n, MFAEnforcementPrefix(acct, user)+"-") {
			t.Errorf("%q does not start with the user's prefix", n)
		}
	}
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"2026-01-01T00:00:00Z", "2026-01-01T23:59:59Z", true},
		{"2026-01-01T23:59:59Z", "2026-01-02T00:00:00Z", false},
		{"2026-01-01T09:00:00Z", "2026-04-01T09:00:00Z", false},
	} {
		if got := MFAExecutionName("enforce", "1", "u", c.a) == MFAExecutionName("enforce", "1", "u", c.b); got != c.same {
			t.Errorf("enforcements at %s and %s: same name %t, want %t", c.a, c.b, got, c.same)
		}
	}
	// tasks.Hygiene finds running enforcements by the same prefix; it
	// cannot import this package, so it has its own copy.
	if got, want := tasks.MFAEnforcementPrefix(acct, user), MFAEnforcementPrefix(acct, user); got != want {
		t.Errorf("tasks names enforcements %q, statemachines %q", got, want)
	}
}

func TestMFAGracePeriodRefused(t *testing.T) {
	for _, d := range []time.Duration{time.Hour, 36 * time.Hour} {
		if _, err := MFA(Options{MFAGracePeriod: d}); err == nil {
			t.Errorf("grace period %s accepted", d)
		}
	}
}
