package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/sfnjson"
	"github.com/keyflow/keyflow/states/data"
)

type runFlags struct {
	definition   string
	input        string
	mockConfig   string
	testCase     string
	stateMachine string
	clock        string
	history      string
	executions   int
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --definition FILE [--input FILE|JSON]",
		Short: "Run one ASL definition on the embedded engine and print its result as JSON",
		Long: `Run executes one ASL definition and prints one JSON object per execution:
  {"status":"SUCCEEDED","output":{...}}
  {"status":"FAILED","error":"States.TaskFailed","cause":"..."}
Exit 0 when it succeeded, 1 when it failed or timed out, 2 when the
definition or the input is invalid. The clock is virtual by default: waits end
at once while history timestamps advance as they would on AWS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDefinition(cmd.Context(), f, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.definition, "definition", "", "the ASL definition `FILE` (required)")
	fl.StringVar(&f.input, "input", "{}", "the execution input: a JSON text, a `FILE`, or - for standard input")
	fl.StringVar(&f.mockConfig, "mock-config", "", "a Step Functions Local mock configuration `FILE`")
	fl.StringVar(&f.testCase, "test-case", "", "the mock configuration's test case `NAME`")
	fl.StringVar(&f.stateMachine, "state-machine", "", "the mock configuration's state machine `NAME` (when it names several)")
	fl.StringVar(&f.clock, "clock", "virtual", "virtual (waits end at once, timestamps advance) or real")
	fl.StringVar(&f.history, "history", "", "write the history, as GetExecutionHistory's JSON, to `FILE`")
	fl.IntVar(&f.executions, "executions", 1, "run `N` executions of the same definition and input at once")
	return cmd
}

// runResult is the one JSON object `keyflow run` prints per execution.
type runResult struct {
	Status string          `json:"status"`
	Output json.RawMessage `json:"output,omitempty"`
	Error  string          `json:"error,omitempty"`
	Cause  string          `json:"cause,omitempty"`
}

func runDefinition(ctx context.Context, f runFlags, stdin io.Reader, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.definition == "" {
		return invalid("run: --definition FILE is required")
	}
	if f.executions < 1 {
		return invalid("run: --executions must be at least 1, got %d", f.executions)
	}
	if f.history != "" && f.executions > 1 {
		return invalid("run: --history writes one execution's history; it cannot be used with --executions %d", f.executions)
	}
	def, err := loadDefinition(f.definition, stderr)
	if err != nil {
		return &exitError{code: ExitInvalid}
	}
	input, err := readInput(f.input, stdin)
	if err != nil {
		return invalid("run: %v", err)
	}
	opts := engine.Options{}
	switch f.clock {
	case "virtual":
	case "real":
		opts.Clock = engine.NewRealClock()
	default:
		return invalid("run: --clock must be virtual or real, got %q", f.clock)
	}
	if f.mockConfig != "" || f.testCase != "" {
		mocks, err := loadMockCase(f)
		if err != nil {
			return invalid("run: %v", err)
		}
		opts.Mocks = mocks
	}
	eng := engine.New(opts)
	machine, err := eng.Compile(def, machineName(f))
	if err != nil {
		return invalid("run: %s: %v", f.definition, err)
	}

	results := make([]*engine.Result, f.executions)
	bar := progressFor(stderr, f.executions)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = machine.Run(ctx, "", input)
			if bar != nil {
				_ = bar.Add(1)
			}
		}()
	}
	wg.Wait()
	if bar != nil {
		_ = bar.Finish()
	}

	code := ExitOK
	for _, r := range results {
		line, err := resultLine(r)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(line))
		if r.Status != "SUCCEEDED" {
			code = ExitFailed
		}
	}
	if f.history != "" {
		if err := writeHistory(f.history, results[0]); err != nil {
			return err
		}
	}
	if code != ExitOK {
		return &exitError{code: code}
	}
	return nil
}

func resultLine(r *engine.Result) ([]byte, error) {
	out := runResult{Status: r.Status, Error: r.Error, Cause: r.Cause}
	if r.Status == "SUCCEEDED" {
		b, err := data.Marshal(r.Output)
		if err != nil {
			return nil, fmt.Errorf("run: encoding the output: %w", err)
		}
		out.Output = b
	}
	return json.Marshal(out)
}

func writeHistory(file string, r *engine.Result) error {
	b, err := sfnjson.Marshal(struct{ Events any }{r.History()})
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("run: writing the history: %w", err)
	}
	return nil
}

// readInput takes the --input value: JSON text, "-" for standard input, or
// a file name. A value that begins like JSON is JSON, so a typo in inline
// JSON is reported as bad JSON rather than as a missing file.
func readInput(v string, stdin io.Reader) (any, error) {
	var doc []byte
	trimmed := strings.TrimSpace(v)
	switch {
	case trimmed == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the input: %w", err)
		}
		doc = b
	case looksLikeJSON(trimmed):
		doc = []byte(trimmed)
	default:
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("the input is neither JSON nor a readable file: %w", err)
		}
		doc = b
	}
	val, err := data.Parse(bytes.TrimSpace(doc))
	if err != nil {
		return nil, fmt.Errorf("the input is not valid JSON: %w", err)
	}
	return val, nil
}

func looksLikeJSON(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '{', '[', '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return s == "true" || s == "false" || s == "null"
}

// loadMockCase picks the state machine and test case of a Step Functions
// Local mock file: --state-machine may be left out when the file names one.
func loadMockCase(f runFlags) (*engine.MockCase, error) {
	if f.mockConfig == "" || f.testCase == "" {
		return nil, fmt.Errorf("--mock-config and --test-case go together")
	}
	doc, err := os.ReadFile(f.mockConfig)
	if err != nil {
		return nil, err
	}
	cfg, err := engine.ParseMockConfig(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.mockConfig, err)
	}
	sm := f.stateMachine
	if sm == "" {
		var top struct{ StateMachines map[string]json.RawMessage }
		_ = json.Unmarshal(doc, &top)
		names := make([]string, 0, len(top.StateMachines))
		for n := range top.StateMachines {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) != 1 {
			return nil, fmt.Errorf("%s names %d state machines (%s): pick one with --state-machine", f.mockConfig, len(names), strings.Join(names, ", "))
		}
		sm = names[0]
	}
	return cfg.Case(sm, f.testCase)
}

func machineName(f runFlags) string {
	if f.stateMachine != "" {
		return f.stateMachine
	}
	base := f.definition
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	return strings.TrimSuffix(strings.TrimSuffix(base, ".json"), ".asl")
}

// progressFor shows progress for many executions, and only on a terminal:
// a pipe or a CI log gets the results and nothing else.
func progressFor(stderr io.Writer, n int) *progressbar.ProgressBar {
	file, ok := stderr.(*os.File)
	if !ok || n < 100 || !isTerminal(file) {
		return nil
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(file), progressbar.OptionSetDescription("executions"),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
}
