package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/states"
)

// Page is everything one report shows. Records, Workflows and Estate are
// each optional: `keyflow audit --html` has no Estate, `keyflow report`
// may have no records.
type Page struct {
	Title string
	// Generated is when the report was made (the virtual clock's time in
	// the demo), shown on the page; it is a parameter so that the same
	// input makes the same bytes.
	Generated time.Time
	Records   []*audit.Record
	Workflows []Workflow
	Estate    *Estate
	// Head is the chain head of Records, when they were chained.
	Head string
}

// Workflow is one workflow's definition, drawn as a diagram.
type Workflow struct {
	Name       string
	Definition *states.Definition
}

//go:embed page.html.tmpl
var pageTmpl string

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"day": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"short":   func(s string, n int) string { return truncate(s, n) },
	"last":    lastPart,
	"join":    strings.Join,
	"add":     func(a, b int) int { return a + b },
	"sub":     func(a, b int) int { return a - b },
	"half":    func(a int) int { return a / 2 },
	"limit":   limit,
	"more":    func(n, max int) int { return n - max },
	"nonzero": func(n int) bool { return n != 0 },
	"users": func(title string, us []User, max int) usersTable {
		return usersTable{Title: title, Users: us, Max: max}
	},
	"mfa": func(title string, us []MFAUser, max int) mfaTable {
		return mfaTable{Title: title, Users: us, Max: max}
	},
	"events": func(ids []int64) string { return strings.Trim(fmt.Sprint(ids), "[]") },
}).Parse(pageTmpl))

// view is what the template reads: the page plus what is computed from it.
type view struct {
	Page
	Breaches    []breachRow
	Approvals   []approvalRow
	Diagrams    []Diagram
	Timelines   []Timeline
	Omitted     int // timelines not drawn (maxTimelines)
	Summary     []count
	Chart       *chart
	MaxRows     int
	ScaleNote   string
	ExecsByFlow []count
}

type breachRow struct {
	Record *audit.Record
	audit.Breach
}

type approvalRow struct {
	Record *audit.Record
	audit.Approval
}

type usersTable struct {
	Title string
	Users []User
	Max   int
}

type mfaTable struct {
	Title string
	Users []MFAUser
	Max   int
}

type count struct {
	Label string
	N     int
}

// chart is the key-age bar chart's geometry.
type chart struct {
	Width, Height, Base int
	Bars                []bar
}

type bar struct {
	X, Y, W, H int
	LX         int
	Label      string
	Count      int
	Due        bool
}

// maxRows bounds each table of the estate; the rest is counted.
const maxRows = 50

func limit(n int) int { return min(n, maxRows) }

// Write renders p as one self-contained HTML page: inline CSS and SVG, no
// script, no fetch of anything. It refuses to write a page on which
// anything looks like a secret access key (audit.LooksLikeSecret), whatever
// put it there.
func Write(w io.Writer, p Page) error {
	v := view{Page: p, MaxRows: maxRows}
	for _, r := range p.Records {
		for _, b := range r.Breaches {
			v.Breaches = append(v.Breaches, breachRow{r, b})
		}
		for _, a := range r.Approvals {
			v.Approvals = append(v.Approvals, approvalRow{r, a})
		}
	}
	for _, wf := range p.Workflows {
		v.Diagrams = append(v.Diagrams, Layout(wf.Name, wf.Definition))
	}
	if len(p.Records) > 0 {
		px := scale(p.Records, p.Generated)
		for i, r := range p.Records {
			if i == maxTimelines {
				v.Omitted = len(p.Records) - i
				break
			}
			v.Timelines = append(v.Timelines, layoutTimeline(r, px, p.Generated))
		}
		v.ScaleNote = fmt.Sprintf("Every timeline has the same scale: %s across the full width.",
			Duration(time.Duration(float64(timelineW-2*timelineLeft)/px)*time.Second))
		flows := map[string]int{}
		for _, r := range p.Records {
			flows[r.Workflow+" "+strings.ToLower(r.Status)]++
		}
		for k, n := range flows {
			v.ExecsByFlow = append(v.ExecsByFlow, count{k, n})
		}
		sort.Slice(v.ExecsByFlow, func(i, j int) bool { return v.ExecsByFlow[i].Label < v.ExecsByFlow[j].Label })
	}
	if e := p.Estate; e != nil {
		v.Chart = keyChart(e)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if audit.LooksLikeSecret(buf.String()) {
		return fmt.Errorf("report: the page would show a string shaped like a secret access key; nothing written")
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func keyChart(e *Estate) *chart {
	const barW, gap, top, height, left = 90, 24, 20, 180, 20
	c := &chart{Width: left*2 + len(e.Buckets)*(barW+gap), Height: top + height + 44, Base: top + height}
	m := e.MaxBucket()
	for i, b := range e.Buckets {
		h := b.Count * height / m
		if b.Count > 0 && h < 2 {
			h = 2
		}
		x := left + i*(barW+gap)
		c.Bars = append(c.Bars, bar{X: x, Y: top + height - h, W: barW, H: h, LX: x + barW/2, Label: b.Label, Count: b.Count, Due: b.Due})
	}
	return c
}
