package statemachines

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/states"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGolden keeps each definition, as the template carries it
// (DefinitionSubstitutions placeholders), in testdata/<name>.asl.json.
func TestGolden(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			def, err := Build(name, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(def, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".asl.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the definition; run go test ./statemachines -update and review the diff", path)
			}
			// The golden file decodes and validates as AWS would read it.
			back, err := states.Parse(want)
			if err != nil {
				t.Fatalf("golden file does not parse: %v", err)
			}
			if err := states.Validate(back); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCompile compiles every workflow, with every option that changes its
// shape, on the engine with a handler behind every function: nothing is left
// unserved or unsupported locally.
func TestCompile(t *testing.T) {
	res := Local("us-east-1", "123456789012")
	stub := engine.HandlerFunc(func(context.Context, []byte) ([]byte, error) { return []byte(`{}`), nil })
	handlers := map[string]engine.Handler{}
	for _, fn := range []string{FunctionNames.Inventory, FunctionNames.CreateKey, FunctionNames.DeactivateKey,
		FunctionNames.DeleteKey, FunctionNames.Notify, FunctionNames.Quarantine, FunctionNames.Release,
		FunctionNames.Hygiene, FunctionNames.CheckMFA, FunctionNames.EnforceMFA, FunctionNames.SetPasswordPolicy} {
		handlers[fn] = stub
	}
	e := engine.New(engine.Options{Handlers: handlers, OnTaskToken: func(string, any) {}})
	for _, o := range []Options{
		{Resources: res},
		{Resources: res, ForceDeactivate: true, DryRun: true, KeepKeysActive: true, DefaultDecision: Approve},
	} {
		for _, name := range Names() {
			def, err := Build(name, o)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := states.Validate(def); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if _, err := e.Compile(def, StateMachineName(name)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// TestLifecycleExecutionName checks that the inventory's intrinsic names an
// execution exactly as LifecycleExecutionName does, and that the name obeys
// AWS's rules (at most 80 characters; no comma even when the user name has
// one).
func TestLifecycleExecutionName(t *testing.T) {
	def, err := states.NewMachine("").StartAt("Name").
		Pass("Name").Parameters(map[string]any{"name.$": lifecycleNameExpr}).End().
		Build()
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.New(engine.Options{}).Compile(def, "name")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"accountId": "210987654321", "userName": "build,bot@example.com+ci=1", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"}
	res := m.Run(context.Background(), "x", in)
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("%s %s: %s", res.Status, res.Error, res.Cause)
	}
	got := res.Output.(map[string]any)["name"]
	want := LifecycleExecutionName("210987654321", "build,bot@example.com+ci=1", "AKIAIOSFODNN7EXAMPLE")
	if got != want {
		t.Fatalf("intrinsic gives %q, Go gives %q", got, want)
	}
	if len(want) > 80 || bytes.ContainsAny([]byte(want), ",/ ") {
		t.Fatalf("%q is not a valid execution name", want)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{
		{RotationDays: 70},
		{BufferDays: -1},
		{DefaultDecision: "maybe"},
		{ApprovalTimeout: 60e9, ApprovalHeartbeat: 120e9},
	} {
		if _, err := Lifecycle(o); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
}
