package states

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Decode reads a definition. Problems of shape (unknown fields, fields a
// state type does not admit, wrong JSON types, missing Type/StartAt/States,
// an unknown Type) are collected and returned together as a
// *ValidationError along with whatever could be decoded; Decode never stops
// at the first one. Semantic rules (transitions, Retry, Choice operands,
// paths) are Validate's.
//
// Decoding a state reads its "Type" first and then only the fields that
// type admits, as AWS does: a field that exists in the language but not on
// this type is reported as "not supported by state type X" rather than
// silently dropped.
func Decode(doc []byte) (*Definition, error) {
	d := &decoder{pos: map[string]int{}}
	def := d.definition(doc)
	def.positions = d.pos
	if len(d.problems) > 0 {
		return def, &ValidationError{Problems: capProblems(d.problems)}
	}
	return def, nil
}

// maxProblems caps a report: past a few hundred problems a reader learns
// nothing new, and a hostile document must not make the report huge.
const maxProblems = 500

func capProblems(ps []Problem) []Problem {
	if len(ps) > maxProblems {
		return ps[:maxProblems]
	}
	return ps
}

type decoder struct {
	problems []Problem
	// pos numbers every pointer met, in document order (see
	// Definition.positions).
	pos map[string]int
	// depth counts the branches and rules being decoded inside each other.
	// Each level re-reads its own bytes, so without a bound a hostile
	// document nested thousands deep would cost quadratic time.
	depth int
}

// maxNesting bounds how deep branches (Parallel in Map in Parallel...)
// and Choice rules (Not in And in Or...) may nest. Real machines stay in
// single digits.
const maxNesting = 100

// maxDefinitionSize is AWS's limit on a definition's size (1 MiB).
const maxDefinitionSize = 1 << 20

// enter reports whether one more level of nesting is allowed; every true
// must be paired with d.depth--.
func (d *decoder) enter(ptr string) bool {
	if d.depth >= maxNesting {
		d.addf(ptr, "nested more than %d levels deep", maxNesting)
		return false
	}
	d.depth++
	return true
}

func (d *decoder) addf(ptr, format string, args ...any) {
	// Keep collecting a little past the cap is pointless work; stop early.
	if len(d.problems) > maxProblems {
		return
	}
	d.problems = append(d.problems, Problem{Pointer: ptr, Message: fmt.Sprintf(format, args...)})
}

// handler decodes one field's value found at ptr.
type handler func(ptr string, raw json.RawMessage)

// fieldSet is the set of fields an object admits, each with its decoder.
type fieldSet map[string]handler

func (d *decoder) definition(doc []byte) *Definition {
	def := &Definition{}
	if len(doc) > maxDefinitionSize {
		d.addf("", "states: definition is larger than %d bytes", maxDefinitionSize)
		return def
	}
	if !json.Valid(doc) {
		d.addf("", "states: definition is not valid JSON: %s", syntaxError(doc))
		return def
	}
	if !utf8.Valid(doc) {
		d.addf("", "states: definition is not valid UTF-8")
		return def
	}
	doc = bytes.TrimSpace(doc)
	if kindOf(doc) != "object" {
		d.addf("", "definition must be an object, got %s", kindOf(doc))
		return def
	}
	fs := fieldSet{
		"Comment":        func(p string, r json.RawMessage) { def.Comment = d.str(p, r) },
		"StartAt":        func(p string, r json.RawMessage) { def.StartAt = d.str(p, r) },
		"States":         func(p string, r json.RawMessage) { def.States = d.states(p, r) },
		"Version":        func(p string, r json.RawMessage) { def.Version = d.str(p, r) },
		"TimeoutSeconds": func(p string, r json.RawMessage) { def.TimeoutSeconds = d.int64(p, r) },
		"QueryLanguage":  func(p string, r json.RawMessage) { def.QueryLanguage = QueryLanguage(d.str(p, r)) },
	}
	seen := d.fields("", doc, fs, unknownField)
	d.require("", seen, "StartAt", "States")
	return def
}

// syntaxError describes why doc is not JSON, with the byte offset.
func syntaxError(doc []byte) string {
	var v any
	err := json.Unmarshal(doc, &v)
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	if err != nil {
		return err.Error()
	}
	return "unexpected end of input"
}

// unknownField reports a field the object does not admit.
func unknownField(key string) string { return fmt.Sprintf("unknown field %q", key) }

// fields decodes raw (an object) with fs, reporting duplicate and
// unadmitted fields through notAdmitted, and returns the set of keys seen.
func (d *decoder) fields(ptr string, raw json.RawMessage, fs fieldSet, notAdmitted func(string) string) map[string]bool {
	ms, err := readObject(raw)
	if err != nil {
		d.addf(ptr, "expected an object, got %s", kindOf(raw))
		return nil
	}
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		p := ptr + "/" + escape(m.key)
		if seen[m.key] {
			d.addf(p, "duplicate field %q", m.key)
			continue
		}
		seen[m.key] = true
		d.mark(p)
		h, ok := fs[m.key]
		if !ok {
			d.addf(p, "%s", notAdmitted(m.key))
			continue
		}
		h(p, m.val)
	}
	return seen
}

// require reports each named field missing from seen.
func (d *decoder) require(ptr string, seen map[string]bool, names ...string) {
	if seen == nil {
		return // not an object: already reported
	}
	for _, n := range names {
		if !seen[n] {
			d.addf(ptr+"/"+escape(n), "missing required field")
		}
	}
}

// mark records that ptr comes next in the document.
func (d *decoder) mark(ptr string) {
	if d.pos != nil {
		d.pos[ptr] = len(d.pos)
	}
}

func (d *decoder) wrongType(ptr, want string, raw json.RawMessage) {
	d.addf(ptr, "expected %s, got %s", want, kindOf(raw))
}

func (d *decoder) str(ptr string, raw json.RawMessage) string {
	var s string
	if kindOf(raw) != "string" || json.Unmarshal(raw, &s) != nil {
		d.wrongType(ptr, "a string", raw)
	}
	return s
}

func (d *decoder) boolean(ptr string, raw json.RawMessage) bool {
	var b bool
	if kindOf(raw) != "boolean" || json.Unmarshal(raw, &b) != nil {
		d.wrongType(ptr, "a boolean", raw)
	}
	return b
}

// integer reads a JSON number that has an integer value (1, 1.0 and 1e3
// are integers; 1.5 is not).
func (d *decoder) integer(ptr string, raw json.RawMessage) (int64, bool) {
	if kindOf(raw) != "number" {
		d.wrongType(ptr, "an integer", raw)
		return 0, false
	}
	n, err := parseNumber(string(bytes.TrimSpace(raw)))
	if err != nil {
		d.addf(ptr, "%v", err)
		return 0, false
	}
	switch x := n.(type) {
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), true
		}
	}
	d.addf(ptr, "expected an integer, got %s", bytes.TrimSpace(raw))
	return 0, false
}

func (d *decoder) int64(ptr string, raw json.RawMessage) *int64 {
	n, ok := d.integer(ptr, raw)
	if !ok {
		return nil
	}
	return &n
}

func (d *decoder) float(ptr string, raw json.RawMessage) *float64 {
	if kindOf(raw) != "number" {
		d.wrongType(ptr, "a number", raw)
		return nil
	}
	n, err := parseNumber(string(bytes.TrimSpace(raw)))
	if err != nil {
		d.addf(ptr, "%v", err)
		return nil
	}
	var f float64
	switch x := n.(type) {
	case int64:
		f = float64(x)
	case float64:
		f = x
	}
	return &f
}

// intExpr reads an integer, or (for JSONata) a string holding an
// expression; Validate checks that a string is a "{% %}" expression in a
// JSONata state.
func (d *decoder) intExpr(ptr string, raw json.RawMessage) *IntExpr {
	if kindOf(raw) == "string" {
		if e := d.str(ptr, raw); e != "" {
			return &IntExpr{Expr: e}
		}
		d.addf(ptr, "expected an integer or a JSONata expression, got an empty string")
		return nil
	}
	if kindOf(raw) != "number" {
		d.wrongType(ptr, "an integer or a JSONata expression", raw)
		return nil
	}
	n, ok := d.integer(ptr, raw)
	if !ok {
		return nil
	}
	return &IntExpr{Value: n}
}

func (d *decoder) floatExpr(ptr string, raw json.RawMessage) *FloatExpr {
	if kindOf(raw) == "string" {
		if e := d.str(ptr, raw); e != "" {
			return &FloatExpr{Expr: e}
		}
		d.addf(ptr, "expected a number or a JSONata expression, got an empty string")
		return nil
	}
	if kindOf(raw) != "number" {
		d.wrongType(ptr, "a number or a JSONata expression", raw)
		return nil
	}
	f := d.float(ptr, raw)
	if f == nil {
		return nil
	}
	return &FloatExpr{Value: *f}
}

// pathField reads InputPath, OutputPath or ResultPath: a string or null.
func (d *decoder) pathField(ptr string, raw json.RawMessage) *PathField {
	if kindOf(raw) == "null" {
		return &PathField{Null: true}
	}
	return &PathField{Path: d.str(ptr, raw)}
}

// value reads a payload field as a value tree.
func (d *decoder) value(ptr string, raw json.RawMessage) any {
	v, err := parseValue(raw)
	if err != nil {
		d.addf(ptr, "%s", strings.TrimPrefix(err.Error(), "data: parse: "))
		return nil
	}
	return v
}

// object reads a payload field that must be a JSON object (Assign,
// ReaderConfig, WriterConfig).
func (d *decoder) object(ptr string, raw json.RawMessage) map[string]any {
	if kindOf(raw) != "object" {
		d.wrongType(ptr, "an object", raw)
		return nil
	}
	m, _ := d.value(ptr, raw).(map[string]any)
	return m
}

func (d *decoder) stringList(ptr string, raw json.RawMessage) []string {
	elems, err := readArray(raw)
	if err != nil || kindOf(raw) != "array" {
		d.wrongType(ptr, "an array of strings", raw)
		return nil
	}
	out := make([]string, 0, len(elems))
	for i, e := range elems {
		out = append(out, d.str(fmt.Sprintf("%s/%d", ptr, i), e))
	}
	return out
}

// array splits an array field, reporting a wrong type.
func (d *decoder) array(ptr string, raw json.RawMessage) []json.RawMessage {
	elems, err := readArray(raw)
	if err != nil || kindOf(raw) != "array" {
		d.wrongType(ptr, "an array", raw)
		return nil
	}
	for i := range elems {
		d.mark(fmt.Sprintf("%s/%d", ptr, i))
	}
	return elems
}

// states decodes a "States" object, keeping the written order.
func (d *decoder) states(ptr string, raw json.RawMessage) States {
	out := States{ByName: map[string]State{}}
	ms, err := readObject(raw)
	if err != nil {
		d.wrongType(ptr, "an object", raw)
		return out
	}
	for _, m := range ms {
		p := ptr + "/" + escape(m.key)
		d.mark(p)
		if _, dup := out.ByName[m.key]; dup {
			d.addf(p, "duplicate state name %q", m.key)
			continue
		}
		s := d.state(p, m.val)
		if s == nil {
			continue
		}
		out.Names = append(out.Names, m.key)
		out.ByName[m.key] = s
	}
	return out
}

// branch decodes a Parallel branch or a Map's ItemProcessor/Iterator.
func (d *decoder) branch(ptr string, raw json.RawMessage, processor bool) *Branch {
	b := &Branch{}
	if !d.enter(ptr) {
		return b
	}
	defer func() { d.depth-- }()
	fs := fieldSet{
		"Comment":       func(p string, r json.RawMessage) { b.Comment = d.str(p, r) },
		"StartAt":       func(p string, r json.RawMessage) { b.StartAt = d.str(p, r) },
		"States":        func(p string, r json.RawMessage) { b.States = d.states(p, r) },
		"QueryLanguage": func(p string, r json.RawMessage) { b.QueryLanguage = QueryLanguage(d.str(p, r)) },
	}
	if processor {
		fs["ProcessorConfig"] = func(p string, r json.RawMessage) { b.ProcessorConfig = d.processorConfig(p, r) }
	}
	seen := d.fields(ptr, raw, fs, unknownField)
	d.require(ptr, seen, "StartAt", "States")
	return b
}

// state decodes one state: Type first, then the fields that type admits.
func (d *decoder) state(ptr string, raw json.RawMessage) State {
	ms, err := readObject(raw)
	if err != nil {
		d.wrongType(ptr, "an object", raw)
		return nil
	}
	var typ string
	found := false
	for _, m := range ms {
		if m.key == "Type" {
			typ = d.str(ptr+"/Type", m.val)
			found = true
			break
		}
	}
	if !found {
		d.addf(ptr+"/Type", "missing required field")
		return nil
	}
	s, fs := d.stateFields(StateType(typ))
	if s == nil {
		if typ != "" {
			d.addf(ptr+"/Type", "unknown state type %q", typ)
		}
		return nil
	}
	fs["Type"] = func(string, json.RawMessage) {}
	d.fields(ptr, raw, fs, func(key string) string {
		if allStateFields()[key] {
			return fmt.Sprintf("field %q is not supported by state type %s", key, typ)
		}
		return unknownField(key)
	})
	return s
}

// stateFields returns a new state of type t and the fields it admits.
func (d *decoder) stateFields(t StateType) (State, fieldSet) {
	switch t {
	case TypePass:
		s := &Pass{}
		return s, d.passFields(s)
	case TypeTask:
		s := &Task{}
		return s, d.taskFields(s)
	case TypeChoice:
		s := &Choice{}
		return s, d.choiceFields(s)
	case TypeWait:
		s := &Wait{}
		return s, d.waitFields(s)
	case TypeSucceed:
		s := &Succeed{}
		return s, d.succeedFields(s)
	case TypeFail:
		s := &Fail{}
		return s, d.failFields(s)
	case TypeParallel:
		s := &Parallel{}
		return s, d.parallelFields(s)
	case TypeMap:
		s := &Map{}
		return s, d.mapFields(s)
	}
	return nil, nil
}

// stateTypes lists the closed set in the order the documentation does.
var stateTypes = []StateType{TypePass, TypeTask, TypeChoice, TypeWait, TypeSucceed, TypeFail, TypeParallel, TypeMap}

var (
	allFieldsOnce sync.Once
	allFields     map[string]bool
)

// allStateFields is every field some state type admits, so that a field
// known to the language but not admitted by this type gets the clearer
// message. It is derived from the per-type field sets, never listed twice.
func allStateFields() map[string]bool {
	allFieldsOnce.Do(func() {
		allFields = map[string]bool{"Type": true}
		d := &decoder{}
		for _, t := range stateTypes {
			_, fs := d.stateFields(t)
			for k := range fs {
				allFields[k] = true
			}
		}
	})
	return allFields
}

// admitted is the set of fields a state type admits; the validator
// uses it to reject built states that carry fields their type does not.
func admitted(t StateType) map[string]bool {
	_, fs := (&decoder{}).stateFields(t)
	out := make(map[string]bool, len(fs))
	for k := range fs {
		out[k] = true
	}
	return out
}

// common admits Comment and QueryLanguage, and whichever of the shared
// fields the state type takes.
func (d *decoder) common(c *CommonFields, names ...string) fieldSet {
	fs := fieldSet{
		"Comment":       func(p string, r json.RawMessage) { c.Comment = d.str(p, r) },
		"QueryLanguage": func(p string, r json.RawMessage) { c.QueryLanguage = QueryLanguage(d.str(p, r)) },
	}
	for _, n := range names {
		switch n {
		case "Next":
			fs[n] = func(p string, r json.RawMessage) { c.Next = d.str(p, r) }
		case "End":
			fs[n] = func(p string, r json.RawMessage) { c.End = d.boolean(p, r) }
		case "InputPath":
			fs[n] = func(p string, r json.RawMessage) { c.InputPath = d.pathField(p, r) }
		case "OutputPath":
			fs[n] = func(p string, r json.RawMessage) { c.OutputPath = d.pathField(p, r) }
		case "Assign":
			fs[n] = func(p string, r json.RawMessage) { c.Assign = d.object(p, r) }
		case "Output":
			fs[n] = func(p string, r json.RawMessage) { c.Output = d.value(p, r) }
		default:
			panic("states: common field " + n + " unknown") // programming error, caught by tests
		}
	}
	return fs
}

// sortedKeys returns a map's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// escape writes a JSON pointer reference token (RFC 6901): "~" as "~0" and
// "/" as "~1", so that state names holding them still point right.
func escape(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// unescape reverses escape.
func unescape(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
}
