package report

import (
	"fmt"
	"time"

	"github.com/keyflow/keyflow/audit"
)

// Timeline is one execution drawn on the page's common time scale: the
// same number of pixels per day on every timeline, so that a 45-day wait
// is three times as long as a 15-day one, here and in the next execution.
type Timeline struct {
	Record        *audit.Record
	Name          string // the execution's name, the last part of its ARN
	Width, Height int
	AxisX, AxisY  int
	AxisEnd       int
	Span          string // the execution's length, as a person reads it
	Segments      []Segment
	Marks         []Mark
	Ticks         []Tick
}

// Segment is a wait or an approval wait: a bar from its start to its end.
type Segment struct {
	X, W     int
	Kind     string // "wait" or "approval"
	State    string
	Duration string
	Open     bool // still waiting
}

// Mark is one handler call (a dot) or decision (a diamond) at its time.
type Mark struct {
	X        int
	Label    string
	Approval bool
	Failed   bool
}

// Tick is a labelled point of the axis.
type Tick struct {
	X     int
	Label string
}

const (
	timelineW    = 900
	timelineH    = 64
	timelineLeft = 16
	axisY        = 40
	// maxTimelines bounds the page: an audit of thousands of executions
	// draws the first ones and says how many it left out.
	maxTimelines = 250
)

// scale is the common px per second of a page's timelines: the longest
// execution fills the width; nothing shorter than a day sets it, so that a
// page of one-minute executions does not draw seconds as miles.
func scale(records []*audit.Record, now time.Time) float64 {
	longest := 24 * time.Hour
	for _, r := range records {
		if d := end(r, now).Sub(r.Start); d > longest {
			longest = d
		}
	}
	return float64(timelineW-2*timelineLeft) / longest.Seconds()
}

// end is when an execution ended, or now while it runs.
func end(r *audit.Record, now time.Time) time.Time {
	if !r.End.IsZero() {
		return r.End
	}
	if now.After(r.Start) {
		return now
	}
	return r.Start
}

func layoutTimeline(r *audit.Record, pxPerSec float64, now time.Time) Timeline {
	x := func(t time.Time) int {
		if t.IsZero() || t.Before(r.Start) {
			return timelineLeft
		}
		return timelineLeft + int(t.Sub(r.Start).Seconds()*pxPerSec+0.5)
	}
	stop := end(r, now)
	t := Timeline{Record: r, Name: lastPart(r.ExecutionArn), Width: timelineW, Height: timelineH,
		AxisX: timelineLeft, AxisY: axisY, AxisEnd: max(x(stop), timelineLeft+1), Span: Duration(stop.Sub(r.Start))}
	for _, w := range r.Waits {
		wend, open := w.End, w.End.IsZero()
		if open {
			wend = stop
		}
		s := Segment{X: x(w.Start), Kind: w.Kind, State: w.State, Open: open, Duration: Duration(wend.Sub(w.Start))}
		s.W = max(x(wend)-s.X, 2)
		t.Segments = append(t.Segments, s)
	}
	for _, a := range r.Actions {
		at := a.Time
		if at.IsZero() {
			at = a.Scheduled
		}
		label := a.Handler
		if a.Result != "" {
			label += ": " + a.Result
		}
		if a.Error != "" {
			label += ": " + a.Error
		}
		t.Marks = append(t.Marks, Mark{X: x(at), Label: label, Failed: a.Error != ""})
	}
	for _, a := range r.Approvals {
		label := "approval: " + a.Decision
		if a.Approver != "" {
			label += " by " + a.Approver
		}
		t.Marks = append(t.Marks, Mark{X: x(a.At), Label: label, Approval: true})
	}
	t.Ticks = []Tick{{X: timelineLeft, Label: r.Start.UTC().Format("2006-01-02")}}
	if x(stop)-timelineLeft > 120 {
		t.Ticks = append(t.Ticks, Tick{X: x(stop), Label: stop.UTC().Format("2006-01-02")})
	}
	return t
}

// Duration reads a length of time as a person does: "45 days", "3 h",
// "12 min", "4 s".
func Duration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		days := d.Hours() / 24
		if days == float64(int(days)) {
			return fmt.Sprintf("%d days", int(days))
		}
		return fmt.Sprintf("%.1f days", days)
	case d >= 2*time.Hour:
		return fmt.Sprintf("%.0f h", d.Hours())
	case d >= 2*time.Minute:
		return fmt.Sprintf("%.0f min", d.Minutes())
	case d < 0:
		return "0 s"
	}
	return fmt.Sprintf("%.0f s", d.Seconds())
}

func lastPart(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == ':' {
			return arn[i+1:]
		}
	}
	return arn
}
