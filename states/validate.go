package states

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/keyflow/keyflow/states/intrinsic"
	"github.com/keyflow/keyflow/states/jsonpath"
	"github.com/keyflow/keyflow/states/payload"
)

// Validate checks a decoded (or built) definition as AWS does before it
// accepts it and returns a *ValidationError listing every problem, sorted
// in document order and capped at 500, or nil.
//
// It checks what Decode cannot: transitions and reachability, which field
// combinations a state may have, Choice rules and their operands, Retry
// and Catch, Map modes, and that every path, intrinsic call and payload
// template compiles. A definition built in Go is held to the same rules,
// including the fields its state types admit.
func Validate(d *Definition) error {
	if d == nil {
		return &ValidationError{Problems: []Problem{{Message: "states: definition is nil"}}}
	}
	v := &validator{def: d, names: map[string]string{}, order: map[string]int{}}
	v.topQL = JSONPath
	switch d.QueryLanguage {
	case "":
	case JSONPath, JSONata:
		v.topQL = d.QueryLanguage
	default:
		v.addf("/QueryLanguage", "must be \"JSONPath\" or \"JSONata\", got %s", quote(string(d.QueryLanguage)))
	}
	if d.Version != "" && d.Version != "1.0" {
		v.addf("/Version", "must be \"1.0\", got %s", quote(d.Version))
	}
	if d.TimeoutSeconds != nil && *d.TimeoutSeconds <= 0 {
		v.addf("/TimeoutSeconds", "must be positive, got %d", *d.TimeoutSeconds)
	}
	v.machine("", d.StartAt, &d.States, v.topQL)
	if len(v.problems) == 0 {
		return nil
	}
	v.sort()
	return &ValidationError{Problems: capProblems(v.problems)}
}

type validator struct {
	def      *Definition
	topQL    QueryLanguage
	problems []Problem
	// names maps every state name to the pointer of the state that took
	// it first: names are unique across the whole machine, branches and
	// item processors included, because history events name states only
	// by name.
	names map[string]string
	// order numbers every state pointer in visiting order, which is
	// document order; sort uses it to order problems.
	order map[string]int
}

// scope is one States object: the top level, a Parallel branch or a Map's
// item processor. Transitions never leave their scope.
type scope struct {
	states *States
}

func (v *validator) addf(ptr, format string, args ...any) {
	v.problems = append(v.problems, Problem{Pointer: ptr, Message: fmt.Sprintf(format, args...)})
}

// machine validates a States object with its StartAt.
func (v *validator) machine(ptr, startAt string, states *States, ql QueryLanguage) {
	sc := &scope{states: states}
	startOK := false
	switch _, ok := states.ByName[startAt]; {
	case startAt == "":
		v.addf(ptr+"/StartAt", "missing required field")
	case !ok:
		v.addf(ptr+"/StartAt", "no state named %q", startAt)
	default:
		startOK = true
	}
	if len(states.Names) == 0 {
		v.addf(ptr+"/States", "must have at least one state")
	}
	var reached map[string]bool
	if startOK {
		reached = reachable(startAt, states)
	}
	for _, name := range states.Names {
		p := ptr + "/States/" + escape(name)
		v.order[p] = len(v.order)
		s := states.ByName[name]
		if s == nil {
			v.addf(p, "state is nil")
			continue
		}
		if startOK && !reached[name] {
			v.addf(p, "state is unreachable from StartAt %q", startAt)
		}
		v.state(p, sc, name, s)
	}
}

// branch validates a Parallel branch or a Map's item processor: its own
// scope, whose states inherit the machine's query language unless the
// branch sets one.
func (v *validator) branch(ptr string, b *Branch) {
	ql := v.topQL
	switch b.QueryLanguage {
	case "":
	case JSONPath, JSONata:
		ql = b.QueryLanguage
	default:
		v.addf(ptr+"/QueryLanguage", "must be \"JSONPath\" or \"JSONata\", got %s", quote(string(b.QueryLanguage)))
	}
	v.machine(ptr, b.StartAt, &b.States, ql)
}

// reachable returns the states that can be reached from start.
func reachable(start string, states *States) map[string]bool {
	seen := map[string]bool{start: true}
	queue := []string{start}
	for len(queue) > 0 {
		s := states.ByName[queue[0]]
		queue = queue[1:]
		if s == nil {
			continue
		}
		for _, next := range Transitions(s) {
			if _, ok := states.ByName[next]; ok && !seen[next] {
				seen[next] = true
				queue = append(queue, next)
			}
		}
	}
	return seen
}

// Transitions lists the names a state can move to in its own scope: Next,
// each Choice rule's Next and Default, and each Catch's Next, in that
// order, with duplicates kept.
func Transitions(s State) []string {
	var out []string
	if n := s.Common().Next; n != "" {
		out = append(out, n)
	}
	var catch []Catcher
	switch s := s.(type) {
	case *Choice:
		for _, r := range s.Choices {
			if r.Next != "" {
				out = append(out, r.Next)
			}
		}
		if s.Default != "" {
			out = append(out, s.Default)
		}
	case *Task:
		catch = s.Catch
	case *Parallel:
		catch = s.Catch
	case *Map:
		catch = s.Catch
	}
	for _, c := range catch {
		if c.Next != "" {
			out = append(out, c.Next)
		}
	}
	return out
}

// maxStateName is AWS's limit on a state name's length, in characters.
const maxStateName = 80

func (v *validator) state(ptr string, sc *scope, name string, s State) {
	c := s.Common()
	ql := v.topQL
	switch c.QueryLanguage {
	case "":
	case JSONPath:
		// A JSONata machine is JSONata throughout; only a JSONPath
		// machine may opt single states into JSONata.
		if v.topQL == JSONata {
			v.addf(ptr+"/QueryLanguage", "cannot be JSONPath in a state machine whose QueryLanguage is JSONata")
		}
		ql = JSONPath
	case JSONata:
		ql = JSONata
	default:
		v.addf(ptr+"/QueryLanguage", "must be \"JSONPath\" or \"JSONata\", got %s", quote(string(c.QueryLanguage)))
	}
	if utf8.RuneCountInString(name) > maxStateName {
		v.addf(ptr, "state name is longer than %d characters", maxStateName)
	}
	if first, dup := v.names[name]; dup {
		v.addf(ptr, "duplicate state name %q (also at %s)", name, first)
	} else {
		v.names[name] = ptr
	}
	v.common(ptr, sc, s, ql)
	switch s := s.(type) {
	case *Pass:
		v.pass(ptr, s, ql)
	case *Task:
		v.task(ptr, sc, s, ql)
	case *Choice:
		v.choice(ptr, sc, s, ql)
	case *Wait:
		v.wait(ptr, s, ql)
	case *Succeed:
	case *Fail:
		v.fail(ptr, s, ql)
	case *Parallel:
		v.parallel(ptr, sc, s, ql)
	case *Map:
		v.mapState(ptr, sc, s, ql)
	}
}

var admittedByType = sync.OnceValue(func() map[StateType]map[string]bool {
	m := map[StateType]map[string]bool{}
	for _, t := range stateTypes {
		m[t] = admitted(t)
	}
	return m
})

// common checks the shared fields: that the type admits them (a built
// state can carry any), Next/End, and the query-language split.
func (v *validator) common(ptr string, sc *scope, s State, ql QueryLanguage) {
	c := s.Common()
	adm := admittedByType()[s.Type()]
	for _, f := range []struct {
		key string
		set bool
	}{
		{"InputPath", c.InputPath != nil},
		{"OutputPath", c.OutputPath != nil},
		{"Output", c.Output != nil},
		{"Assign", c.Assign != nil},
		{"Next", c.Next != ""},
		{"End", c.End},
	} {
		if f.set && !adm[f.key] {
			v.addf(ptr+"/"+f.key, "field %q is not supported by state type %s", f.key, s.Type())
		}
	}
	if adm["Next"] {
		switch {
		case c.Next != "" && c.End:
			v.addf(ptr+"/End", "cannot be used with Next")
		case c.Next == "" && !c.End:
			v.addf(ptr, "must have Next or End")
		}
		if c.Next != "" {
			v.transition(ptr+"/Next", sc, c.Next)
		}
	}
	for _, f := range []struct {
		key string
		p   *PathField
	}{{"InputPath", c.InputPath}, {"OutputPath", c.OutputPath}} {
		if f.p == nil || !adm[f.key] {
			continue
		}
		if ql == JSONata {
			v.jsonPathOnly(ptr+"/"+f.key, f.key)
		} else {
			v.pathField(ptr+"/"+f.key, f.p)
		}
	}
	if adm["Output"] {
		v.output(ptr+"/Output", ql, c.Output)
	}
	if adm["Assign"] {
		v.assign(ptr+"/Assign", ql, c.Assign)
	}
}

func (v *validator) transition(ptr string, sc *scope, name string) {
	if _, ok := sc.states.ByName[name]; !ok {
		v.addf(ptr, "no state named %q", name)
	}
}

func (v *validator) jsonPathOnly(ptr, field string) {
	v.addf(ptr, "field %q is not supported with QueryLanguage JSONata", field)
}

func (v *validator) jsonataOnly(ptr, field string) {
	v.addf(ptr, "field %q requires QueryLanguage JSONata", field)
}

func (v *validator) output(ptr string, ql QueryLanguage, val any) {
	if val != nil && ql != JSONata {
		v.jsonataOnly(ptr, "Output")
	}
}

func (v *validator) arguments(ptr string, ql QueryLanguage, val any) {
	if val != nil && ql != JSONata {
		v.jsonataOnly(ptr, "Arguments")
	}
}

// parameters checks a JSONPath payload template field (Parameters,
// ResultSelector).
func (v *validator) parameters(ptr string, ql QueryLanguage, field string, val any) {
	if val == nil {
		return
	}
	if ql == JSONata {
		v.jsonPathOnly(ptr, field)
		return
	}
	v.template(ptr, val)
}

// template compiles a payload template; payload reports the bad key as a
// pointer relative to the template, which is appended to ptr.
func (v *validator) template(ptr string, val any) {
	if val == nil {
		return
	}
	if _, err := payload.Compile(val); err != nil {
		var perr *payload.Error
		if errors.As(err, &perr) {
			v.addf(ptr+perr.Pointer, "%s", cleanErr(errors.New(perr.Msg)))
			return
		}
		v.addf(ptr, "%s", cleanErr(err))
	}
}

// assign checks variable names and, under JSONPath, the ".$" values.
func (v *validator) assign(ptr string, ql QueryLanguage, m map[string]any) {
	if m == nil {
		return
	}
	for _, k := range sortedKeys(m) {
		name := k
		if ql != JSONata {
			name = strings.TrimSuffix(k, ".$")
		}
		if msg := checkVariableName(name); msg != "" {
			v.addf(ptr+"/"+escape(k), "%s", msg)
		}
	}
	if ql != JSONata {
		v.template(ptr, m)
	}
}

// maxVariableName is AWS's limit on a variable name's length.
const maxVariableName = 80

// checkVariableName applies AWS's rules for workflow variable names: a
// Unicode identifier (ID_Start then ID_Continue; "_" is allowed first, as
// in JSONata) of at most 80 characters, not the reserved "states", and
// never "$$", which is the context object.
func checkVariableName(name string) string {
	switch {
	case name == "":
		return "variable name is empty"
	case strings.HasPrefix(name, "$$"):
		return fmt.Sprintf("variable name %s cannot start with \"$$\"", quote(name))
	case name == "states":
		return `variable name "states" is reserved`
	case utf8.RuneCountInString(name) > maxVariableName:
		return fmt.Sprintf("variable name is longer than %d characters", maxVariableName)
	}
	for i, r := range name {
		start := unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || r == '_'
		cont := start || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Pc)
		if (i == 0 && !start) || !cont {
			return fmt.Sprintf("invalid variable name %s", quote(name))
		}
	}
	return ""
}

func (v *validator) path(ptr, src string) {
	if _, err := jsonpath.Compile(src); err != nil {
		v.addf(ptr, "%s", cleanErr(err))
	}
}

// pathField checks InputPath, OutputPath or ItemsPath; null is allowed.
func (v *validator) pathField(ptr string, p *PathField) {
	if p != nil && !p.Null {
		v.path(ptr, p.Path)
	}
}

// pathIn checks a *Path field that exists only under JSONPath.
func (v *validator) pathIn(ptr string, ql QueryLanguage, field, src string) {
	if src == "" {
		return
	}
	if ql == JSONata {
		v.jsonPathOnly(ptr, field)
		return
	}
	v.path(ptr, src)
}

// pathOrCall checks ErrorPath and CausePath: a path or an intrinsic call.
func (v *validator) pathOrCall(ptr string, ql QueryLanguage, field, src string) {
	if src == "" {
		return
	}
	if ql == JSONata {
		v.jsonPathOnly(ptr, field)
		return
	}
	// Anything that starts like a call is compiled as one, so that a
	// broken call reads as such rather than as a path without "$".
	if intrinsic.IsCall(src) || strings.HasPrefix(src, "States.") {
		if _, err := intrinsic.Compile(src); err != nil {
			v.addf(ptr, "%s", cleanErr(err))
		}
		return
	}
	v.path(ptr, src)
}

func (v *validator) resultPath(ptr string, p *PathField) {
	if p == nil || p.Null {
		return
	}
	if _, err := jsonpath.CompileReference(p.Path); err != nil {
		v.addf(ptr, "%s", cleanErr(err))
	}
}

func (v *validator) resultPathIn(ptr string, ql QueryLanguage, p *PathField) {
	if p == nil {
		return
	}
	if ql == JSONata {
		v.jsonPathOnly(ptr, "ResultPath")
		return
	}
	v.resultPath(ptr, p)
}

// intExpr checks an integer field that JSONata may write as an expression.
func (v *validator) intExpr(ptr string, ql QueryLanguage, e *IntExpr, min int64) {
	switch {
	case e == nil:
	case e.Expr != "":
		v.exprIn(ptr, ql, e.Expr)
	case e.Value < min:
		v.addf(ptr, "must be at least %d, got %d", min, e.Value)
	}
}

// exprIn checks a string where a number belongs: only a JSONata state may
// put an expression there.
func (v *validator) exprIn(ptr string, ql QueryLanguage, expr string) {
	switch {
	case ql != JSONata:
		v.addf(ptr, "expected a number, got string %s", quote(expr))
	case !isExpr(expr):
		v.addf(ptr, "expected a number or a JSONata expression \"{%% ... %%}\", got %s", quote(expr))
	}
}

// cleanErr drops a subpackage's "name: " prefix: the problem's pointer
// already says where, and the message reads better without it.
func cleanErr(err error) string {
	msg := err.Error()
	for _, prefix := range []string{"jsonpath: ", "intrinsic: ", "payload: ", "states: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return msg
}

// quote quotes a value for a message, truncated so that a huge bad value
// cannot flood a report.
func quote(s string) string {
	const max = 64
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "..."
	}
	return strconv.Quote(s)
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int, int64, float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// fieldOrder is the order in which fields are usually written; problems
// under one object are reported in this order.
var fieldOrder = func() map[string]int {
	names := []string{
		"Comment", "QueryLanguage", "Version", "TimeoutSeconds", "StartAt", "ProcessorConfig", "Mode", "ExecutionType",
		"Type", "ErrorEquals", "Variable",
	}
	names = append(names, sortedKeys(operators)...)
	names = append(names,
		"And", "Or", "Not", "Condition", "Resource", "Credentials", "RoleArn",
		"Seconds", "SecondsPath", "Timestamp", "TimestampPath", "Error", "ErrorPath", "Cause", "CausePath",
		"InputPath", "Items", "ItemsPath", "ItemReader", "ReaderConfig", "Parameters", "Arguments", "ItemSelector",
		"ItemBatcher", "MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath", "BatchInput",
		"ItemProcessor", "Iterator", "Branches", "Choices",
		"MaxConcurrency", "MaxConcurrencyPath", "ToleratedFailurePercentage", "ToleratedFailurePercentagePath",
		"ToleratedFailureCount", "ToleratedFailureCountPath", "Label", "Result", "ResultSelector",
		"ResultWriter", "WriterConfig", "ResultPath", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath",
		"IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy",
		"OutputPath", "Output", "Assign", "Retry", "Catch", "Default", "Next", "End", "States",
	)
	m := make(map[string]int, len(names))
	for i, n := range names {
		if _, ok := m[n]; !ok {
			m[n] = i
		}
	}
	return m
}()

// sortKey turns a pointer into a sequence that orders it in the document.
// For a decoded definition each segment is the position Decode recorded;
// a pointer to a field that is not there (a missing required field, a
// payload key) takes its parent's position, so it sorts first among its
// siblings. For a built definition a state ranks by when it was visited,
// an array element by index, a field by fieldOrder (unknown keys last).
func (v *validator) sortKey(ptr string) []int {
	segs := strings.Split(ptr, "/")
	key := make([]int, 0, len(segs))
	parent := -1
	for i := 1; i < len(segs); i++ {
		prefix := strings.Join(segs[:i+1], "/")
		if pos := v.def.positions; pos != nil {
			if n, ok := pos[prefix]; ok {
				parent = n
			}
			key = append(key, parent)
			continue
		}
		if n, ok := v.order[prefix]; ok {
			key = append(key, n)
			continue
		}
		if n, err := strconv.Atoi(segs[i]); err == nil && n >= 0 {
			key = append(key, n)
			continue
		}
		n, ok := fieldOrder[unescape(segs[i])]
		if !ok {
			n = len(fieldOrder)
		}
		key = append(key, n)
	}
	return key
}

func (v *validator) sort() {
	keys := make(map[string][]int, len(v.problems))
	for _, p := range v.problems {
		if _, ok := keys[p.Pointer]; !ok {
			keys[p.Pointer] = v.sortKey(p.Pointer)
		}
	}
	slices.SortStableFunc(v.problems, func(a, b Problem) int {
		return slices.Compare(keys[a.Pointer], keys[b.Pointer])
	})
}
