package audit_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyflow/keyflow/audit"
)

// records builds the records of the first n golden fixtures, in name
// order, chained from the start.
func records(t *testing.T) []*audit.Record {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil || len(files) < 4 {
		t.Fatalf("fixtures: %v %v (go test ./audit -update writes them)", files, err)
	}
	var out []*audit.Record
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		events, err := audit.DecodeHistory(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		rec, err := audit.Build(audit.History{ExecutionArn: "arn:aws:states:us-east-1:123456789012:execution:keyflow-" +
			strings.SplitN(name, "-", 2)[0] + ":" + name, Events: events})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	if _, err := audit.Chain("", out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestChain(t *testing.T) {
	recs := records(t)
	head := recs[len(recs)-1].Hash
	if err := audit.Verify(recs); err != nil {
		t.Fatalf("a fresh chain: %v", err)
	}
	if recs[0].Prev != "" || recs[1].Prev != recs[0].Hash || len(recs[0].Hash) != 64 {
		t.Fatalf("links: %q %q %q", recs[0].Prev, recs[1].Prev, recs[0].Hash)
	}

	// A round trip through JSON Lines keeps every hash.
	var buf bytes.Buffer
	if err := audit.WriteJSONL(&buf, recs); err != nil {
		t.Fatal(err)
	}
	back, err := audit.ReadJSONL(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyFrom(back, "", head); err != nil {
		t.Fatalf("after JSON Lines: %v", err)
	}

	clone := func() []*audit.Record {
		out, err := audit.ReadJSONL(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	type problem struct {
		index int
		kind  string
	}
	cases := []struct {
		name   string
		tamper func([]*audit.Record) []*audit.Record
		want   []problem
	}{
		{"edited result", func(r []*audit.Record) []*audit.Record {
			r[2].Actions[0].Result = "Deactivated"
			return r
		}, []problem{{2, audit.ProblemEdited}}},
		{"breach removed", func(r []*audit.Record) []*audit.Record {
			r[1].Breaches = nil
			return r
		}, []problem{{1, audit.ProblemEdited}}},
		{"edited and re-hashed", func(r []*audit.Record) []*audit.Record {
			r[3].Status = "EDITED"
			r[3].Hash, _ = audit.HashOf(r[3])
			return r
		}, []problem{{4, audit.ProblemMissing}}},
		{"deleted", func(r []*audit.Record) []*audit.Record {
			return append(r[:2], r[3:]...)
		}, []problem{{2, audit.ProblemMissing}}},
		{"first deleted", func(r []*audit.Record) []*audit.Record {
			return r[1:]
		}, []problem{{0, audit.ProblemMissing}}},
		{"last deleted", func(r []*audit.Record) []*audit.Record {
			return r[:len(r)-1]
		}, []problem{{len(recs) - 1, audit.ProblemTruncated}}},
		{"swapped", func(r []*audit.Record) []*audit.Record {
			r[1], r[2] = r[2], r[1]
			return r
		}, []problem{{1, audit.ProblemReordered}, {2, audit.ProblemReordered}, {3, audit.ProblemReordered}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := audit.VerifyFrom(c.tamper(clone()), "", head)
			var ve *audit.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, want a *VerifyError", err)
			}
			var got []problem
			for _, p := range ve.Problems {
				got = append(got, problem{p.Index, p.Kind})
			}
			if len(got) != len(c.want) {
				t.Fatalf("problems %+v, want %+v (%v)", got, c.want, err)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("problems %+v, want %+v (%v)", got, c.want, err)
				}
			}
			if !strings.HasPrefix(err.Error(), "audit: chain broken") {
				t.Errorf("error %q", err)
			}
		})
	}
}

// TestReadJSONLRefusesUnknownFields: a field added to a record would vanish
// on reading and the record would still verify, so reading fails instead.
func TestReadJSONLRefusesUnknownFields(t *testing.T) {
	recs := records(t)
	var buf bytes.Buffer
	if err := audit.WriteJSONL(&buf, recs[:2]); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(buf.String(), "\n", 2)
	edited := strings.Replace(lines[0], `{"schema"`, `{"approvedBy":"mallory","schema"`, 1) + "\n" + lines[1]
	if _, err := audit.ReadJSONL(strings.NewReader(edited)); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v, want an error on line 1", err)
	}
}

// TestExport: both formats are golden (so the format is reviewed) and
// deterministic (so two exports compare with cmp).
func TestExport(t *testing.T) {
	recs := records(t)
	var jsonl, csv1, csv2 bytes.Buffer
	if err := audit.WriteJSONL(&jsonl, recs); err != nil {
		t.Fatal(err)
	}
	if err := audit.WriteCSV(&csv1, recs); err != nil {
		t.Fatal(err)
	}
	if err := audit.WriteCSV(&csv2, records(t)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(csv1.Bytes(), csv2.Bytes()) {
		t.Error("two CSV exports of the same histories differ")
	}
	if n := strings.Count(jsonl.String(), "\n"); n != len(recs) {
		t.Errorf("%d lines for %d records", n, len(recs))
	}
	golden(t, "export.jsonl", jsonl.Bytes())
	golden(t, "export.csv", csv1.Bytes())
	if audit.LooksLikeSecret(jsonl.String()) || audit.LooksLikeSecret(csv1.String()) {
		t.Error("an export holds a secret")
	}
}

func TestCSVDefusesFormulas(t *testing.T) {
	rec := &audit.Record{ExecutionArn: "x", Subject: audit.Subject{User: "=HYPERLINK(\"http://evil\")"}}
	var buf bytes.Buffer
	if err := audit.WriteCSV(&buf, []*audit.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"'=HYPERLINK(""http://evil"")"`) {
		t.Errorf("formula not defused:\n%s", buf.String())
	}
}
