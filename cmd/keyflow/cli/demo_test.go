package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/audit"
)

// The demo runs once for all the tests that read it: it is the slowest
// thing in the package, and what it leaves behind does not change.
var demoOnce struct {
	sync.Once
	dir    string
	out    string
	run    *demoRun
	err    error
	report string
}

func theDemo(t *testing.T) (string, *demoRun, string) {
	t.Helper()
	demoOnce.Do(func() {
		demoOnce.dir, demoOnce.err = os.MkdirTemp("", "keyflow-demo-test")
		if demoOnce.err != nil {
			return
		}
		demoOnce.report = filepath.Join(demoOnce.dir, "keyflow-report.html")
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		demoOnce.run, demoOnce.err = runDemo(ctx, demoOptions{db: filepath.Join(demoOnce.dir, "demo.db"), html: demoOnce.report, accounts: 3, users: 30}, &out)
		demoOnce.out = out.String()
	})
	require.NoError(t, demoOnce.err, demoOnce.out)
	return demoOnce.out, demoOnce.run, demoOnce.report
}

func TestMain(m *testing.M) {
	code := m.Run()
	if demoOnce.dir != "" {
		os.RemoveAll(demoOnce.dir)
	}
	os.Exit(code)
}

// masks hide what varies between runs of the demo: wall-clock times, the
// paths of the temporary folder, the hashes of records that carry new key
// ids (random, as IAM's are).
var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`in \d+(\.\d+)?(ms|s|µs)\b`), "in TIME"},
	{regexp.MustCompile(`Done in [^ ]+\.`), "Done in TIME."},
	{regexp.MustCompile(`head [0-9a-f]{64}`), "head HASH"},
	{regexp.MustCompile(`/[^ ]*keyflow-demo-test[^/ ]*`), "DIR"},
}

// TestDemoGolden: the demo's printed story, figures and all, with what
// varies between runs masked; go test ./cmd/keyflow/cli -run DemoGolden
// -update rewrites it.
func TestDemoGolden(t *testing.T) {
	out, run, _ := theDemo(t)
	got := out
	for _, m := range masks {
		got = m.re.ReplaceAllString(got, m.with)
	}
	path := filepath.Join("testdata", "demo.golden")
	if *updateGraphs {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "go test ./cmd/keyflow/cli -run DemoGolden -update writes it")
	assert.Equal(t, string(want), got)

	// What the story says holds: zero breaches, one approval by the named
	// approver, every lifecycle succeeded.
	breaches, approvals := 0, 0
	for _, r := range run.Records {
		breaches += len(r.Breaches)
		for _, a := range r.Approvals {
			approvals++
			assert.Equal(t, "arn:aws:iam::111111111111:user/"+demoApprover, a.Approver)
			assert.Equal(t, "approve", a.Decision)
		}
		assert.Equal(t, "SUCCEEDED", r.Status, r.ExecutionArn)
	}
	assert.Zero(t, breaches)
	assert.Equal(t, 1, approvals)
	assert.Len(t, run.Estate.Quarantined, 1)
	assert.False(t, audit.LooksLikeSecret(out))
}

// TestDemoAuditTampered: `keyflow audit` over the demo's own executions
// finds nothing; one lifecycle's history tampered with (its delete moved
// before the buffer point) is then the only breach it reports.
func TestDemoAuditTampered(t *testing.T) {
	_, run, _ := theDemo(t)
	out, _, err := runAuditOn(t, run.Executions, auditOptions{})
	require.NoError(t, err, out)
	assert.Contains(t, out, "audited 48 execution(s)")
	assert.Contains(t, out, " 0 breach(es)")

	x := &audit.Executions{PageSize: 7}
	var victim string
	for _, r := range run.Records {
		events, err := run.Executions.GetExecutionHistory(context.Background(), historyInput(r.ExecutionArn))
		require.NoError(t, err)
		h := audit.History{ExecutionArn: r.ExecutionArn, Events: events.Events}
		if victim == "" && r.Workflow == "lifecycle" {
			var moved int
			h.Events, moved = deleteBeforeBuffer(t, h.Events)
			if moved == 1 {
				victim = executionName(r.ExecutionArn)
			}
		}
		require.NoError(t, x.Add(h))
	}
	require.NotEmpty(t, victim)
	out, _, err = runAuditOn(t, x, auditOptions{})
	var ee *exitError
	require.True(t, errors.As(err, &ee), "error %v", err)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "BREACH ") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 1, out)
	assert.True(t, strings.HasPrefix(lines[0], "BREACH "+victim+" delete-before-buffer: "), lines[0])
}

var (
	svgShape = regexp.MustCompile(`<(rect|path|circle|line)\b[^>]*>`)
	geometry = regexp.MustCompile(`\b(width|height|d|r|x2)="([^"]*)"`)
)

// TestDemoReportInBrowser opens the demo's report in headless Chromium and
// reads the DOM it rendered: the workflow diagrams and the timelines are
// there with real geometry, the page holds nothing secret-shaped, and a
// screenshot is taken; with -update it replaces the one kept in testdata/
// for a person to review (a plain run leaves the tree as it was).
func TestDemoReportInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed: apt-get install chromium (CI's .ci/run installs it) to render the report in a browser")
	}
	_, _, page := theDemo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,4400"}
	dom, err := exec.CommandContext(ctx, chromium, append(args, "--dump-dom", "file://"+page)...).Output()
	require.NoError(t, err)
	html := string(dom)

	count := func(class string) int { return strings.Count(html, `class="`+class) }
	assert.Equal(t, 3, count("workflow\""), "one diagram per workflow that ran: inventory, lifecycle, quarantine")
	assert.GreaterOrEqual(t, count("tl\""), 48, "a timeline per execution")
	assert.GreaterOrEqual(t, count("seg wait"), 90, "the lifecycles' waits")
	assert.Contains(t, html, `<h2 class="ok">No breaches</h2>`)
	assert.Contains(t, html, `id="key-ages"`)
	assert.Contains(t, html, demoApprover)
	// Every shape the browser kept has non-empty geometry.
	shapes := 0
	for _, s := range svgShape.FindAllString(html, -1) {
		for _, g := range geometry.FindAllStringSubmatch(s, -1) {
			if g[2] == "" || g[2] == "0" {
				t.Errorf("a shape without geometry: %s", s)
			}
		}
		shapes++
	}
	assert.Greater(t, shapes, 500)
	assert.False(t, audit.LooksLikeSecret(html), "the rendered page holds a secret-shaped string")

	shot := filepath.Join(t.TempDir(), "demo-report.png")
	if *updateGraphs {
		shot = filepath.Join("testdata", "demo-report.png")
	}
	cmd := exec.CommandContext(ctx, chromium, append(args, "--screenshot="+mustAbs(t, shot), "file://"+page)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("screenshot: %v: %s", err, out)
	}
	info, err := os.Stat(shot)
	require.NoError(t, err)
	assert.Greater(t, info.Size(), int64(10000), "the screenshot is blank")
}

func historyInput(arn string) *sfn.GetExecutionHistoryInput {
	return &sfn.GetExecutionHistoryInput{ExecutionArn: &arn}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}
