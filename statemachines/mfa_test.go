package statemachines

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/states"
)

// TestMFAExecutionName: the hygiene machine's intrinsics name executions
// exactly as MFAExecutionName does, within AWS's rules, and an enforcement's
// name does not change from one inventory run to the next.
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
	for i, at := range []string{"2026-01-01T09:00:00Z", "2026-01-02T09:00:00Z"} {
		in := map[string]any{"accountId": "210987654321", "userName": "ops,admin@example.com", "checkedAt": at}
		res := m.Run(context.Background(), fmt.Sprint("x", i), in)
		if res.Status != engine.StatusSucceeded {
			t.Fatalf("%s %s: %s", res.Status, res.Error, res.Cause)
		}
		out := res.Output.(map[string]any)
		for _, action := range []string{"enforce", "release"} {
			want := MFAExecutionName(action, "210987654321", "ops,admin@example.com", at)
			if out[action] != want {
				t.Errorf("%s: intrinsic gives %q, Go gives %q", action, out[action], want)
			}
			if len(want) > 80 || bytes.ContainsAny([]byte(want), ",/ ") {
				t.Errorf("%q is not a valid execution name", want)
			}
		}
	}
	if MFAExecutionName("enforce", "1", "u", "a") != MFAExecutionName("enforce", "1", "u", "b") {
		t.Error("an enforcement's name depends on the inventory's time: a daily run would start a second one")
	}
}

func TestMFAGracePeriodRefused(t *testing.T) {
	for _, d := range []time.Duration{time.Hour, 36 * time.Hour} {
		if _, err := MFA(Options{MFAGracePeriod: d}); err == nil {
			t.Errorf("grace period %s accepted", d)
		}
	}
}
