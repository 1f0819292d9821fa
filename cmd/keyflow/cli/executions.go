package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/engine/service"
	"github.com/keyflow/keyflow/engine/sfnjson"
	"github.com/keyflow/keyflow/statemachines"
)

// The commands in this file read and drive executions through service.API,
// so each works the same against the local store, `keyflow serve` and AWS.

func newExecutionsCmd() *cobra.Command {
	var f apiFlags
	var status string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "executions STATE_MACHINE",
		Short: "List a state machine's executions (by name, workflow name or ARN), every page",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st := types.ExecutionStatus(strings.ToUpper(status))
			if status != "" && !isExecutionStatus(st) {
				return invalid("executions: --status must be one of %s, got %q", strings.Join(executionStatuses(), ", "), status)
			}
			return withAPI(cmd, &f, func(ctx context.Context, api service.API) error {
				arn, err := stateMachineArn(ctx, api, args[0])
				if err != nil {
					return err
				}
				in := &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn), StatusFilter: st}
				p := sfn.NewListExecutionsPaginator(api, in)
				prog := pageProgress(cmd.ErrOrStderr(), "executions")
				var all []types.ExecutionListItem
				for p.HasMorePages() {
					page, err := p.NextPage(ctx)
					if err != nil {
						return fmt.Errorf("executions: %w", err)
					}
					all = append(all, page.Executions...)
					prog.add(len(page.Executions))
				}
				prog.done()
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), &sfn.ListExecutionsOutput{Executions: all})
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSTATUS\tSTARTED\tSTOPPED\tEXECUTION ARN")
				for _, e := range all {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", aws.ToString(e.Name), e.Status, when(e.StartDate), when(e.StopDate), aws.ToString(e.ExecutionArn))
				}
				return tw.Flush()
			})
		},
	}
	addAPIFlags(cmd, &f)
	cmd.Flags().StringVar(&status, "status", "", "only executions with this status ("+strings.Join(executionStatuses(), ", ")+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "write the ListExecutions JSON (every page in one list)")
	return cmd
}

func newDescribeCmd() *cobra.Command {
	var f apiFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "describe EXECUTION_ARN",
		Short: "Describe an execution: status, dates, input, output or error",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkExecutionArn("describe", args[0]); err != nil {
				return err
			}
			return withAPI(cmd, &f, func(ctx context.Context, api service.API) error {
				out, err := api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(args[0])})
				if err != nil {
					return fmt.Errorf("describe: %w", err)
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				row := func(k, v string) {
					if v != "" {
						fmt.Fprintf(tw, "%s\t%s\n", k, v)
					}
				}
				row("name", aws.ToString(out.Name))
				row("status", string(out.Status))
				row("execution", aws.ToString(out.ExecutionArn))
				row("state machine", aws.ToString(out.StateMachineArn))
				row("started", when(out.StartDate))
				row("stopped", when(out.StopDate))
				row("input", aws.ToString(out.Input))
				row("output", aws.ToString(out.Output))
				row("error", aws.ToString(out.Error))
				row("cause", aws.ToString(out.Cause))
				return tw.Flush()
			})
		},
	}
	addAPIFlags(cmd, &f)
	cmd.Flags().BoolVar(&asJSON, "json", false, "write the DescribeExecution JSON")
	return cmd
}

func newHistoryCmd() *cobra.Command {
	var f apiFlags
	var reverse, asJSON bool
	cmd := &cobra.Command{
		Use:   "history EXECUTION_ARN",
		Short: "An execution's history, every page (task tokens redacted)",
		Long: `history prints every event of an execution's history, oldest first
(--reverse: newest first), as a table or, with --json, as the JSON of
GetExecutionHistory (what keyflow run --history writes and the audit reads).
Task tokens found in the history are replaced by ` + redactedToken + `: a
token answers an approval, so it is never printed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkExecutionArn("history", args[0]); err != nil {
				return err
			}
			return withAPI(cmd, &f, func(ctx context.Context, api service.API) error {
				events, err := history(ctx, api, args[0], reverse, pageProgress(cmd.ErrOrStderr(), "events"))
				if err != nil {
					return fmt.Errorf("history: %w", err)
				}
				redactTokens(events)
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), &sfn.GetExecutionHistoryOutput{Events: events})
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tPREVIOUS\tTIME\tTYPE\tSTATE")
				for _, e := range events {
					fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", e.Id, e.PreviousEventId, when(e.Timestamp), e.Type, stateName(e))
				}
				return tw.Flush()
			})
		},
	}
	addAPIFlags(cmd, &f)
	cmd.Flags().BoolVar(&reverse, "reverse", false, "newest event first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "write the GetExecutionHistory JSON (every page in one list)")
	return cmd
}

func newStopCmd() *cobra.Command {
	var f apiFlags
	var errName, cause string
	cmd := &cobra.Command{
		Use:   "stop EXECUTION_ARN",
		Short: "Stop a running execution (it ends ABORTED)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkExecutionArn("stop", args[0]); err != nil {
				return err
			}
			return withAPI(cmd, &f, func(ctx context.Context, api service.API) error {
				in := &sfn.StopExecutionInput{ExecutionArn: aws.String(args[0])}
				if errName != "" {
					in.Error = aws.String(errName)
				}
				if cause != "" {
					in.Cause = aws.String(cause)
				}
				out, err := api.StopExecution(ctx, in)
				if err != nil {
					return fmt.Errorf("stop: %w", err)
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"executionArn": args[0], "stopDate": when(out.StopDate)})
			})
		},
	}
	addAPIFlags(cmd, &f)
	cmd.Flags().StringVar(&errName, "error", "", "the error recorded on the stopped execution")
	cmd.Flags().StringVar(&cause, "cause", "", "why it was stopped")
	return cmd
}

// withAPI runs fn with the API the flags name, released afterwards.
func withAPI(cmd *cobra.Command, f *apiFlags, fn func(context.Context, service.API) error) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	api, release, err := f.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd.Name(), err)
	}
	defer release()
	return fn(ctx, api)
}

// history reads every page of an execution's history.
func history(ctx context.Context, api service.API, arn string, reverse bool, prog *progress) ([]types.HistoryEvent, error) {
	p := sfn.NewGetExecutionHistoryPaginator(api, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), ReverseOrder: reverse})
	var all []types.HistoryEvent
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Events...)
		prog.add(len(page.Events))
	}
	prog.done()
	return all, nil
}

// stateMachineArn resolves a state machine given by ARN, by name, or by
// keyflow workflow name (lifecycle is keyflow-lifecycle).
func stateMachineArn(ctx context.Context, api service.API, ref string) (string, error) {
	if strings.HasPrefix(ref, "arn:") {
		return ref, nil
	}
	p := sfn.NewListStateMachinesPaginator(api, &sfn.ListStateMachinesInput{})
	byWorkflow := ""
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("executions: listing state machines: %w", err)
		}
		for _, m := range page.StateMachines {
			switch aws.ToString(m.Name) {
			case ref:
				return aws.ToString(m.StateMachineArn), nil
			case statemachines.StateMachineName(ref):
				byWorkflow = aws.ToString(m.StateMachineArn)
			}
		}
	}
	if byWorkflow != "" {
		return byWorkflow, nil
	}
	return "", fmt.Errorf("executions: no state machine named %q", ref)
}

func checkExecutionArn(cmd, arn string) error {
	if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":execution:") {
		return invalid("%s: %q is not an execution ARN (arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME)", cmd, truncateArg(arn))
	}
	return nil
}

func truncateArg(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func executionStatuses() []string {
	var out []string
	for _, s := range types.ExecutionStatus("").Values() {
		out = append(out, string(s))
	}
	return out
}

func isExecutionStatus(s types.ExecutionStatus) bool {
	for _, v := range s.Values() {
		if v == s {
			return true
		}
	}
	return false
}

func when(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// writeJSON writes an sfn shape as the service's JSON, one line.
func writeJSON(w io.Writer, v any) error {
	b, err := sfnjson.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// stateName is the state an event enters or exits, if it names one.
func stateName(e types.HistoryEvent) string {
	if d := e.StateEnteredEventDetails; d != nil {
		return aws.ToString(d.Name)
	}
	if d := e.StateExitedEventDetails; d != nil {
		return aws.ToString(d.Name)
	}
	return ""
}

const redactedToken = "[REDACTED task token]"

// taskTokens finds the task tokens a history carries: the values of a
// "taskToken" (or "token") member of a scheduled task's parameters, where
// a definition puts $$.Task.Token.
func taskTokens(events []types.HistoryEvent) []string {
	var out []string
	for _, e := range events {
		d := e.TaskScheduledEventDetails
		if d == nil || d.Parameters == nil {
			continue
		}
		var params any
		if json.Unmarshal([]byte(*d.Parameters), &params) != nil {
			continue
		}
		out = append(out, tokensIn(params)...)
	}
	return out
}

func tokensIn(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, m := range x {
			if s, ok := m.(string); ok && s != "" && (strings.EqualFold(k, "taskToken") || strings.EqualFold(k, "token")) {
				out = append(out, s)
				continue
			}
			out = append(out, tokensIn(m)...)
		}
	case []any:
		for _, m := range x {
			out = append(out, tokensIn(m)...)
		}
	}
	return out
}

// redactTokens replaces every task token of the history wherever it
// appears in it (parameters, inputs, outputs), in place.
func redactTokens(events []types.HistoryEvent) {
	tokens := taskTokens(events)
	if len(tokens) == 0 {
		return
	}
	r := strings.NewReplacer(func() []string {
		var pairs []string
		for _, t := range tokens {
			pairs = append(pairs, t, redactedToken)
		}
		return pairs
	}()...)
	for i := range events {
		replaceStrings(reflect.ValueOf(&events[i]).Elem(), r)
	}
}

func replaceStrings(v reflect.Value, r *strings.Replacer) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			replaceStrings(v.Elem(), r)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				replaceStrings(v.Field(i), r)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			replaceStrings(v.Index(i), r)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(r.Replace(v.String()))
		}
	}
}

// progress counts what a long listing fetched, on stderr, and only when
// stderr is a terminal: a pipe or a CI log gets the listing and nothing else.
type progress struct{ bar *progressbar.ProgressBar }

func pageProgress(stderr io.Writer, what string) *progress {
	file, ok := stderr.(*os.File)
	if !ok || !isTerminal(file) {
		return nil
	}
	return &progress{bar: progressbar.NewOptions(-1, progressbar.OptionSetWriter(file), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())}
}

func (p *progress) add(n int) {
	if p != nil {
		_ = p.bar.Add(n)
	}
}

func (p *progress) done() {
	if p != nil {
		_ = p.bar.Finish()
	}
}
