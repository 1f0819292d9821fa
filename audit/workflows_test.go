package audit_test

import (
	"slices"
	"testing"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/statemachines"
)

// TestRealWorkflows audits runs of keyflow's own workflows (with stub
// handlers): a healthy rotation and an approved quarantine are clean, and
// the record names every handler call, approval and wait. No golden file:
// the workflows belong to statemachines and change there; this test only
// holds the audit to them.
func TestRealWorkflows(t *testing.T) {
	o := statemachines.Options{Resources: statemachines.Local("us-east-1", "123456789012")}
	cases := []struct {
		workflow  string
		input     map[string]any
		world     world
		handlers  []string
		approvals int
		waits     []string
	}{
		{statemachines.NameLifecycle, lifecycleInput(), world{},
			[]string{"create-key", "notify", "deactivate-key", "notify", "delete-key", "notify"}, 0,
			[]string{"WaitUntilInactivePoint", "WaitUntilBufferPoint"}},
		{statemachines.NameQuarantine, cloudTrailInput(), world{approve: "approve"},
			[]string{"quarantine", "quarantine", "notify"}, 1, []string{"AskApproval"}},
	}
	for _, c := range cases {
		t.Run(c.workflow, func(t *testing.T) {
			def, err := statemachines.Build(c.workflow, o)
			if err != nil {
				t.Fatal(err)
			}
			arn, events := c.world.run(t, def, c.workflow+"-real", c.input)
			rec, err := audit.Build(audit.History{ExecutionArn: arn, Events: events})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := jsonOf(rec)
			if rec.Status != "SUCCEEDED" || len(rec.Breaches) != 0 {
				t.Fatalf("status %s, breaches %+v:\n%s", rec.Status, rec.Breaches, b)
			}
			var handlers, waits []string
			for _, a := range rec.Actions {
				handlers = append(handlers, a.Handler)
			}
			for _, w := range rec.Waits {
				waits = append(waits, w.State)
			}
			if !slices.Equal(handlers, c.handlers) || !slices.Equal(waits, c.waits) || len(rec.Approvals) != c.approvals {
				t.Errorf("handlers %q waits %q approvals %d, want %q %q %d:\n%s", handlers, waits, len(rec.Approvals),
					c.handlers, c.waits, c.approvals, b)
			}
			if rec.Subject.Account != account || rec.Subject.User != user {
				t.Errorf("subject %+v", rec.Subject)
			}
			for _, a := range rec.Approvals {
				if a.Approver != approverArn || a.Decision != "approve" || a.Reason == "" {
					t.Errorf("approval %+v", a)
				}
			}
		})
	}
}
