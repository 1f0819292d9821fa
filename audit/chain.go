package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Canonical is the JSON that a record's Hash covers: the record as
// encoding/json writes it (fields in declaration order, times in RFC 3339
// UTC, map keys sorted) with Hash empty. Prev is inside it, so each hash
// seals every record before it.
func Canonical(r *Record) ([]byte, error) {
	c := *r
	c.Hash = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("audit: canonical JSON of %q: %w", truncate(r.ExecutionArn, 200), err)
	}
	return b, nil
}

// HashOf is the hex SHA-256 of r's canonical JSON.
func HashOf(r *Record) (string, error) {
	b, err := Canonical(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Chain links records after the record whose hash is prev ("" to start a
// new log): each record's Prev is the hash before it, then its Hash is
// computed. It returns the last hash, the head to keep for the next Chain
// and for Verify to detect records cut off the end.
func Chain(prev string, records []*Record) (string, error) {
	for _, r := range records {
		r.Prev = prev
		h, err := HashOf(r)
		if err != nil {
			return "", err
		}
		r.Hash = h
		prev = h
	}
	return prev, nil
}

// Problem kinds of a chain.
const (
	// The record's Hash is not the hash of its content: it was edited.
	ProblemEdited = "edited"
	// The record's Prev is no record's hash: one or more records before it
	// were deleted (or the record before it was edited and re-hashed).
	ProblemMissing = "missing"
	// The record's Prev is the hash of a record elsewhere in the log: the
	// records were reordered.
	ProblemReordered = "reordered"
	// The log does not end at the head the caller kept: records were cut
	// off the end.
	ProblemTruncated = "truncated"
)

// ChainProblem is one break of the chain, at the index of the record where
// it shows.
type ChainProblem struct {
	Index        int    `json:"index"`
	ExecutionArn string `json:"executionArn,omitempty"`
	Kind         string `json:"kind"`
	Detail       string `json:"detail"`
}

// VerifyError lists every break of a chain, in index order.
type VerifyError struct {
	Problems []ChainProblem
}

func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "audit: chain broken in %d place(s)", len(e.Problems))
	for i, p := range e.Problems {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-i)
			break
		}
		fmt.Fprintf(&b, "; record %d: %s: %s", p.Index, p.Kind, p.Detail)
	}
	return b.String()
}

// Verify checks a whole log, from its first record: VerifyFrom(records,
// "", "").
func Verify(records []*Record) error { return VerifyFrom(records, "", "") }

// VerifyFrom checks a log of chained records: that each record's Hash is its
// content's, that each Prev is the hash of the record before it (the first
// record's Prev is start, "" for a log that begins at the beginning), and,
// when head is not "", that the last hash is head. It returns nil or a
// *VerifyError naming every broken link by index.
//
// A deletion at the end leaves a perfect chain: only a head kept apart
// from the log (head) shows it.
func VerifyFrom(records []*Record, start, head string) error {
	var problems []ChainProblem
	at := map[string]int{}
	for i, r := range records {
		at[r.Hash] = i
	}
	prev := start
	for i, r := range records {
		add := func(kind, format string, args ...any) {
			problems = append(problems, ChainProblem{Index: i, ExecutionArn: r.ExecutionArn, Kind: kind, Detail: fmt.Sprintf(format, args...)})
		}
		want, err := HashOf(r)
		if err != nil {
			add(ProblemEdited, "%v", err)
		} else if want != r.Hash {
			add(ProblemEdited, "hash %s is not the content's %s", short(r.Hash), short(want))
		}
		if r.Prev != prev {
			if j, ok := at[r.Prev]; ok && r.Prev != "" {
				add(ProblemReordered, "prev is the hash of record %d, not of record %d", j, i-1)
			} else {
				before := "the log's start"
				if i > 0 {
					before = fmt.Sprintf("record %d", i-1)
				}
				add(ProblemMissing, "prev %s is not the hash of %s (%s): a record before it is missing", short(r.Prev), before, short(prev))
			}
		}
		prev = r.Hash
	}
	if head != "" && prev != head {
		problems = append(problems, ChainProblem{Index: len(records), Kind: ProblemTruncated,
			Detail: fmt.Sprintf("the log ends at %s, not at the kept head %s: records after %d are missing", short(prev), short(head), len(records)-1)})
	}
	if len(problems) > 0 {
		return &VerifyError{Problems: problems}
	}
	return nil
}

func short(h string) string {
	if h == "" {
		return `""`
	}
	return truncate(h, 12)
}
