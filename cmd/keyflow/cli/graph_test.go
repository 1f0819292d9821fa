package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGraphs = flag.Bool("update", false, "rewrite the graph golden files under testdata/")

// TestGraphGolden keeps the lifecycle's diagrams, which the README shows,
// in testdata/lifecycle.mmd and lifecycle.dot.
func TestGraphGolden(t *testing.T) {
	for _, format := range []string{"mermaid", "dot"} {
		t.Run(format, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Run([]string{"graph", "lifecycle", "--format", format}, strings.NewReader(""), &out, &errb); code != ExitOK {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			ext := map[string]string{"mermaid": ".mmd", "dot": ".dot"}[format]
			path := filepath.Join("testdata", "lifecycle"+ext)
			if *updateGraphs {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%s differs; run go test ./cmd/keyflow/cli -run Graph -update and review", path)
			}
		})
	}
}

func TestGraphRefuses(t *testing.T) {
	for _, args := range [][]string{{"graph", "nope"}, {"graph", "lifecycle", "--format", "svg"}, {"graph"}} {
		var out, errb bytes.Buffer
		if code := Run(args, strings.NewReader(""), &out, &errb); code != ExitInvalid {
			t.Errorf("%v: exit %d, want %d", args, code, ExitInvalid)
		}
	}
}
