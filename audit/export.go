package audit

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteJSONL writes one record per line, as its JSON (the canonical form
// plus Hash): the same bytes for the same records, always, so two exports
// can be compared with cmp and a log can be appended to.
func WriteJSONL(w io.Writer, records []*Record) error {
	bw := bufio.NewWriter(w)
	for _, r := range records {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("audit: writing %q: %w", truncate(r.ExecutionArn, 200), err)
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// MaxRecordBytes bounds one JSON Lines record when reading.
const MaxRecordBytes = 64 << 20

// ReadJSONL reads records written by WriteJSONL. Unknown fields are an
// error, not ignored: a field added to a record would otherwise vanish on
// reading and the record would still verify.
func ReadJSONL(r io.Reader) ([]*Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxRecordBytes)
	var out []*Record
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var rec Record
		if err := dec.Decode(&rec); err != nil {
			return out, fmt.Errorf("audit: line %d: %w", line, err)
		}
		if dec.More() {
			return out, fmt.Errorf("audit: line %d: more than one record", line)
		}
		out = append(out, &rec)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("audit: line %d: %w", line+1, err)
	}
	return out, nil
}

// CSVHeader is the first row of WriteCSV.
var CSVHeader = []string{
	"executionArn", "workflow", "status", "start", "end",
	"subjectAccount", "subjectUser", "subjectKey",
	"approvals", "breaches",
	"action", "handler", "state", "time", "account", "user", "key", "replaces", "result", "error", "dryRun",
	"hash",
}

// WriteCSV writes one row per action, for a spreadsheet: the record's
// columns repeat on each of its rows; a record without actions gets one
// row with the action columns empty and "action" 0. "approvals" is each
// approval as decision:approver@time, "breaches" each breach code, both
// ';'-separated; "action" numbers the record's actions from 1. The hash
// lets a row be traced back to its JSON Lines record, which remains the
// evidence: CSV cannot carry waits or event ids without losing its shape.
func WriteCSV(w io.Writer, records []*Record) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, r := range records {
		var approvals, breaches []string
		for _, a := range r.Approvals {
			s := a.Decision + ":" + a.Approver + "@" + csvTime(a.At)
			if a.TimedOut {
				s += "(timed out)"
			}
			approvals = append(approvals, s)
		}
		for _, b := range r.Breaches {
			breaches = append(breaches, b.Code)
		}
		head := []string{r.ExecutionArn, r.Workflow, r.Status, csvTime(r.Start), csvTime(r.End),
			r.Subject.Account, r.Subject.User, r.Subject.Key,
			strings.Join(approvals, ";"), strings.Join(breaches, ";")}
		if len(r.Actions) == 0 {
			row := append(append([]string{}, head...), "0", "", "", "", "", "", "", "", "", "", "", r.Hash)
			if err := cw.Write(csvSafe(row)); err != nil {
				return err
			}
		}
		for i, a := range r.Actions {
			row := append(append([]string{}, head...), strconv.Itoa(i+1), a.Handler, a.State, csvTime(a.Time),
				a.Account, a.User, a.Key, a.Replaces, a.Result, a.Error, strconv.FormatBool(a.DryRun), r.Hash)
			if err := cw.Write(csvSafe(row)); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// csvSafe defuses spreadsheet formulas: a user or state name starting with
// = + - @ would run as a formula when an auditor opens the file. The quote
// prefix is what OWASP recommends; it changes no value we write ourselves.
func csvSafe(row []string) []string {
	for i, s := range row {
		if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			row[i] = "'" + s
		}
	}
	return row
}
