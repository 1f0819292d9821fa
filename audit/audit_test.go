package audit_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyflow/keyflow/audit"
)

var update = flag.Bool("update", false, "rewrite the golden files and history fixtures under testdata/")

type scenario struct {
	name  string
	world world
	// quarantine runs the quarantine states, otherwise the lifecycle's.
	quarantine bool
	order      []string
	extra      []string
	policy     audit.Policy
	want       []string // breach codes, sorted, one per breach
}

var (
	fullLifecycle  = []string{"CreateKey", "NotifyKeyCreated", "WaitUntilInactivePoint", "DeactivateKey", "WaitUntilBufferPoint", "DeleteKey"}
	fullQuarantine = []string{"Subject", "GatherEvidence", "AskApproval", "QuarantineUser"}
)

var scenarios = []scenario{
	{name: "lifecycle-clean", order: fullLifecycle},
	{name: "lifecycle-key-already-inactive", world: world{deactivated: "AlreadyInactive", lastUsedAfter: -time.Hour}, order: fullLifecycle},
	{name: "lifecycle-unused-key", world: world{lastUsedAfter: -24 * time.Hour}, order: fullLifecycle,
		policy: audit.Policy{MinInactive: 30 * 24 * time.Hour}},
	{name: "lifecycle-delete-before-buffer", world: world{lastUsedAfter: -time.Hour},
		order: []string{"CreateKey", "NotifyKeyCreated", "WaitUntilInactivePoint", "DeactivateKey", "DeleteKey"},
		want:  []string{audit.CodeDeleteBeforeBuffer}},
	{name: "lifecycle-delete-reports-early", world: world{lastUsedAfter: -time.Hour, deleteEarly: true}, order: fullLifecycle,
		want: []string{audit.CodeDeleteBeforeBuffer}},
	{name: "lifecycle-delete-before-deactivate", world: world{lastUsedAfter: -time.Hour},
		order: []string{"CreateKey", "NotifyKeyCreated", "WaitUntilInactivePoint", "WaitUntilBufferPoint", "DeleteKey"},
		want:  []string{audit.CodeDeleteBeforeDeactivate}},
	{name: "lifecycle-min-inactive", world: world{lastUsedAfter: -time.Hour}, order: fullLifecycle,
		policy: audit.Policy{MinInactive: 31 * 24 * time.Hour},
		want:   []string{audit.CodeDeleteBeforeBuffer}},
	{name: "lifecycle-deactivate-in-use", world: world{lastUsedAfter: 3 * 24 * time.Hour}, order: fullLifecycle,
		want: []string{audit.CodeDeactivateInUse}},
	{name: "lifecycle-in-use-left-active", world: world{lastUsedAfter: time.Hour, deactivated: "KeyStillInUse"},
		order: []string{"CreateKey", "NotifyKeyCreated", "WaitUntilInactivePoint", "DeactivateKey"}},
	{name: "lifecycle-secret-in-output", world: world{lastUsedAfter: -time.Hour, notifySecret: true}, order: fullLifecycle,
		want: []string{audit.CodeSecretInHistory}},
	{name: "lifecycle-third-key", world: world{createErr: KeyLimitExceeded{}}, order: fullLifecycle,
		want: []string{audit.CodeThirdKey}},
	{name: "quarantine-approved", world: world{approve: "approve"}, quarantine: true, order: fullQuarantine},
	{name: "quarantine-timeout-policy", quarantine: true, order: fullQuarantine},
	{name: "quarantine-without-approval", quarantine: true,
		order: []string{"Subject", "GatherEvidence", "QuarantineUser"},
		want:  []string{audit.CodeQuarantineWithoutApproval}},
	{name: "quarantine-rejected-yet-applied", world: world{approve: "reject"}, quarantine: true, order: fullQuarantine,
		want: []string{audit.CodeQuarantineWithoutApproval}},
	{name: "quarantine-admin", world: world{approve: "approve", groups: []string{"admins", "developers"}}, quarantine: true,
		order: fullQuarantine, want: []string{audit.CodeAdminQuarantined}},
}

func (s *scenario) history(t testing.TB) audit.History {
	t.Helper()
	var arn string
	if s.quarantine {
		d := definition(t, quarantineStates(), s.order, s.extra...)
		arn, _ = s.world.run(t, d, "quarantine-"+s.name, cloudTrailInput())
	} else {
		d := definition(t, lifecycleStates(), s.order, s.extra...)
		arn, _ = s.world.run(t, d, "lifecycle-"+s.name, lifecycleInput())
	}
	return audit.History{ExecutionArn: arn, Policy: s.policy}
}

// TestBuild runs each scenario on the engine, writes its history as
// GetExecutionHistory JSON (a fixture, refreshed with -update), builds the
// record from that file, and compares it with the golden record. The
// fixture, not the live run, is the input, so the wire format is what is
// tested and the fixtures stay readable evidence of each case.
func TestBuild(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			var arn string
			var live audit.History
			if s.quarantine {
				d := definition(t, quarantineStates(), s.order, s.extra...)
				arn, live.Events = s.world.run(t, d, "quarantine-"+s.name, cloudTrailInput())
			} else {
				d := definition(t, lifecycleStates(), s.order, s.extra...)
				arn, live.Events = s.world.run(t, d, "lifecycle-"+s.name, lifecycleInput())
			}
			live.ExecutionArn, live.Policy = arn, s.policy
			fixture := filepath.Join("testdata", "histories", s.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(fixture), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(fixture, wire(t, live.Events), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.Open(fixture)
			if err != nil {
				t.Fatalf("%v (go test ./audit -update writes it)", err)
			}
			events, err := audit.DecodeHistory(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			rec, err := audit.Build(audit.History{ExecutionArn: arn, Events: events, Policy: s.policy})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(rec, "", "  ")
			golden(t, filepath.Join("records", s.name+".json"), append(got, '\n'))

			var codes []string
			for _, b := range rec.Breaches {
				codes = append(codes, b.Code)
				if len(b.Events) == 0 {
					t.Errorf("breach %s names no event", b.Code)
				}
			}
			if !slices.Equal(codes, s.want) {
				t.Errorf("breaches %q, want %q:\n%s", codes, s.want, got)
			}
			if audit.LooksLikeSecret(string(got)) || strings.Contains(string(got), exampleSecret) {
				t.Errorf("the record holds a secret:\n%s", got)
			}

			// The live events and their wire form make the same record:
			// the audit reads one history type, local or from AWS.
			fromLive, err := audit.Build(live)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(fromLive)
			b, _ := json.Marshal(rec)
			if !bytes.Equal(a, b) {
				t.Errorf("record of the live history differs from the record of its wire form:\n%s\n%s", a, b)
			}
		})
	}
}

func TestBuildEmpty(t *testing.T) {
	if _, err := audit.Build(audit.History{ExecutionArn: "arn:aws:states:us-east-1:1:execution:m:x"}); err == nil ||
		!strings.HasPrefix(err.Error(), "audit: ") {
		t.Fatalf("err = %v, want an audit: error", err)
	}
}

// TestWorkflowFromArn: the workflow is named from the ARN when the caller
// does not say.
func TestWorkflowFromArn(t *testing.T) {
	s := scenarios[0]
	h := s.history(t)
	h.Events = nil
	_, events := s.world.run(t, definition(t, lifecycleStates(), s.order), "lifecycle-x", lifecycleInput())
	h.Events = events
	rec, err := audit.Build(h)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Workflow != "lifecycle" {
		t.Errorf("workflow %q, want lifecycle", rec.Workflow)
	}
	h.Workflow = "custom"
	if rec, _ = audit.Build(h); rec.Workflow != "custom" {
		t.Errorf("workflow %q, want the caller's custom", rec.Workflow)
	}
}
