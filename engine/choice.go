package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/jsonpath"
	"github.com/keyflow/keyflow/states/payload"
)

// choiceState picks the first rule that matches, else Default. Rules are
// compiled into closures once.
type choiceState struct {
	rules       []choiceRule
	defaultName string
	def         *node
}

type choiceRule struct {
	cond     cond
	nextName string
	next     *node
	assign   *payload.Template
}

// cond evaluates a rule. A comparison whose operand has the wrong type is
// false, as on AWS; a Variable that selects nothing is States.Runtime
// (except for IsPresent).
type cond func(sc *jsonpath.Scope) (bool, error)

func (c *compiler) choice(ptr string, n *node, s *states.Choice) (impl, error) {
	ch := &choiceState{defaultName: s.Default}
	for i := range s.Choices {
		r := &s.Choices[i]
		rptr := fmt.Sprintf("%s/Choices/%d", ptr, i)
		cd, err := compileRule(rptr, r)
		if err != nil {
			return nil, err
		}
		cr := choiceRule{cond: cd, nextName: r.Next}
		if r.Assign != nil {
			if cr.assign, err = template(rptr, "Assign", any(r.Assign)); err != nil {
				return nil, err
			}
		}
		ch.rules = append(ch.rules, cr)
	}
	n.usesCtx = n.usesCtx || mentionsContext(s.Choices)
	return ch, nil
}

func (ch *choiceState) resolve(p *program) error {
	for i := range ch.rules {
		nx, ok := p.nodes[ch.rules[i].nextName]
		if !ok {
			return fmt.Errorf("choice rule %d: Next: no state named %q", i, ch.rules[i].nextName)
		}
		ch.rules[i].next = nx
	}
	if ch.defaultName != "" {
		nx, ok := p.nodes[ch.defaultName]
		if !ok {
			return fmt.Errorf("default: no state named %q", ch.defaultName)
		}
		ch.def = nx
	}
	return nil
}

func (ch *choiceState) exec(t *thread, n *node, input any) (any, *node, error) {
	t.enter(n, types.HistoryEventTypeChoiceStateEntered, input)
	eff, err := n.in.apply(t, n, input)
	if err != nil {
		return nil, nil, err
	}
	// The rules' reads end before the next read of the state begins.
	sc := t.tempScope(n, eff)
	var next *node
	var rule *choiceRule
	for i := range ch.rules {
		ok, err := ch.rules[i].cond(sc)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			rule = &ch.rules[i]
			next = rule.next
			break
		}
	}
	if next == nil {
		if ch.def == nil {
			return nil, nil, &failure.Error{Name: failure.NoChoiceMatched, Cause: "No Matches!"}
		}
		next = ch.def
	}
	out, err := n.out.apply(t, n, eff)
	if err != nil {
		return nil, nil, err
	}
	assigned, err := t.assign(n, n.assign, eff)
	if err != nil {
		return nil, nil, err
	}
	if rule != nil && rule.assign != nil {
		more, err := t.assign(n, rule.assign, eff)
		if err != nil {
			return nil, nil, err
		}
		if assigned == nil {
			assigned = more
		} else {
			for k, v := range more {
				assigned[k] = v
			}
		}
	}
	t.exit(n, types.HistoryEventTypeChoiceStateExited, out, assigned)
	// Its output is its input or one value inside it: the input's bound
	// holds for the next state.
	if eff := t.effSize(n); eff >= 0 && n.out.withinInput() {
		t.outSize, t.outSizeOK = eff+2, true
	}
	return out, next, nil
}

func compileRule(ptr string, r *states.ChoiceRule) (cond, error) {
	switch {
	case r.Condition != nil:
		return nil, fmt.Errorf("engine: compile: %s/Condition: JSONata is not supported yet", ptr)
	case len(r.And) > 0 || len(r.Or) > 0:
		list, isAnd := r.And, true
		if len(r.Or) > 0 {
			list, isAnd = r.Or, false
		}
		subs := make([]cond, len(list))
		for i := range list {
			f := "Or"
			if isAnd {
				f = "And"
			}
			c, err := compileRule(fmt.Sprintf("%s/%s/%d", ptr, f, i), &list[i])
			if err != nil {
				return nil, err
			}
			subs[i] = c
		}
		if isAnd {
			return func(sc *jsonpath.Scope) (bool, error) {
				for _, c := range subs {
					if ok, err := c(sc); err != nil || !ok {
						return false, err
					}
				}
				return true, nil
			}, nil
		}
		return func(sc *jsonpath.Scope) (bool, error) {
			for _, c := range subs {
				if ok, err := c(sc); err != nil || ok {
					return ok, err
				}
			}
			return false, nil
		}, nil
	case r.Not != nil:
		sub, err := compileRule(ptr+"/Not", r.Not)
		if err != nil {
			return nil, err
		}
		return func(sc *jsonpath.Scope) (bool, error) {
			ok, err := sub(sc)
			return !ok, err
		}, nil
	}
	return compileComparison(ptr, r)
}

func compileComparison(ptr string, r *states.ChoiceRule) (cond, error) {
	op := r.Operator
	variable, err := jsonpath.Compile(r.Variable)
	if err != nil {
		return nil, compileErr(ptr, "Variable", err)
	}
	get := func(sc *jsonpath.Scope) (any, error) {
		v, err := variable.Get(sc)
		if err != nil {
			return nil, fail(failure.Runtime, "Invalid path '%s': The choice state's condition path references an invalid value.", r.Variable)
		}
		return v, nil
	}
	switch op {
	case "IsPresent":
		want, _ := r.Value.(bool)
		return func(sc *jsonpath.Scope) (bool, error) {
			_, err := variable.Get(sc)
			return (err == nil) == want, nil
		}, nil
	case "IsNull", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp":
		want, _ := r.Value.(bool)
		test := typeTests[op]
		return func(sc *jsonpath.Scope) (bool, error) {
			v, err := get(sc)
			if err != nil {
				return false, err
			}
			return test(v) == want, nil
		}, nil
	case "StringMatches":
		pat, ok := r.Value.(string)
		if !ok {
			return nil, fmt.Errorf("engine: compile: %s/StringMatches: want a string", ptr)
		}
		m := compileMatch(pat)
		return func(sc *jsonpath.Scope) (bool, error) {
			v, err := get(sc)
			if err != nil {
				return false, err
			}
			s, ok := v.(string)
			return ok && m(s), nil
		}, nil
	}
	base, isPath := strings.CutSuffix(op, "Path")
	kind, rel := splitOperator(base)
	if kind == "" {
		return nil, fmt.Errorf("engine: compile: %s: unknown comparison %q", ptr, op)
	}
	var operand func(sc *jsonpath.Scope) (any, error)
	if isPath {
		src, _ := r.Value.(string)
		p, err := jsonpath.Compile(src)
		if err != nil {
			return nil, compileErr(ptr, op, err)
		}
		operand = func(sc *jsonpath.Scope) (any, error) {
			v, err := p.Get(sc)
			if err != nil {
				return nil, fail(failure.Runtime, "Invalid path '%s': The choice state's condition path references an invalid value.", src)
			}
			return v, nil
		}
	} else {
		lit, err := toTree(r.Value)
		if err != nil {
			return nil, compileErr(ptr, op, err)
		}
		if kind == "Timestamp" {
			// Parse the literal once.
			ts, ok := parseTimestamp(lit)
			if !ok {
				return nil, fmt.Errorf("engine: compile: %s/%s: %q is not an RFC 3339 timestamp", ptr, op, r.Value)
			}
			cmp := compareFn(kind, rel)
			return func(sc *jsonpath.Scope) (bool, error) {
				v, err := get(sc)
				if err != nil {
					return false, err
				}
				return cmp(v, ts), nil
			}, nil
		}
		operand = func(*jsonpath.Scope) (any, error) { return lit, nil }
	}
	cmp := compareFn(kind, rel)
	return func(sc *jsonpath.Scope) (bool, error) {
		v, err := get(sc)
		if err != nil {
			return false, err
		}
		w, err := operand(sc)
		if err != nil {
			return false, err
		}
		if kind == "Timestamp" {
			ts, ok := parseTimestamp(w)
			if !ok {
				return false, nil
			}
			return cmp(v, ts), nil
		}
		return cmp(v, w), nil
	}, nil
}

var typeTests = map[string]func(any) bool{
	"IsNull":    func(v any) bool { return v == nil },
	"IsNumeric": func(v any) bool { _, ok := data.Number(v); return ok },
	"IsString":  func(v any) bool { _, ok := v.(string); return ok },
	"IsBoolean": func(v any) bool { _, ok := v.(bool); return ok },
	"IsTimestamp": func(v any) bool {
		_, ok := parseTimestamp(v)
		return ok
	},
}

// splitOperator splits "NumericLessThanEquals" into ("Numeric", "LessThanEquals").
func splitOperator(op string) (kind, rel string) {
	for _, k := range []string{"String", "Numeric", "Boolean", "Timestamp"} {
		if r, ok := strings.CutPrefix(op, k); ok {
			switch r {
			case "Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals":
				if k == "Boolean" && r != "Equals" {
					return "", ""
				}
				return k, r
			}
		}
	}
	return "", ""
}

// compareFn returns a comparison of a value against an operand of kind;
// a value of another type compares false.
func compareFn(kind, rel string) func(v, w any) bool {
	ord := func(c int) bool {
		switch rel {
		case "Equals":
			return c == 0
		case "LessThan":
			return c < 0
		case "GreaterThan":
			return c > 0
		case "LessThanEquals":
			return c <= 0
		default:
			return c >= 0
		}
	}
	switch kind {
	case "String":
		return func(v, w any) bool {
			a, ok1 := v.(string)
			b, ok2 := w.(string)
			return ok1 && ok2 && ord(strings.Compare(a, b))
		}
	case "Numeric":
		return func(v, w any) bool {
			a, ok1 := data.Number(v)
			b, ok2 := data.Number(w)
			if !ok1 || !ok2 {
				return false
			}
			c := 0
			if a < b {
				c = -1
			} else if a > b {
				c = 1
			}
			return ord(c)
		}
	case "Boolean":
		return func(v, w any) bool {
			a, ok1 := v.(bool)
			b, ok2 := w.(bool)
			return ok1 && ok2 && a == b
		}
	default: // Timestamp: w is a parsed time.Time
		return func(v, w any) bool {
			a, ok := parseTimestamp(v)
			b, _ := w.(time.Time)
			return ok && ord(a.Compare(b))
		}
	}
}

// parseTimestamp reads an RFC 3339 timestamp as AWS does (upper-case T and
// Z, optional fractional seconds, numeric offsets).
func parseTimestamp(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case string:
		ts, err := time.Parse(time.RFC3339Nano, t)
		if err != nil || strings.ContainsAny(t, "tz") {
			return time.Time{}, false
		}
		return ts, true
	}
	return time.Time{}, false
}

// compileMatch compiles a StringMatches pattern: "*" matches any run of
// characters, "\*" and "\\" are a literal star and backslash.
func compileMatch(pat string) func(string) bool {
	var parts []string // literal runs separated by stars
	var cur strings.Builder
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; {
		case c == '\\' && i+1 < len(pat):
			i++
			cur.WriteByte(pat[i])
		case c == '*':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	parts = append(parts, cur.String())
	return func(s string) bool {
		if len(parts) == 1 {
			return s == parts[0]
		}
		if !strings.HasPrefix(s, parts[0]) {
			return false
		}
		s = s[len(parts[0]):]
		last := parts[len(parts)-1]
		for _, p := range parts[1 : len(parts)-1] {
			i := strings.Index(s, p)
			if i < 0 {
				return false
			}
			s = s[i+len(p):]
		}
		return strings.HasSuffix(s, last)
	}
}
