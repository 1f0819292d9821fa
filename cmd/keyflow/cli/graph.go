package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/states"
)

func newGraphCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:       "graph NAME",
		Short:     "Draw a workflow (" + strings.Join(statemachines.Names(), ", ") + ") as a Mermaid or Graphviz graph",
		Args:      cobra.ExactArgs(1),
		ValidArgs: statemachines.Names(),
		RunE: func(cmd *cobra.Command, args []string) error {
			def, err := statemachines.Build(args[0], statemachines.Options{})
			if err != nil {
				return invalid("graph: %v", err)
			}
			switch format {
			case "mermaid":
				writeMermaid(cmd.OutOrStdout(), def)
			case "dot":
				writeDot(cmd.OutOrStdout(), args[0], def)
			default:
				return invalid("graph: --format must be mermaid or dot, got %q", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "mermaid", "mermaid or dot")
	return cmd
}

// edge is one transition of the graph: plain (Next), a Choice rule, the
// Choice's default, or a Catch.
type edge struct {
	from, to, label string
	catch           bool
}

// graph flattens a definition: each state's id is its scope's path so that
// states of the same name in two Map processors stay apart.
type graph struct {
	nodes  []gnode
	edges  []edge
	groups []ggroup // Map processors and Parallel branches
}

type gnode struct{ id, name, kind, group string }

type ggroup struct{ id, label, parent string }

func buildGraph(def *states.Definition) *graph {
	g := &graph{}
	g.scope("", "", def.StartAt, def.States)
	return g
}

func nodeID(scope, name string) string {
	var b strings.Builder
	b.WriteString("s_")
	key := name
	if scope != "" {
		key = strings.TrimPrefix(scope, "/") + "/" + name
	}
	// Letters and digits stay; anything else becomes its hex code between
	// underscores, so two state names never share an id.
	for _, r := range key {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteString(fmt.Sprintf("_%x_", r))
		}
	}
	return b.String()
}

func (g *graph) scope(scope, group, start string, ss states.States) {
	g.edges = append(g.edges, edge{from: nodeID(scope, "(start)"), to: nodeID(scope, start)})
	g.nodes = append(g.nodes, gnode{id: nodeID(scope, "(start)"), kind: "start", group: group})
	for _, name := range ss.Names {
		s := ss.ByName[name]
		id := nodeID(scope, name)
		g.nodes = append(g.nodes, gnode{id: id, name: name, kind: string(s.Type()), group: group})
		switch st := s.(type) {
		case *states.Choice:
			for _, r := range st.Choices {
				g.edges = append(g.edges, edge{from: id, to: nodeID(scope, r.Next), label: ruleLabel(r)})
			}
			if st.Default != "" {
				g.edges = append(g.edges, edge{from: id, to: nodeID(scope, st.Default), label: "otherwise"})
			}
		case *states.Task:
			g.next(scope, id, st.Common())
			g.catches(scope, id, st.Catch)
		case *states.Map:
			sub := scope + "/" + name
			g.groups = append(g.groups, ggroup{id: nodeID(sub, "(group)"), label: name + " (each item)", parent: group})
			g.scope(sub, nodeID(sub, "(group)"), st.ItemProcessor.StartAt, st.ItemProcessor.States)
			g.next(scope, id, st.Common())
			g.catches(scope, id, st.Catch)
			g.edges = append(g.edges, edge{from: id, to: nodeID(sub, "(start)"), label: "items"})
		case *states.Parallel:
			for i, br := range st.Branches {
				sub := fmt.Sprintf("%s/%s/%d", scope, name, i)
				g.groups = append(g.groups, ggroup{id: nodeID(sub, "(group)"), label: fmt.Sprintf("%s branch %d", name, i+1), parent: group})
				g.scope(sub, nodeID(sub, "(group)"), br.StartAt, br.States)
				g.edges = append(g.edges, edge{from: id, to: nodeID(sub, "(start)"), label: "branch"})
			}
			g.next(scope, id, st.Common())
			g.catches(scope, id, st.Catch)
		default:
			if c, ok := s.(interface{ Common() *states.CommonFields }); ok {
				g.next(scope, id, c.Common())
			}
		}
	}
}

func (g *graph) next(scope, id string, c *states.CommonFields) {
	if c.Next != "" {
		g.edges = append(g.edges, edge{from: id, to: nodeID(scope, c.Next)})
	}
}

func (g *graph) catches(scope, id string, cs []states.Catcher) {
	for _, c := range cs {
		g.edges = append(g.edges, edge{from: id, to: nodeID(scope, c.Next), label: strings.Join(c.ErrorEquals, ", "), catch: true})
	}
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
		return fmt.Sprintf("%s %s %v", v, op, r.Value)
	}
	return "rule"
}

func joinRules(rs []states.ChoiceRule, sep string) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = ruleLabel(r)
	}
	return strings.Join(parts, sep)
}

// writeMermaid draws a flowchart: tasks as boxes, choices as diamonds,
// waits as stadiums, ends as circles; Catch edges dotted with the errors.
func writeMermaid(w io.Writer, def *states.Definition) {
	g := buildGraph(def)
	fmt.Fprintln(w, "flowchart TD")
	shape := func(n gnode) string {
		label := strings.ReplaceAll(n.name, `"`, "'")
		switch n.kind {
		case "start":
			return n.id + "(( ))"
		case "Choice":
			return fmt.Sprintf(`%s{"%s"}`, n.id, label)
		case "Wait":
			return fmt.Sprintf(`%s(["%s"])`, n.id, label)
		case "Succeed", "Fail":
			return fmt.Sprintf(`%s((("%s")))`, n.id, label)
		case "Pass":
			return fmt.Sprintf(`%s[/"%s"/]`, n.id, label)
		}
		return fmt.Sprintf(`%s["%s"]`, n.id, label)
	}
	var writeGroup func(group, indent string)
	writeGroup = func(group, indent string) {
		for _, n := range g.nodes {
			if n.group == group {
				fmt.Fprintf(w, "%s%s\n", indent, shape(n))
			}
		}
		for _, sg := range g.groups {
			if sg.parent == group {
				fmt.Fprintf(w, "%ssubgraph %s[\"%s\"]\n", indent, sg.id, sg.label)
				writeGroup(sg.id, indent+"  ")
				fmt.Fprintf(w, "%send\n", indent)
			}
		}
	}
	writeGroup("", "  ")
	for _, e := range g.edges {
		label := strings.ReplaceAll(e.label, `"`, "'")
		switch {
		case e.catch:
			fmt.Fprintf(w, "  %s -. \"%s\" .-> %s\n", e.from, label, e.to)
		case label != "":
			fmt.Fprintf(w, "  %s -- \"%s\" --> %s\n", e.from, label, e.to)
		default:
			fmt.Fprintf(w, "  %s --> %s\n", e.from, e.to)
		}
	}
}

// writeDot draws the same graph for Graphviz.
func writeDot(w io.Writer, name string, def *states.Definition) {
	g := buildGraph(def)
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
	fmt.Fprintf(w, "digraph %s {\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n", q(name))
	attrs := func(n gnode) string {
		switch n.kind {
		case "start":
			return `[shape=point, width=0.15, label=""]`
		case "Choice":
			return "[shape=diamond, label=" + q(n.name) + "]"
		case "Wait":
			return "[shape=box, style=rounded, label=" + q(n.name) + "]"
		case "Succeed":
			return "[shape=doublecircle, label=" + q(n.name) + "]"
		case "Fail":
			return "[shape=doublecircle, color=red, label=" + q(n.name) + "]"
		case "Pass":
			return "[shape=parallelogram, label=" + q(n.name) + "]"
		}
		return "[shape=box, label=" + q(n.name) + "]"
	}
	var writeGroup func(group, indent string)
	writeGroup = func(group, indent string) {
		for _, n := range g.nodes {
			if n.group == group {
				fmt.Fprintf(w, "%s%s %s;\n", indent, n.id, attrs(n))
			}
		}
		for _, sg := range g.groups {
			if sg.parent == group {
				fmt.Fprintf(w, "%ssubgraph cluster_%s {\n%s  label=%s;\n", indent, sg.id, indent, q(sg.label))
				writeGroup(sg.id, indent+"  ")
				fmt.Fprintf(w, "%s}\n", indent)
			}
		}
	}
	writeGroup("", "  ")
	for _, e := range g.edges {
		var a []string
		if e.label != "" {
			a = append(a, "label="+q(e.label))
		}
		if e.catch {
			a = append(a, "style=dashed", "color=red")
		}
		if len(a) > 0 {
			fmt.Fprintf(w, "  %s -> %s [%s];\n", e.from, e.to, strings.Join(a, ", "))
		} else {
			fmt.Fprintf(w, "  %s -> %s;\n", e.from, e.to)
		}
	}
	fmt.Fprintln(w, "}")
}
