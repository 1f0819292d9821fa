package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/report"
	"github.com/keyflow/keyflow/statemachines"
)

// auditOptions are the flags of `keyflow audit` that do not choose the Step
// Functions to read.
type auditOptions struct {
	workflows    []string
	status       string
	since, until string
	format       string
	html         string
}

var auditFormats = []string{"table", "jsonl", "csv"}

func newAuditCmd() *cobra.Command {
	var (
		f apiFlags
		o auditOptions
	)
	cmd := &cobra.Command{
		Use:   "audit [--workflow NAME]... [--status STATUS] [--since TIME] [--until TIME] [--format table|jsonl|csv] [--html FILE]",
		Short: "Audit every execution's history: actions, approvals, waits, and each breach of keyflow's invariants",
		Long: `Audit reads every execution of keyflow's workflows (the local store, a running
keyflow serve with --endpoint, or AWS with --aws), builds one audit record per
execution, chains the records by hash, and prints them as a table, as JSON
Lines or as CSV; --html also writes the report page. It exits 1 when any
record shows a breach. ` + "`keyflow audit verify FILE`" + ` checks an exported chain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := o.filter()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			api, release, err := f.client(ctx)
			if err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			defer release()
			return runAudit(ctx, api, filter, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&o.workflows, "workflow", nil, "only this workflow ("+strings.Join(statemachines.Names(), ", ")+") or state machine; repeat for more")
	fl.StringVar(&o.status, "status", "", "only executions in this status ("+strings.Join(audit.Statuses(), ", ")+")")
	fl.StringVar(&o.since, "since", "", "only executions started at or after TIME (RFC 3339 or YYYY-MM-DD)")
	fl.StringVar(&o.until, "until", "", "only executions started before TIME (RFC 3339 or YYYY-MM-DD)")
	fl.StringVar(&o.format, "format", "table", "table, jsonl or csv")
	fl.StringVar(&o.html, "html", "", "also write the HTML report to `FILE`")
	addAPIFlags(cmd, &f)
	cmd.AddCommand(newAuditVerifyCmd())
	return cmd
}

// filter checks the flags before anything is read: a bad flag is a usage
// error (exit 2), not an empty audit.
func (o auditOptions) filter() (audit.Filter, error) {
	f := audit.Filter{Workflows: o.workflows, Status: strings.ToUpper(o.status)}
	if !slices.Contains(auditFormats, o.format) {
		return f, invalid("audit: --format must be one of %s, got %q", strings.Join(auditFormats, ", "), o.format)
	}
	if f.Status != "" && !slices.Contains(audit.Statuses(), f.Status) {
		return f, invalid("audit: --status must be one of %s, got %q", strings.Join(audit.Statuses(), ", "), o.status)
	}
	var err error
	if f.Since, err = parseWhen("--since", o.since); err != nil {
		return f, err
	}
	if f.Until, err = parseWhen("--until", o.until); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, invalid("audit: --until %q is not after --since %q", o.until, o.since)
	}
	return f, nil
}

func parseWhen(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, invalid("audit: %s %q is neither RFC 3339 (2026-03-01T09:00:00Z) nor a date (2026-03-01)", flag, clipFlag(s))
}

func clipFlag(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// runAudit is the whole command over any Step Functions: collect, chain,
// print, write the page; a breach makes it exit 1 after everything is
// written, so the evidence is out before the verdict.
func runAudit(ctx context.Context, api audit.SFN, filter audit.Filter, o auditOptions, stdout, stderr io.Writer) error {
	records, err := audit.Collect(ctx, api, filter)
	if err != nil {
		return err
	}
	head, err := audit.Chain("", records)
	if err != nil {
		return err
	}
	switch o.format {
	case "jsonl":
		err = audit.WriteJSONL(stdout, records)
	case "csv":
		err = audit.WriteCSV(stdout, records)
	default:
		writeAuditTable(stdout, records)
	}
	if err != nil {
		return err
	}
	summary := stdout
	if o.format != "table" {
		summary = stderr // stdout is data
	}
	breaches := writeAuditSummary(summary, records, head)
	if o.html != "" {
		if err := writeAuditHTML(o.html, "keyflow audit", records, head, nil, time.Now().UTC()); err != nil {
			return err
		}
		fmt.Fprintf(summary, "report: %s\n", o.html)
	}
	if breaches > 0 {
		return &exitError{code: ExitFailed}
	}
	return nil
}

// writeAuditTable prints one line per execution, then each breach with the
// events that show it.
func writeAuditTable(w io.Writer, records []*audit.Record) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tEXECUTION\tSTATUS\tSTART\tDAYS\tSUBJECT\tACTIONS\tAPPROVALS\tBREACHES")
	for _, r := range records {
		days := "-"
		if !r.End.IsZero() {
			days = fmt.Sprintf("%.1f", r.End.Sub(r.Start).Hours()/24)
		}
		subject := strings.Trim(r.Subject.Account+"/"+r.Subject.User, "/")
		if r.Subject.Key != "" {
			subject += " " + r.Subject.Key
		}
		if subject == "" {
			subject = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", r.Workflow, executionName(r.ExecutionArn), r.Status,
			r.Start.UTC().Format("2006-01-02 15:04"), days, subject, len(r.Actions), len(r.Approvals), len(r.Breaches))
	}
	tw.Flush()
	for _, r := range records {
		for _, b := range r.Breaches {
			fmt.Fprintf(w, "BREACH %s %s: %s (events %s)\n", executionName(r.ExecutionArn), b.Code, b.Message, strings.Trim(fmt.Sprint(b.Events), "[]"))
		}
	}
}

// writeAuditSummary prints the counts and returns the number of breaches.
func writeAuditSummary(w io.Writer, records []*audit.Record, head string) int {
	var breaches, approvals, actions int
	for _, r := range records {
		breaches += len(r.Breaches)
		approvals += len(r.Approvals)
		actions += len(r.Actions)
	}
	fmt.Fprintf(w, "audited %d execution(s): %d action(s), %d approval(s), %d breach(es)\n", len(records), actions, approvals, breaches)
	if head != "" {
		fmt.Fprintf(w, "chain head %s\n", head)
	}
	return breaches
}

func executionName(arn string) string {
	if i := strings.LastIndexByte(arn, ':'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// writeAuditHTML writes the report page: the records, the diagram of each
// keyflow workflow they ran, and the accounts' state when given.
func writeAuditHTML(path, title string, records []*audit.Record, head string, estate *report.Estate, now time.Time) error {
	page := report.Page{Title: title, Generated: now, Records: records, Head: head, Estate: estate}
	seen := map[string]bool{}
	for _, r := range records {
		seen[r.Workflow] = true
	}
	for _, name := range statemachines.Names() {
		if !seen[name] {
			continue
		}
		def, err := statemachines.Build(name, statemachines.Options{})
		if err != nil {
			return err
		}
		page.Workflows = append(page.Workflows, report.Workflow{Name: name, Definition: def})
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := report.Write(f, page); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func newAuditVerifyCmd() *cobra.Command {
	var head string
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a JSON Lines audit chain: every edited, deleted or reordered record is named",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return verifyChain(args[0], head, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&head, "head", "", "the chain head kept apart from the file: records cut off the end are then found too")
	return cmd
}

func verifyChain(path, head string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return invalid("audit verify: %v", err)
	}
	defer f.Close()
	records, err := audit.ReadJSONL(f)
	if err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("audit verify: %s: %w", path, err)}
	}
	err = audit.VerifyFrom(records, "", head)
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			name := "(end of the log)"
			if p.Index < len(records) {
				name = executionName(p.ExecutionArn)
			}
			fmt.Fprintf(w, "line %d %s: %s: %s\n", p.Index+1, name, p.Kind, p.Detail)
		}
		return &exitError{code: ExitFailed, err: fmt.Errorf("audit verify: %s: the chain is broken in %d place(s)", path, len(ve.Problems))}
	}
	if err != nil {
		return err
	}
	last := ""
	if len(records) > 0 {
		last = records[len(records)-1].Hash
	}
	fmt.Fprintf(w, "%s: %d record(s), chain intact, head %s\n", path, len(records), last)
	return nil
}
