package states

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// operand is the JSON type a comparison operator takes.
type operand int

const (
	operandString operand = iota
	operandNumber
	operandBool
	operandTimestamp
	operandPath // the *Path operators: a path to compare with
	operandTest // IsNull, IsPresent, ...: true or false
)

// operators is every comparison operator of the language with its operand.
var operators = func() map[string]operand {
	ops := map[string]operand{
		"StringMatches": operandString,
		"IsNull":        operandTest,
		"IsPresent":     operandTest,
		"IsNumeric":     operandTest,
		"IsString":      operandTest,
		"IsBoolean":     operandTest,
		"IsTimestamp":   operandTest,
	}
	for _, family := range []struct {
		prefix string
		operand
		ordered bool
	}{
		{"String", operandString, true},
		{"Numeric", operandNumber, true},
		{"Timestamp", operandTimestamp, true},
		{"Boolean", operandBool, false},
	} {
		suffixes := []string{"Equals"}
		if family.ordered {
			suffixes = append(suffixes, "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")
		}
		for _, s := range suffixes {
			ops[family.prefix+s] = family.operand
			ops[family.prefix+s+"Path"] = operandPath
		}
	}
	return ops
}()

func (d *decoder) choiceFields(s *Choice) fieldSet {
	fs := d.common(&s.CommonFields, "InputPath", "OutputPath", "Assign", "Output")
	fs["Choices"] = func(p string, r json.RawMessage) {
		elems := d.array(p, r)
		s.Choices = make([]ChoiceRule, 0, len(elems))
		for i, e := range elems {
			s.Choices = append(s.Choices, d.rule(fmt.Sprintf("%s/%d", p, i), e))
		}
	}
	fs["Default"] = func(p string, r json.RawMessage) { s.Default = d.str(p, r) }
	return fs
}

// rule decodes a Choice rule, top-level or nested alike; which fields a
// nested rule may carry (no Next, no Assign) is Validate's to say.
func (d *decoder) rule(ptr string, raw json.RawMessage) ChoiceRule {
	var r ChoiceRule
	if !d.enter(ptr) {
		return r
	}
	defer func() { d.depth-- }()
	fs := fieldSet{
		"Comment":  func(p string, v json.RawMessage) { r.Comment = d.str(p, v) },
		"Variable": func(p string, v json.RawMessage) { r.Variable = d.str(p, v) },
		"Next":     func(p string, v json.RawMessage) { r.Next = d.str(p, v) },
		"And":      func(p string, v json.RawMessage) { r.And = d.rules(p, v) },
		"Or":       func(p string, v json.RawMessage) { r.Or = d.rules(p, v) },
		"Not": func(p string, v json.RawMessage) {
			n := d.rule(p, v)
			r.Not = &n
		},
		"Condition": func(p string, v json.RawMessage) { r.Condition = d.value(p, v) },
		"Assign":    func(p string, v json.RawMessage) { r.Assign = d.object(p, v) },
		"Output":    func(p string, v json.RawMessage) { r.Output = d.value(p, v) },
	}
	for op := range operators {
		fs[op] = func(p string, v json.RawMessage) {
			// The model holds one comparison per rule, so a second one
			// can only be reported here.
			if r.Operator != "" {
				d.addf(p, "a rule takes one comparison operator, already has %q", r.Operator)
				return
			}
			r.Operator, r.Value = op, d.value(p, v)
		}
	}
	d.fields(ptr, raw, fs, unknownField)
	return r
}

func (d *decoder) rules(ptr string, raw json.RawMessage) []ChoiceRule {
	elems := d.array(ptr, raw)
	out := make([]ChoiceRule, 0, len(elems))
	for i, e := range elems {
		out = append(out, d.rule(fmt.Sprintf("%s/%d", ptr, i), e))
	}
	return out
}

func encodeChoice(o *object, s *Choice) {
	if s.Choices != nil {
		rules := make([]any, len(s.Choices))
		for i := range s.Choices {
			rules[i] = encodeRule(&s.Choices[i])
		}
		o.add("Choices", rules)
	}
	o.str("Default", s.Default)
}

func encodeRule(r *ChoiceRule) object {
	var o object
	o.str("Comment", r.Comment)
	o.str("Variable", r.Variable)
	if r.Operator != "" {
		o.add(r.Operator, r.Value)
	}
	for _, group := range []struct {
		key   string
		rules []ChoiceRule
	}{{"And", r.And}, {"Or", r.Or}} {
		if group.rules == nil {
			continue
		}
		rs := make([]any, len(group.rules))
		for i := range group.rules {
			rs[i] = encodeRule(&group.rules[i])
		}
		o.add(group.key, rs)
	}
	if r.Not != nil {
		o.add("Not", encodeRule(r.Not))
	}
	o.value("Condition", r.Condition)
	o.assign(r.Assign)
	o.value("Output", r.Output)
	o.str("Next", r.Next)
	return o
}

func (v *validator) choice(ptr string, sc *scope, s *Choice, ql QueryLanguage) {
	if len(s.Choices) == 0 {
		v.addf(ptr+"/Choices", "must have at least one rule")
	}
	for i := range s.Choices {
		v.rule(fmt.Sprintf("%s/Choices/%d", ptr, i), sc, &s.Choices[i], ql, true)
	}
	if s.Default != "" {
		v.transition(ptr+"/Default", sc, s.Default)
	}
}

func (v *validator) rule(ptr string, sc *scope, r *ChoiceRule, ql QueryLanguage, top bool) {
	v.ruleAt(ptr, sc, r, ql, top, 0)
}

func (v *validator) ruleAt(ptr string, sc *scope, r *ChoiceRule, ql QueryLanguage, top bool, depth int) {
	// A built definition has no decoder to bound its nesting.
	if depth > maxNesting {
		v.addf(ptr, "nested more than %d levels deep", maxNesting)
		return
	}
	forms := 0
	for _, set := range []bool{r.Operator != "", r.And != nil, r.Or != nil, r.Not != nil, r.Condition != nil} {
		if set {
			forms++
		}
	}
	switch {
	case ql == JSONata:
		v.jsonataRule(ptr, r)
	case forms == 0:
		v.addf(ptr, "rule must have a comparison operator, And, Or or Not")
	case forms > 1:
		v.addf(ptr, "rule must have exactly one of a comparison operator, And, Or or Not")
	}
	if ql != JSONata {
		v.comparison(ptr, r)
		if r.Condition != nil {
			v.jsonataOnly(ptr+"/Condition", "Condition")
		}
	}
	for _, group := range []struct {
		key   string
		rules []ChoiceRule
	}{{"And", r.And}, {"Or", r.Or}} {
		if group.rules == nil {
			continue
		}
		if len(group.rules) == 0 {
			v.addf(ptr+"/"+group.key, "must have at least one rule")
		}
		for i := range group.rules {
			v.ruleAt(fmt.Sprintf("%s/%s/%d", ptr, group.key, i), sc, &group.rules[i], ql, false, depth+1)
		}
	}
	if r.Not != nil {
		v.ruleAt(ptr+"/Not", sc, r.Not, ql, false, depth+1)
	}
	if top {
		v.assign(ptr+"/Assign", ql, r.Assign)
		v.output(ptr+"/Output", ql, r.Output)
		if r.Next == "" {
			v.addf(ptr+"/Next", "missing required field")
		} else {
			v.transition(ptr+"/Next", sc, r.Next)
		}
		return
	}
	// Only a top-level rule decides where to go and what to assign.
	for _, f := range []struct {
		key string
		set bool
	}{{"Assign", r.Assign != nil}, {"Output", r.Output != nil}, {"Next", r.Next != ""}} {
		if f.set {
			v.addf(ptr+"/"+f.key, "field %q is not supported in a nested rule", f.key)
		}
	}
}

// jsonataRule checks a JSONata rule: a Condition and nothing of JSONPath's.
func (v *validator) jsonataRule(ptr string, r *ChoiceRule) {
	if r.Variable != "" {
		v.jsonPathOnly(ptr+"/Variable", "Variable")
	}
	if r.Operator != "" {
		v.jsonPathOnly(ptr+"/"+r.Operator, r.Operator)
	}
	for _, f := range []struct {
		key string
		set bool
	}{{"And", r.And != nil}, {"Or", r.Or != nil}, {"Not", r.Not != nil}} {
		if f.set {
			v.jsonPathOnly(ptr+"/"+f.key, f.key)
		}
	}
	switch c := r.Condition.(type) {
	case nil:
		v.addf(ptr+"/Condition", "missing required field")
	case bool:
	case string:
		if !isExpr(c) {
			v.addf(ptr+"/Condition", "must be a boolean or a JSONata expression \"{%% ... %%}\", got %s", quote(c))
		}
	default:
		v.addf(ptr+"/Condition", "must be a boolean or a JSONata expression, got %s", jsonType(c))
	}
}

// comparison checks a JSONPath comparison: its Variable and its operand.
func (v *validator) comparison(ptr string, r *ChoiceRule) {
	if r.Variable != "" {
		v.path(ptr+"/Variable", r.Variable)
	}
	if r.Operator == "" {
		if r.Variable != "" && (r.And != nil || r.Or != nil || r.Not != nil) {
			v.addf(ptr+"/Variable", "is only used with a comparison operator")
		}
		return
	}
	if r.Variable == "" {
		v.addf(ptr+"/Variable", "missing required field")
	}
	p := ptr + "/" + escape(r.Operator)
	kind, ok := operators[r.Operator]
	if !ok {
		v.addf(p, "unknown comparison operator %q", r.Operator)
		return
	}
	switch kind {
	case operandString:
		if _, ok := r.Value.(string); !ok {
			v.addf(p, "expected a string, got %s", jsonType(r.Value))
		}
	case operandNumber:
		switch r.Value.(type) {
		case int64, float64, int, json.Number:
		default:
			v.addf(p, "expected a number, got %s", jsonType(r.Value))
		}
	case operandBool, operandTest:
		if _, ok := r.Value.(bool); !ok {
			v.addf(p, "expected true or false, got %s", jsonType(r.Value))
		}
	case operandTimestamp:
		s, ok := r.Value.(string)
		if !ok {
			v.addf(p, "expected a timestamp string, got %s", jsonType(r.Value))
		} else if _, err := time.Parse(time.RFC3339, s); err != nil {
			v.addf(p, "not an RFC 3339 timestamp: %s", quote(s))
		}
	case operandPath:
		s, ok := r.Value.(string)
		if !ok {
			v.addf(p, "expected a path, got %s", jsonType(r.Value))
		} else {
			v.path(p, s)
		}
	}
}

// isExpr reports whether s is a JSONata expression, "{% ... %}".
func isExpr(s string) bool {
	return strings.HasPrefix(s, "{%") && strings.HasSuffix(s, "%}") && len(s) >= 4
}
