package states

import (
	"fmt"

	"github.com/keyflow/keyflow/states/data"
)

// Machine builds a state machine in Go. States are added in the order they
// are written, each adder returns a builder for that state's own fields,
// and every builder also offers the Machine's adders, so a whole machine
// reads as one chain:
//
//	def, err := states.NewMachine("Rotate one key").
//		StartAt("CreateKey").
//		Task("CreateKey", createKeyARN).ResultPath("$.created").Next("Wait").
//		Wait("Wait").TimestampPath("$.inactiveAt").Next("Done").
//		Succeed("Done").
//		Build()
//
// Build validates the result exactly as a decoded definition is validated.
// A Machine is also how a Parallel branch or a Map's item processor is
// written: build it with NewMachine and hand it to Parallel or Map.
type Machine struct {
	def *Definition
	// problems are mistakes Validate cannot see in the result, such as a
	// state name used twice (the second would replace the first).
	problems []Problem
}

// NewMachine starts a state machine with a comment (may be empty).
func NewMachine(comment string) *Machine {
	return &Machine{def: &Definition{Comment: comment, States: States{ByName: map[string]State{}}}}
}

// StartAt names the first state.
func (m *Machine) StartAt(name string) *Machine {
	m.def.StartAt = name
	return m
}

// WithTimeout sets the machine's TimeoutSeconds.
func (m *Machine) WithTimeout(seconds int64) *Machine {
	m.def.TimeoutSeconds = &seconds
	return m
}

// WithVersion sets the machine's Version ("1.0").
func (m *Machine) WithVersion(v string) *Machine {
	m.def.Version = v
	return m
}

// WithQueryLanguage sets the machine's (or branch's) QueryLanguage.
func (m *Machine) WithQueryLanguage(ql QueryLanguage) *Machine {
	m.def.QueryLanguage = ql
	return m
}

// Build validates the definition and returns it; the error, when not nil,
// is a *ValidationError and the definition is returned anyway.
func (m *Machine) Build() (*Definition, error) {
	var problems []Problem
	problems = append(problems, m.problems...)
	if err := Validate(m.def); err != nil {
		if verr, ok := err.(*ValidationError); ok {
			problems = append(problems, verr.Problems...)
		}
	}
	if len(problems) > 0 {
		return m.def, &ValidationError{Problems: capProblems(problems)}
	}
	return m.def, nil
}

// Add adds a state built by hand.
func (m *Machine) Add(name string, s State) *Machine {
	m.add(name, s)
	return m
}

func (m *Machine) add(name string, s State) {
	if _, dup := m.def.States.ByName[name]; dup {
		m.problems = append(m.problems, Problem{Pointer: "/States/" + escape(name), Message: fmt.Sprintf("duplicate state name %q", name)})
		return
	}
	m.def.States.Names = append(m.def.States.Names, name)
	m.def.States.ByName[name] = s
}

// value converts a Go value (ints, typed maps and slices) into the value
// tree the engine reads; a value that is not JSON is a build problem.
func (m *Machine) value(name, field string, v any) any {
	if v == nil {
		return nil
	}
	x, err := data.FromGo(v)
	if err != nil {
		m.problems = append(m.problems, Problem{
			Pointer: "/States/" + escape(name) + "/" + field,
			Message: fmt.Sprintf("not a JSON value: %v", err),
		})
		return nil
	}
	return x
}

// Chain is a Machine or any state builder on it, so that a chain can be
// handed to Parallel or Map as it ends, without a final call.
type Chain interface {
	machine() *Machine
}

func (m *Machine) machine() *Machine { return m }

func (m *Machine) branch() Branch {
	return Branch{Comment: m.def.Comment, StartAt: m.def.StartAt, States: m.def.States, QueryLanguage: m.def.QueryLanguage}
}

// Int and Float return pointers, for the optional fields of Retrier.
func Int(v int64) *int64       { return &v }
func Float(v float64) *float64 { return &v }

// base holds the fields every state builder sets; B is the concrete
// builder, returned so that chains keep their type.
type base[B any] struct {
	m    *Machine
	name string
	c    *CommonFields
	self B
}

// Comment sets the state's comment.
func (b *base[B]) Comment(s string) B { b.c.Comment = s; return b.self }

// QueryLanguage sets the state's own QueryLanguage.
func (b *base[B]) QueryLanguage(ql QueryLanguage) B { b.c.QueryLanguage = ql; return b.self }

// Next names the state that follows.
func (b *base[B]) Next(name string) B { b.c.Next = name; return b.self }

// End makes the state terminal.
func (b *base[B]) End() B { b.c.End = true; return b.self }

// InputPath selects the state's input; "" writes JSON null.
func (b *base[B]) InputPath(p string) B { b.c.InputPath = pathOrNull(p); return b.self }

// OutputPath selects the state's output; "" writes JSON null.
func (b *base[B]) OutputPath(p string) B { b.c.OutputPath = pathOrNull(p); return b.self }

// Assign sets one variable; under JSONPath a name ending in ".$" takes a
// path or an intrinsic call.
func (b *base[B]) Assign(name string, value any) B {
	if b.c.Assign == nil {
		b.c.Assign = map[string]any{}
	}
	b.c.Assign[name] = b.m.value(b.name, "Assign", value)
	return b.self
}

// Output sets the JSONata Output.
func (b *base[B]) Output(v any) B { b.c.Output = b.m.value(b.name, "Output", v); return b.self }

func pathOrNull(p string) *PathField {
	if p == "" {
		return &PathField{Null: true}
	}
	return &PathField{Path: p}
}

// result holds the fields of the states that produce a result and can
// fail: Task, Parallel and Map.
type result[B any] struct {
	owner          *Machine
	state          string
	parameters     *any
	resultSelector *any
	resultPath     **PathField
	retry          *[]Retrier
	catch          *[]Catcher
	self           B
}

// Parameters sets the JSONPath payload template ("key.$" for paths).
func (r *result[B]) Parameters(v any) B {
	*r.parameters = r.owner.value(r.state, "Parameters", v)
	return r.self
}

// ResultSelector shapes the raw result.
func (r *result[B]) ResultSelector(v any) B {
	*r.resultSelector = r.owner.value(r.state, "ResultSelector", v)
	return r.self
}

// ResultPath places the result in the input; "" discards it (JSON null).
func (r *result[B]) ResultPath(p string) B { *r.resultPath = pathOrNull(p); return r.self }

// Retry appends retriers, in order.
func (r *result[B]) Retry(rs ...Retrier) B { *r.retry = append(*r.retry, rs...); return r.self }

// Catch appends a catcher for errors, moving to next with the error
// output placed at resultPath ("" leaves ResultPath out, which is "$").
func (r *result[B]) Catch(errors []string, next, resultPath string) B {
	c := Catcher{ErrorEquals: errors, Next: next}
	if resultPath != "" {
		c.ResultPath = &PathField{Path: resultPath}
	}
	*r.catch = append(*r.catch, c)
	return r.self
}

// PassBuilder sets a Pass state's fields.
type PassBuilder struct {
	*Machine
	base[*PassBuilder]
	s *Pass
}

// Pass adds a Pass state.
func (m *Machine) Pass(name string) *PassBuilder {
	s := &Pass{}
	m.add(name, s)
	b := &PassBuilder{Machine: m, s: s}
	b.base = base[*PassBuilder]{m: m, name: name, c: &s.CommonFields, self: b}
	return b
}

// Result sets the Pass state's fixed result.
func (b *PassBuilder) Result(v any) *PassBuilder {
	b.s.Result, b.s.HasResult = b.m.value(b.name, "Result", v), true
	return b
}

// Parameters sets the payload template.
func (b *PassBuilder) Parameters(v any) *PassBuilder {
	b.s.Parameters = b.m.value(b.name, "Parameters", v)
	return b
}

// ResultPath places the result; "" discards it.
func (b *PassBuilder) ResultPath(p string) *PassBuilder { b.s.ResultPath = pathOrNull(p); return b }

// TaskBuilder sets a Task state's fields.
type TaskBuilder struct {
	*Machine
	base[*TaskBuilder]
	result[*TaskBuilder]
	s *Task
}

// Task adds a Task state running resource (an ARN).
func (m *Machine) Task(name, resource string) *TaskBuilder {
	s := &Task{Resource: resource}
	m.add(name, s)
	b := &TaskBuilder{Machine: m, s: s}
	b.base = base[*TaskBuilder]{m: m, name: name, c: &s.CommonFields, self: b}
	b.result = result[*TaskBuilder]{owner: m, state: name, parameters: &s.Parameters, resultSelector: &s.ResultSelector,
		resultPath: &s.ResultPath, retry: &s.Retry, catch: &s.Catch, self: b}
	return b
}

// Arguments sets the JSONata arguments.
func (b *TaskBuilder) Arguments(v any) *TaskBuilder {
	b.s.Arguments = b.m.value(b.name, "Arguments", v)
	return b
}

// TimeoutSeconds bounds the task's run.
func (b *TaskBuilder) TimeoutSeconds(n int64) *TaskBuilder {
	b.s.TimeoutSeconds = &IntExpr{Value: n}
	return b
}

// TimeoutSecondsPath reads the timeout from the input.
func (b *TaskBuilder) TimeoutSecondsPath(p string) *TaskBuilder { b.s.TimeoutSecondsPath = p; return b }

// HeartbeatSeconds bounds the time between heartbeats.
func (b *TaskBuilder) HeartbeatSeconds(n int64) *TaskBuilder {
	b.s.HeartbeatSeconds = &IntExpr{Value: n}
	return b
}

// HeartbeatSecondsPath reads the heartbeat interval from the input.
func (b *TaskBuilder) HeartbeatSecondsPath(p string) *TaskBuilder {
	b.s.HeartbeatSecondsPath = p
	return b
}

// Credentials runs the task under an assumed role.
func (b *TaskBuilder) Credentials(roleArn string) *TaskBuilder {
	b.s.Credentials = map[string]any{"RoleArn": roleArn}
	return b
}

// ChoiceBuilder sets a Choice state's rules.
type ChoiceBuilder struct {
	*Machine
	base[*ChoiceBuilder]
	s *Choice
}

// Choice adds a Choice state; add rules with When.
func (m *Machine) Choice(name string) *ChoiceBuilder {
	s := &Choice{}
	m.add(name, s)
	b := &ChoiceBuilder{Machine: m, s: s}
	b.base = base[*ChoiceBuilder]{m: m, name: name, c: &s.CommonFields, self: b}
	return b
}

// When adds a top-level rule that moves to next when it matches.
func (b *ChoiceBuilder) When(r ChoiceRule, next string) *ChoiceBuilder {
	r.Next = next
	b.s.Choices = append(b.s.Choices, r)
	return b
}

// Default names the state to move to when no rule matches.
func (b *ChoiceBuilder) Default(next string) *ChoiceBuilder { b.s.Default = next; return b }

// Compare is a comparison rule: Compare("$.days", "NumericLessThan", 7).
// Go integers become int64, as in a decoded definition.
func Compare(variable, operator string, value any) ChoiceRule {
	if v, err := data.FromGo(value); err == nil {
		value = v
	}
	return ChoiceRule{Variable: variable, Operator: operator, Value: value}
}

// And matches when every rule matches.
func And(rules ...ChoiceRule) ChoiceRule { return ChoiceRule{And: nonNil(rules)} }

// Or matches when any rule matches.
func Or(rules ...ChoiceRule) ChoiceRule { return ChoiceRule{Or: nonNil(rules)} }

// Not matches when r does not.
func Not(r ChoiceRule) ChoiceRule { return ChoiceRule{Not: &r} }

// Condition is a JSONata rule: a "{% ... %}" expression.
func Condition(expr string) ChoiceRule { return ChoiceRule{Condition: expr} }

// nonNil keeps "And": [] distinct from no And, so Validate reports it.
func nonNil(rules []ChoiceRule) []ChoiceRule {
	if rules == nil {
		return []ChoiceRule{}
	}
	return rules
}

// WaitBuilder sets a Wait state's fields.
type WaitBuilder struct {
	*Machine
	base[*WaitBuilder]
	s *Wait
}

// Wait adds a Wait state; set one of its four forms.
func (m *Machine) Wait(name string) *WaitBuilder {
	s := &Wait{}
	m.add(name, s)
	b := &WaitBuilder{Machine: m, s: s}
	b.base = base[*WaitBuilder]{m: m, name: name, c: &s.CommonFields, self: b}
	return b
}

func (b *WaitBuilder) Seconds(n int64) *WaitBuilder        { b.s.Seconds = &IntExpr{Value: n}; return b }
func (b *WaitBuilder) SecondsPath(p string) *WaitBuilder   { b.s.SecondsPath = p; return b }
func (b *WaitBuilder) Timestamp(t string) *WaitBuilder     { b.s.Timestamp = t; return b }
func (b *WaitBuilder) TimestampPath(p string) *WaitBuilder { b.s.TimestampPath = p; return b }

// SucceedBuilder sets a Succeed state's fields.
type SucceedBuilder struct {
	*Machine
	base[*SucceedBuilder]
}

// Succeed adds a Succeed state.
func (m *Machine) Succeed(name string) *SucceedBuilder {
	s := &Succeed{}
	m.add(name, s)
	b := &SucceedBuilder{Machine: m}
	b.base = base[*SucceedBuilder]{m: m, name: name, c: &s.CommonFields, self: b}
	return b
}

// FailBuilder sets a Fail state's fields.
type FailBuilder struct {
	*Machine
	base[*FailBuilder]
	s *Fail
}

// Fail adds a Fail state with an error name and a cause (either may be
// empty, or replaced with ErrorPath/CausePath).
func (m *Machine) Fail(name, error, cause string) *FailBuilder {
	s := &Fail{Error: error, Cause: cause}
	m.add(name, s)
	b := &FailBuilder{Machine: m, s: s}
	b.base = base[*FailBuilder]{m: m, name: name, c: &s.CommonFields, self: b}
	return b
}

func (b *FailBuilder) ErrorPath(p string) *FailBuilder { b.s.ErrorPath = p; return b }
func (b *FailBuilder) CausePath(p string) *FailBuilder { b.s.CausePath = p; return b }

// ParallelBuilder sets a Parallel state's fields.
type ParallelBuilder struct {
	*Machine
	base[*ParallelBuilder]
	result[*ParallelBuilder]
	s *Parallel
}

// Parallel adds a Parallel state running each branch (a Machine built
// with NewMachine) at once.
func (m *Machine) Parallel(name string, branches ...Chain) *ParallelBuilder {
	s := &Parallel{Branches: []Branch{}}
	for _, c := range branches {
		br := c.machine()
		s.Branches = append(s.Branches, br.branch())
		m.problems = append(m.problems, br.problems...)
	}
	m.add(name, s)
	b := &ParallelBuilder{Machine: m, s: s}
	b.base = base[*ParallelBuilder]{m: m, name: name, c: &s.CommonFields, self: b}
	b.result = result[*ParallelBuilder]{owner: m, state: name, parameters: &s.Parameters, resultSelector: &s.ResultSelector,
		resultPath: &s.ResultPath, retry: &s.Retry, catch: &s.Catch, self: b}
	return b
}

// MapBuilder sets a Map state's fields.
type MapBuilder struct {
	*Machine
	base[*MapBuilder]
	result[*MapBuilder]
	s *Map
}

// Map adds an inline Map state running processor (a Machine built with
// NewMachine) once per item.
func (m *Machine) Map(name string, processor Chain) *MapBuilder {
	pm := processor.machine()
	br := pm.branch()
	m.problems = append(m.problems, pm.problems...)
	s := &Map{ItemProcessor: &br}
	m.add(name, s)
	b := &MapBuilder{Machine: m, s: s}
	b.base = base[*MapBuilder]{m: m, name: name, c: &s.CommonFields, self: b}
	// Map's legacy Parameters is its ItemSelector; the builder writes the
	// current name.
	b.result = result[*MapBuilder]{owner: m, state: name, parameters: &s.ItemSelector, resultSelector: &s.ResultSelector,
		resultPath: &s.ResultPath, retry: &s.Retry, catch: &s.Catch, self: b}
	return b
}

func (b *MapBuilder) ItemsPath(p string) *MapBuilder { b.s.ItemsPath = &PathField{Path: p}; return b }

// ItemSelector shapes each item (the builder's Parameters does the same).
func (b *MapBuilder) ItemSelector(v any) *MapBuilder {
	b.s.ItemSelector = b.m.value(b.name, "ItemSelector", v)
	return b
}

func (b *MapBuilder) MaxConcurrency(n int64) *MapBuilder {
	b.s.MaxConcurrency = &IntExpr{Value: n}
	return b
}

func (b *MapBuilder) ToleratedFailurePercentage(p float64) *MapBuilder {
	b.s.ToleratedFailurePercentage = &FloatExpr{Value: p}
	return b
}

func (b *MapBuilder) ToleratedFailureCount(n int64) *MapBuilder {
	b.s.ToleratedFailureCount = &IntExpr{Value: n}
	return b
}

// Distributed runs the items as child executions of executionType
// ("STANDARD" or "EXPRESS").
func (b *MapBuilder) Distributed(executionType string) *MapBuilder {
	b.s.ItemProcessor.ProcessorConfig = &ProcessorConfig{Mode: "DISTRIBUTED", ExecutionType: executionType}
	return b
}
