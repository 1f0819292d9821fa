package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/examples"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
)

func newDemoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the example workflows on the embedded engine and virtual clock",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo(cmd.Context(), cmd.OutOrStdout())
		},
	}
}

type demoRun struct {
	example, machine, testCase string
}

// lifecycleStart is when the example's new key is made: 45 days after the
// old key (created 2025-12-01), so the waits to the inactive point (day 60)
// and the buffer point (day 90) span the real 45 days of a rotation.
var lifecycleStart = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)

var demoRuns = []demoRun{
	{"key-lifecycle", "KeyLifecycle", "HappyPath"},
	{"key-lifecycle", "KeyLifecycle", "KeyStillInUseOnce"},
	{"key-lifecycle", "KeyLifecycle", "ThrottledThenFailing"},
	{"fan-out", "FanOut", ""},
}

func demo(ctx context.Context, w io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	fmt.Fprintln(w, "keyflow demo: example workflows on the embedded engine, virtual clock")
	fmt.Fprintln(w)
	for _, r := range demoRuns {
		res, took, err := runExample(ctx, r)
		if err != nil {
			return err
		}
		label := r.example
		if r.testCase != "" {
			label += " / " + r.testCase
		}
		virtual := res.StopDate.Sub(res.StartDate)
		fmt.Fprintf(w, "%-40s %-9s %4d events  %s of workflow time in %s\n",
			label, res.Status, len(res.History()), humanDuration(virtual), took.Round(time.Microsecond))
		if res.Status == "SUCCEEDED" {
			out, _ := data.Marshal(res.Output)
			fmt.Fprintf(w, "    output: %s\n", out)
		} else {
			fmt.Fprintf(w, "    error: %s: %s\n", res.Error, res.Cause)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Next: run one yourself, e.g.")
	fmt.Fprintln(w, "  go run ./cmd/keyflow run --definition examples/key-lifecycle/definition.asl.json \\")
	fmt.Fprintln(w, "    --input examples/key-lifecycle/input.json --mock-config examples/key-lifecycle/mocks.json \\")
	fmt.Fprintln(w, "    --test-case KeyStillInUseOnce --history /tmp/history.json")
	return nil
}

func runExample(ctx context.Context, r demoRun) (*engine.Result, time.Duration, error) {
	read := func(name string) ([]byte, error) { return examples.FS.ReadFile(r.example + "/" + name) }
	doc, err := read("definition.asl.json")
	if err != nil {
		return nil, 0, err
	}
	def, err := states.Parse(doc)
	if err != nil {
		return nil, 0, fmt.Errorf("demo: %s: %w", r.example, err)
	}
	in, err := read("input.json")
	if err != nil {
		return nil, 0, err
	}
	input, err := data.Parse(in)
	if err != nil {
		return nil, 0, fmt.Errorf("demo: %s input: %w", r.example, err)
	}
	opts := engine.Options{Clock: engine.NewVirtualClock(lifecycleStart)}
	if r.testCase != "" {
		mocks, err := read("mocks.json")
		if err != nil {
			return nil, 0, err
		}
		cfg, err := engine.ParseMockConfig(mocks)
		if err != nil {
			return nil, 0, fmt.Errorf("demo: %s mocks: %w", r.example, err)
		}
		if opts.Mocks, err = cfg.Case(r.machine, r.testCase); err != nil {
			return nil, 0, fmt.Errorf("demo: %s: %w", r.example, err)
		}
	}
	m, err := engine.New(opts).Compile(def, r.machine)
	if err != nil {
		return nil, 0, fmt.Errorf("demo: %s: %w", r.example, err)
	}
	start := time.Now()
	res := m.Run(ctx, "", input)
	return res, time.Since(start), nil
}

func humanDuration(d time.Duration) string {
	if d >= 24*time.Hour {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.Round(time.Second).String()
}
