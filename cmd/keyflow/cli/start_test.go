package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartInventory seeds a store and runs the inventory with every
// lifecycle it starts, in-process, as `keyflow start inventory` does.
func TestStartInventory(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keyflow.db")
	var out, errb bytes.Buffer
	if code := Run([]string{"sandbox", "seed", "--db", db}, strings.NewReader(""), &out, &errb); code != ExitOK {
		t.Fatalf("seed: exit %d: %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	code := Run([]string{"start", "inventory", "--db", db, "--input", `{"organization":true}`}, strings.NewReader(""), &out, &errb)
	if code != ExitOK {
		t.Fatalf("start: exit %d: %s %s", code, out.String(), errb.String())
	}
	var res struct{ Status string }
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Status != "SUCCEEDED" {
		t.Fatalf("output %s: %v", out.String(), err)
	}
	if !strings.Contains(errb.String(), "0 did not succeed") {
		t.Errorf("stderr: %s", errb.String())
	}
}

func TestStartRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"start", "nope"},
		{"start", "lifecycle", "--backend", "gcp"},
		{"start", "quarantine", "--approve", "maybe"},
		{"start", "lifecycle", "--input", "{not json"},
	} {
		var out, errb bytes.Buffer
		if code := Run(append(args, "--db", filepath.Join(t.TempDir(), "k.db")), strings.NewReader(""), &out, &errb); code != ExitInvalid {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitInvalid, errb.String())
		}
	}
}
