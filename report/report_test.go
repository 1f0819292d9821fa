package report_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/report"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// records audits the recorded histories of the audit package.
func records(t *testing.T, names ...string) []*audit.Record {
	t.Helper()
	var out []*audit.Record
	for _, n := range names {
		f, err := os.Open(filepath.Join("..", "audit", "testdata", "histories", n+".json"))
		if err != nil {
			t.Fatal(err)
		}
		events, err := audit.DecodeHistory(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		wf := strings.SplitN(n, "-", 2)[0]
		r, err := audit.Build(audit.History{ExecutionArn: "arn:aws:states:us-east-1:123456789012:execution:keyflow-" + wf + ":" + n, Events: events})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if _, err := audit.Chain("", out); err != nil {
		t.Fatal(err)
	}
	return out
}

func workflows(t *testing.T, names ...string) []report.Workflow {
	t.Helper()
	var out []report.Workflow
	for _, n := range names {
		def, err := statemachines.Build(n, statemachines.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, report.Workflow{Name: n, Definition: def})
	}
	return out
}

func seeded(t *testing.T) (*sandbox.Sandbox, sandbox.SeedReport) {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sandbox.Seed(sb, sandbox.SeedOptions{Accounts: 2, UsersPerAccount: 30, Seed: 3, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return sb, rep
}

func gather(t *testing.T, sb *sandbox.Sandbox, accounts []string) *report.Estate {
	t.Helper()
	e, err := report.Gather(context.Background(), accounts, func(_ context.Context, a string) (report.IAM, error) {
		return sb.IAM(a), nil
	}, report.DefaultPolicy, t0)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestGolden renders pages as a reader gets them; go test ./report -update
// rewrites the files after a deliberate change, to be read in a browser.
func TestGolden(t *testing.T) {
	sb, rep := seeded(t)
	cases := []struct {
		name string
		page report.Page
	}{
		{"audit-clean", report.Page{Title: "keyflow audit", Generated: t0,
			Records:   records(t, "lifecycle-clean", "lifecycle-unused-key", "quarantine-approved", "quarantine-timeout-policy"),
			Workflows: workflows(t, statemachines.NameLifecycle, statemachines.NameQuarantine)}},
		{"audit-breaches", report.Page{Title: "keyflow audit", Generated: t0,
			Records: records(t, "lifecycle-clean", "lifecycle-delete-before-buffer", "quarantine-without-approval", "lifecycle-secret-in-output")}},
		{"estate", report.Page{Title: "keyflow report", Generated: t0, Estate: gather(t, sb, rep.MemberAccounts)}},
		{"estate-hygiene", report.Page{Title: "keyflow report", Generated: t0, Estate: withHygiene(gather(t, sb, rep.MemberAccounts[:1]))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := report.Write(&b, c.page); err != nil {
				t.Fatal(err)
			}
			got := b.Bytes()
			// Nothing on the page is secret-shaped, nothing is fetched.
			if audit.LooksLikeSecret(string(got)) {
				t.Error("the page holds a secret-shaped string")
			}
			for _, bad := range []string{"<script", "http://", "https://", "<link", "@import", "src="} {
				if bytes.Contains(got, []byte(bad)) {
					t.Errorf("the page is not self-contained: it has %q", bad)
				}
			}
			path := filepath.Join("testdata", c.name+".html")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./report -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what Write makes now; read both in a browser, then go test ./report -update", path)
			}
		})
	}
}

// withHygiene adds an MFA and password-policy part as the CLI builds it:
// one user of each state and two accounts' policies.
func withHygiene(e *report.Estate) *report.Estate {
	acct := e.Accounts[0]
	e.Hygiene = &report.Hygiene{
		GraceDays: 7,
		Baseline:  "minimum length 14, uppercase, lowercase, numbers and symbols, reuse prevention 24, maximum age 90 days",
		Note:      "Grace deadlines are the MFA executions' own.",
		NoMFA: []report.MFAUser{
			{Account: acct, Name: "alice", State: report.MFAInGrace, Notified: t0.Add(-48 * time.Hour), Deadline: t0.Add(5 * 24 * time.Hour)},
			{Account: acct, Name: "bob", State: report.MFANotNotified, Detail: "the next hygiene run tells them"},
			{Account: acct, Name: "carol", State: report.MFANeedsPerson, Detail: "the enforcement ended FAILED on 2026-02-27"},
		},
		Attached: []report.MFAUser{
			{Account: acct, Name: "dave", State: report.MFAEnforced, Notified: t0.Add(-10 * 24 * time.Hour), Deadline: t0.Add(-3 * 24 * time.Hour)},
			{Account: acct, Name: "erin", State: report.MFAToRelease, Detail: "enrolled: the next hygiene run detaches it"},
		},
		Exempt: []report.MFAUser{{Account: acct, Name: "frank", State: report.MFAExempt, Detail: "break-glass (security@example.com) until 2027-01-01"}},
		PasswordPolicies: []report.PasswordPolicy{
			{Account: acct, Findings: []string{"no account password policy is set: IAM's default applies", "minimum length 0, baseline 14"}},
			{Account: "210987654321", Present: true, Compliant: true},
		},
	}
	return e
}

// TestHygieneSection: each MFA user is listed with its state and, when in
// grace, the deadline; each account's password policy with its findings;
// the plain users-without-MFA list gives way to it.
func TestHygieneSection(t *testing.T) {
	sb, rep := seeded(t)
	var b bytes.Buffer
	e := withHygiene(gather(t, sb, rep.MemberAccounts[:1]))
	if err := report.Write(&b, report.Page{Title: "t", Generated: t0, Estate: e}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<section id="hygiene">`,
		"<td>alice</td><td>in grace</td><td>2026-02-27 09:00:00Z</td><td>2026-03-06 09:00:00Z</td>",
		"<td>bob</td><td>not yet notified</td>",
		"<h3>Users the MFA-required policy is attached to (2)</h3>",
		"<h3>Exempt users (1)</h3>",
		"none set</span></td><td>no account password policy is set: IAM&#39;s default applies; minimum length 0, baseline 14</td>",
		"meets the baseline",
		"<b>1</b>password policies below the baseline",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "console password, no MFA device") {
		t.Error("the plain list of users without MFA is shown beside the hygiene section")
	}
}

// TestBreachesFirst: the breaches are the first section, each named with
// its code and events; a clean audit says so instead.
func TestBreachesFirst(t *testing.T) {
	var b bytes.Buffer
	if err := report.Write(&b, report.Page{Title: "t", Generated: t0, Records: records(t, "lifecycle-clean", "lifecycle-delete-before-buffer")}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	first := strings.Index(page, "<section")
	if !strings.HasPrefix(page[first:], `<section class="breaches" id="breaches">`) {
		t.Fatalf("the first section is not the breaches: %.80s", page[first:])
	}
	if !strings.Contains(page, "delete-before-buffer") || !strings.Contains(page, "1 breach(es)") {
		t.Error("the breach is not named")
	}
	b.Reset()
	if err := report.Write(&b, report.Page{Title: "t", Generated: t0, Records: records(t, "lifecycle-clean")}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<h2 class="ok">No breaches</h2>`) {
		t.Error("a clean audit does not say so")
	}
}

var segRE = regexp.MustCompile(`<rect class="seg wait" x="(\d+)" y="14" width="(\d+)"`)

// TestWaitsToScale: on one page, each wait's bar is as long as its time on
// the common scale: the lifecycle's 15-day and 30-day waits are 1:2, and
// the same wait is as long in every execution.
func TestWaitsToScale(t *testing.T) {
	var b bytes.Buffer
	recs := records(t, "lifecycle-clean", "lifecycle-min-inactive", "quarantine-approved")
	if err := report.Write(&b, report.Page{Title: "t", Generated: t0, Records: recs}); err != nil {
		t.Fatal(err)
	}
	var widths []int
	for _, m := range segRE.FindAllStringSubmatch(b.String(), -1) {
		w, _ := strconv.Atoi(m[2])
		widths = append(widths, w)
	}
	var want []float64
	for _, r := range recs {
		for _, w := range r.Waits {
			if w.Kind == "wait" {
				want = append(want, float64(w.Seconds))
			}
		}
	}
	if len(widths) != len(want) || len(want) < 4 {
		t.Fatalf("%d wait bars for %d waits", len(widths), len(want))
	}
	px := float64(widths[0]) / want[0]
	for i := range want {
		if d := float64(widths[i]) - want[i]*px; d > 1.5 || d < -1.5 {
			t.Errorf("wait %d: %d px for %.0f s; the scale gives %.1f px", i, widths[i], want[i], want[i]*px)
		}
	}
	for _, label := range []string{">15 days</text>", ">30 days</text>"} {
		if !strings.Contains(b.String(), label) {
			t.Errorf("no wait labelled %q", label)
		}
	}
}

// TestWriteRefusesSecrets: whatever puts a secret-shaped string on the page
// (here a reason typed by an approver), nothing is written.
func TestWriteRefusesSecrets(t *testing.T) {
	recs := records(t, "quarantine-approved")
	recs[0].Approvals[0].Reason = "rotated to wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	var b bytes.Buffer
	err := report.Write(&b, report.Page{Title: "t", Generated: t0, Records: recs})
	if err == nil || b.Len() != 0 || !strings.HasPrefix(err.Error(), "report: ") {
		t.Fatalf("error %v, %d bytes written", err, b.Len())
	}
	if strings.Contains(err.Error(), "wJalr") {
		t.Error("the error repeats the secret")
	}
}

// TestGather reads a seeded Organization and finds what the seed put there.
func TestGather(t *testing.T) {
	sb, rep := seeded(t)
	ctx := context.Background()
	acct := rep.MemberAccounts[0]
	// One user quarantined, as the handler marks one.
	users, err := sb.IAM(acct).ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	q := aws.ToString(users.Users[0].UserName)
	if _, err := sb.IAM(acct).TagUser(ctx, &iam.TagUserInput{UserName: &q, Tags: []iamtypes.Tag{{Key: aws.String("keyflow:quarantine"), Value: aws.String("none")}}}); err != nil {
		t.Fatal(err)
	}
	e := gather(t, sb, rep.MemberAccounts)
	total := 0
	for _, b := range e.Buckets {
		total += b.Count
	}
	cases := []struct {
		what      string
		got, want int
	}{
		{"users", e.Users, rep.Users},
		{"keys", e.Keys, rep.Keys},
		{"keys in the buckets", total, rep.Keys},
		{"keys under 45 days", e.Buckets[0].Count, rep.KeysUnder45},
		{"keys 45 to 59 days", e.Buckets[1].Count, rep.Keys45To60},
		{"keys 60 to 89 days", e.Buckets[2].Count, rep.Keys60To90},
		{"keys 90 days and older", e.Buckets[3].Count + e.Buckets[4].Count + e.Buckets[5].Count, rep.Keys90Plus},
		{"users with two keys", len(e.TwoKeys), rep.UsersWithTwoKeys},
		{"console users without MFA", len(e.NoMFA), rep.ConsoleUsers - rep.MFAUsers},
		{"quarantined users", len(e.Quarantined), 1},
		{"inactive keys", len(e.Inactive), rep.Keys - rep.ActiveKeys},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
		}
	}
	if len(e.Due) == 0 {
		t.Fatal("no key due in a seed with keys of every age")
	}
	for _, k := range e.Due {
		if k.AgeDays < 45 || k.Status != "Active" {
			t.Errorf("due: %+v", k)
		}
	}
	if e.Quarantined[0].Name != q {
		t.Errorf("quarantined %+v, want %s", e.Quarantined, q)
	}
	if _, err := report.Gather(ctx, nil, nil, report.Policy{RotationDays: 60, InactiveDays: 45, BufferDays: 90}, t0); err == nil {
		t.Error("a policy that deactivates before it rotates was taken")
	}
}
