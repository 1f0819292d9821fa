package audit_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/audit"
)

// recorded serves every history under testdata/histories as an execution
// of its workflow (the file name's first word), in pages of two, plus one
// execution of a state machine that is not keyflow's.
func recorded(t *testing.T) (x *audit.Executions, arns []string, golden map[string]string) {
	t.Helper()
	files, err := filepath.Glob("testdata/histories/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories: %v", err)
	}
	x = &audit.Executions{PageSize: 2}
	golden = map[string]string{} // execution ARN -> its record's golden file
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		events, err := audit.DecodeHistory(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		workflow := strings.SplitN(name, "-", 2)[0]
		arn := "arn:aws:states:us-east-1:123456789012:execution:keyflow-" + workflow + ":" + workflow + "-" + name
		if err := x.Add(audit.History{ExecutionArn: arn, Events: events}); err != nil {
			t.Fatal(err)
		}
		arns = append(arns, arn)
		if name != "lifecycle-min-inactive" { // its record was built under a Policy; Filter{} has none
			golden[arn] = filepath.Join("testdata", "records", name+".json")
		}
	}
	other := []types.HistoryEvent{{Id: 1, Type: types.HistoryEventTypeExecutionStarted, Timestamp: aws.Time(t0),
		ExecutionStartedEventDetails: &types.ExecutionStartedEventDetails{Input: aws.String("{}")}}}
	if err := x.Add(audit.History{ExecutionArn: "arn:aws:states:us-east-1:123456789012:execution:payroll:run-1", Events: other}); err != nil {
		t.Fatal(err)
	}
	return x, arns, golden
}

// TestCollect reads recorded histories through the three paginated calls
// and checks that each filter keeps exactly the executions it names, and
// that each record is the one Build makes of the same history (its golden
// file).
func TestCollect(t *testing.T) {
	x, arns, golden := recorded(t)
	var lifecycles, quarantines, failed int
	for _, arn := range arns {
		if strings.Contains(arn, ":keyflow-lifecycle:") {
			lifecycles++
		} else {
			quarantines++
		}
	}
	all, err := audit.Collect(context.Background(), x, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if r.Status == "FAILED" {
			failed++
		}
	}
	cases := []struct {
		name  string
		f     audit.Filter
		count int
		err   string
	}{
		{"every keyflow execution", audit.Filter{}, len(arns), ""},
		{"by workflow", audit.Filter{Workflows: []string{"lifecycle"}}, lifecycles, ""},
		{"by state machine name", audit.Filter{Workflows: []string{"keyflow-quarantine"}}, quarantines, ""},
		{"a state machine not keyflow's, when named", audit.Filter{Workflows: []string{"payroll"}}, 1, ""},
		{"by status", audit.Filter{Status: "FAILED"}, failed, ""},
		{"since the first start", audit.Filter{Since: t0}, len(arns), ""},
		{"since after every start", audit.Filter{Since: t0.Add(time.Second)}, 0, ""},
		{"until the first start", audit.Filter{Until: t0}, 0, ""},
		{"limit", audit.Filter{MaxExecutions: 3}, 0, "more than 3 executions match"},
		{"unknown workflow", audit.Filter{Workflows: []string{"lifecycel"}}, 0, `no state machine "lifecycel"`},
		{"bad status", audit.Filter{Status: "DONE"}, 0, `status "DONE" is not one of`},
		{"empty window", audit.Filter{Since: t0, Until: t0}, 0, "before it starts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := audit.Collect(context.Background(), x, c.f)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "audit: ") {
					t.Fatalf("error %v, want one with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.count {
				t.Fatalf("%d records, want %d", len(got), c.count)
			}
			for i, r := range got {
				if i > 0 && (r.Start.Before(got[i-1].Start) || r.Start.Equal(got[i-1].Start) && r.ExecutionArn < got[i-1].ExecutionArn) {
					t.Errorf("record %d (%s) is out of order", i, r.ExecutionArn)
				}
				if c.f.Status != "" && r.Status != c.f.Status {
					t.Errorf("%s is %s", r.ExecutionArn, r.Status)
				}
				path, ok := golden[r.ExecutionArn]
				if !ok {
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.MarshalIndent(r, "", "  ")
				if strings.TrimSpace(string(b)) != strings.TrimSpace(string(want)) {
					t.Errorf("%s: the collected record differs from %s:\n%s", r.ExecutionArn, path, b)
				}
			}
		})
	}
}

// looping answers every call with the same page token.
type looping struct{ *audit.Executions }

func (l looping) ListExecutions(ctx context.Context, in *sfn.ListExecutionsInput, o ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
	out, err := l.Executions.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: in.StateMachineArn}, o...)
	if err != nil {
		return nil, err
	}
	out.NextToken = aws.String("again")
	return out, nil
}

func (l looping) GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, o ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	out, err := l.Executions.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: in.ExecutionArn}, o...)
	if err != nil {
		return nil, err
	}
	out.NextToken = aws.String("again")
	return out, nil
}

// TestCollectStopsLoopingServices: a service that never stops paging ends
// in an error, not an endless audit.
func TestCollectStopsLoopingServices(t *testing.T) {
	x, _, _ := recorded(t)
	_, err := audit.Collect(context.Background(), looping{x}, audit.Filter{})
	if err == nil || !strings.Contains(err.Error(), `repeated page token "again"`) {
		t.Fatalf("error %v", err)
	}
	// A history that pages forever is cut at its page limit.
	_, err = audit.Collect(context.Background(), historyLoop{x}, audit.Filter{Workflows: []string{"payroll"}})
	if err == nil || !strings.Contains(err.Error(), "more than 100 pages") {
		t.Fatalf("error %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := audit.Collect(ctx, x, audit.Filter{}); err == nil {
		t.Fatal("a cancelled audit succeeded")
	}
}

type historyLoop struct{ *audit.Executions }

func (l historyLoop) GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, o ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	return looping(l).GetExecutionHistory(ctx, in, o...)
}

// TestExecutionsPaginates: the in-memory service pages as Step Functions
// does, newest first, and refuses a token it did not give.
func TestExecutionsPaginates(t *testing.T) {
	x, _, golden := recorded(t)
	ctx := context.Background()
	sms, err := x.ListStateMachines(ctx, &sfn.ListStateMachinesInput{MaxResults: 1})
	if err != nil || len(sms.StateMachines) != 1 || sms.NextToken == nil {
		t.Fatalf("first page of machines: %+v %v", sms, err)
	}
	if _, err := x.ListStateMachines(ctx, &sfn.ListStateMachinesInput{NextToken: aws.String("x")}); err == nil {
		t.Error("a made-up token was taken")
	}
	for arn := range golden {
		n := 0
		var token *string
		for {
			page, err := x.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: &arn, NextToken: token, MaxResults: 3})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) > 2 {
				t.Fatalf("a page of %d events; the page size is 2", len(page.Events))
			}
			n += len(page.Events)
			if token = page.NextToken; token == nil {
				break
			}
		}
		if n == 0 {
			t.Errorf("%s: no events", arn)
		}
		break
	}
	if _, err := x.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String("arn:aws:states:us-east-1:1:execution:m:none")}); err == nil {
		t.Error("the history of an unknown execution was served")
	}
	if err := x.Add(audit.History{ExecutionArn: "not-an-arn"}); err == nil {
		t.Error("a history without an execution ARN was kept")
	}
}
