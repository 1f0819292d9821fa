package report

import (
	"fmt"
	"strings"

	"github.com/keyflow/keyflow/states"
)

// Diagram is a workflow's state graph laid out for SVG: the top-level
// states in layers (a state sits one layer below the furthest state that
// leads to it), transitions as paths. A Map or Parallel is one node: its
// inner states are its own graph, not the workflow's path.
type Diagram struct {
	Name          string
	Width, Height int
	Nodes         []Node
	Edges         []Edge
}

// Node is one state's box.
type Node struct {
	Name, Kind       string
	X, Y, W, H       int
	CX, CY           int // the centre, for labels
	Start, Terminal  bool
	Rounded, Diamond bool
}

// Edge is one transition: Path is SVG path data; Catch edges are drawn
// dashed, back edges (loops) around the side.
type Edge struct {
	From, To string
	Path     string
	Label    string
	LX, LY   int
	Anchor   string // the label's text-anchor: it leans away from its sibling edges
	Catch    bool
	Back     bool
}

const (
	nodeW, nodeH = 190, 34
	gapX, gapY   = 26, 34
	margin       = 24
	// maxDiagramStates keeps a pathological definition from drawing an
	// unreadable page: past it the diagram lists no states, only a note.
	maxDiagramStates = 300
)

// Layout draws def's top level. It never fails: a definition too large to
// draw gives an empty diagram, which the page says.
func Layout(name string, def *states.Definition) Diagram {
	d := Diagram{Name: name}
	if def == nil || len(def.States.Names) == 0 || len(def.States.Names) > maxDiagramStates {
		return d
	}
	ss := def.States
	type arc struct {
		to, label string
		catch     bool
	}
	out := map[string][]arc{}
	for _, n := range ss.Names {
		s := ss.ByName[n]
		if s == nil {
			continue
		}
		var catches []states.Catcher
		switch st := s.(type) {
		case *states.Choice:
			for _, r := range st.Choices {
				out[n] = append(out[n], arc{to: r.Next, label: ruleLabel(r)})
			}
			if st.Default != "" {
				out[n] = append(out[n], arc{to: st.Default, label: "otherwise"})
			}
		case *states.Task:
			catches = st.Catch
		case *states.Map:
			catches = st.Catch
		case *states.Parallel:
			catches = st.Catch
		}
		if nx := s.Common().Next; nx != "" {
			out[n] = append(out[n], arc{to: nx})
		}
		for _, c := range catches {
			out[n] = append(out[n], arc{to: c.Next, label: strings.Join(c.ErrorEquals, ", "), catch: true})
		}
	}

	// Back edges are those that close a cycle in a depth-first walk from
	// StartAt; without them the graph is acyclic and layers are longest
	// paths.
	back := map[[2]string]bool{}
	state := map[string]int{} // 1 on the stack, 2 done
	var order []string        // reverse post-order: a topological order
	var dfs func(n string, depth int)
	dfs = func(n string, depth int) {
		if depth > maxDiagramStates {
			return
		}
		state[n] = 1
		for _, a := range out[n] {
			if ss.ByName[a.to] == nil {
				continue
			}
			switch state[a.to] {
			case 0:
				dfs(a.to, depth+1)
			case 1:
				back[[2]string{n, a.to}] = true
			}
		}
		state[n] = 2
		order = append(order, n)
	}
	starts := []string{def.StartAt}
	// States nothing reaches (invalid, but drawn all the same) start their
	// own walk so that every state gets a layer.
	starts = append(starts, ss.Names...)
	for _, s := range starts {
		if ss.ByName[s] != nil && state[s] == 0 {
			dfs(s, 0)
		}
	}
	layer := map[string]int{}
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		for _, a := range out[n] {
			if ss.ByName[a.to] == nil || back[[2]string{n, a.to}] {
				continue
			}
			if l := layer[n] + 1; l > layer[a.to] {
				layer[a.to] = l
			}
		}
	}
	// Within a layer, states keep document order.
	var rows [][]string
	for _, n := range ss.Names {
		if ss.ByName[n] == nil {
			continue
		}
		l := layer[n]
		for len(rows) <= l {
			rows = append(rows, nil)
		}
		rows[l] = append(rows[l], n)
	}
	widest := 0
	for _, r := range rows {
		widest = max(widest, len(r))
	}
	d.Width = 2*margin + widest*nodeW + (widest-1)*gapX + 120 // room for loops on the right
	d.Height = 2*margin + len(rows)*nodeH + (len(rows)-1)*gapY
	at := map[string]*Node{}
	for l, r := range rows {
		rowW := len(r)*nodeW + (len(r)-1)*gapX
		x0 := margin + (widest*nodeW+(widest-1)*gapX-rowW)/2
		for i, n := range r {
			s := ss.ByName[n]
			nd := Node{Name: n, Kind: string(s.Type()), X: x0 + i*(nodeW+gapX), Y: margin + l*(nodeH+gapY), W: nodeW, H: nodeH}
			nd.CX, nd.CY = nd.X+nd.W/2, nd.Y+nd.H/2
			nd.Start = n == def.StartAt
			nd.Terminal = s.Type() == states.TypeSucceed || s.Type() == states.TypeFail || s.Common().End
			nd.Rounded = s.Type() == states.TypeWait
			nd.Diamond = s.Type() == states.TypeChoice
			d.Nodes = append(d.Nodes, nd)
		}
	}
	for i := range d.Nodes {
		at[d.Nodes[i].Name] = &d.Nodes[i]
	}
	loop := 0
	for _, n := range ss.Names {
		from := at[n]
		if from == nil {
			continue
		}
		for _, a := range out[n] {
			to := at[a.to]
			if to == nil {
				continue
			}
			e := Edge{From: n, To: a.to, Label: a.label, Catch: a.catch, Back: back[[2]string{n, a.to}]}
			switch {
			case e.Back:
				// Around the right of the drawing, a little further out
				// for each loop so that two loops stay apart.
				loop++
				side := margin + widest*nodeW + (widest-1)*gapX + 16 + (loop%5)*18
				e.Path = fmt.Sprintf("M %d %d C %d %d, %d %d, %d %d", from.X+from.W, from.CY, side, from.CY, side, to.CY, to.X+to.W, to.CY)
				e.LX, e.LY, e.Anchor = side+4, (from.CY+to.CY)/2, "start"
			default:
				x1, y1 := from.CX, from.Y+from.H
				x2, y2 := to.CX, to.Y
				mid := (y1 + y2) / 2
				e.Path = fmt.Sprintf("M %d %d C %d %d, %d %d, %d %d", x1, y1, x1, mid, x2, mid, x2, y2)
				e.LX, e.LY, e.Anchor = (x1+x2)/2+4, mid-3, "start"
				if x2 < x1 {
					e.LX, e.Anchor = (x1+x2)/2-4, "end"
				}
			}
			d.Edges = append(d.Edges, e)
		}
	}
	return d
}

// ruleLabel is a short reading of a Choice rule: the variable's last field
// and the operand.
func ruleLabel(r states.ChoiceRule) string {
	switch {
	case len(r.And) > 0:
		return joinRules(r.And, " and ")
	case len(r.Or) > 0:
		return joinRules(r.Or, " or ")
	case r.Not != nil:
		return "not " + ruleLabel(*r.Not)
	case r.Operator != "":
		v := r.Variable
		if i := strings.LastIndex(v, "."); i >= 0 {
			v = v[i+1:]
		}
		op := map[string]string{
			"StringEquals": "=", "BooleanEquals": "=", "NumericEquals": "=",
			"NumericGreaterThanEquals": ">=", "NumericGreaterThan": ">", "NumericLessThan": "<", "NumericLessThanEquals": "<=",
		}[r.Operator]
		if op == "" {
			op = r.Operator
		}
		return truncate(fmt.Sprintf("%s %s %v", v, op, r.Value), 40)
	}
	return "rule"
}

func joinRules(rs []states.ChoiceRule, sep string) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = ruleLabel(r)
	}
	return truncate(strings.Join(parts, sep), 40)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
