package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/jsonpath"
	"github.com/keyflow/keyflow/states/payload"
)

// testStateTimeout is how long AWS lets TestState run before the state
// fails with States.Timeout. Waits and retry back-offs take no real time
// here (the clock is virtual), so only a handler can use it up.
const testStateTimeout = 5 * time.Minute

// defaultTestStateName is the name the tested state has when the
// definition is one state: AWS's $$.State.Name reads "StateName" then.
const defaultTestStateName = "StateName"

// testMachineName names the throwaway machine in ARNs and $$.StateMachine.
const testMachineName = "TestState"

// TestState runs one state on its own and reports what it did, as AWS
// Step Functions' TestState does: the state's output and next state
// (SUCCEEDED), its error (FAILED), an error that one of its retriers would
// retry (RETRIABLE: the retry itself is not run, as on AWS, and
// stateConfiguration.retrierRetryCount says how many retries already
// happened), or an error that one of its catchers takes (CAUGHT_ERROR:
// nextState is the catcher's Next and the output is the error output
// {"Error","Cause"} placed by the catcher's ResultPath). At DEBUG and
// TRACE, inspectionData shows the data at each step (input, afterInputPath,
// afterParameters, result, afterResultSelector, afterResultPath) and which
// retrier or catcher applied (errorDetails).
//
// The definition is one state, or a whole state machine with stateName
// naming the state (at the top level or inside a Parallel branch or a Map
// processor). Pass, Task, Choice, Wait, Succeed and Fail states are
// served. A Task calls the service's own handlers (a roleArn is required,
// as on AWS) or answers from mock.result / mock.errorOutput. Waits end at
// once: the run is on a virtual clock. variables seeds the workflow
// variables the state reads.
//
// The run is an execution of a throwaway engine built from the service's
// options without its journal, token secret or hooks: nothing of it is
// written to the store, and it does not appear in ListExecutions.
//
// Not served, answered with ValidationException: Map and Parallel states
// (AWS tests them only with a mock of the whole state), context (a
// caller-supplied $$), stateConfiguration's Map fields (errorCausedByState,
// mapIterationFailureCount, mapItemReaderData), Activity tasks and the
// .sync and .waitForTaskToken patterns without a mock (AWS refuses them
// too). mock.fieldValidationMode is not enforced: there is no service API
// model to check a mocked result against, so every mode acts as NONE.
// A states:startExecution task cannot find the service's state machines
// from the throwaway engine. TRACE shows what DEBUG shows: there are no
// HTTP tasks to trace. JSONata states are refused as the engine refuses
// them everywhere (InvalidDefinition).
//
// Inspection values that the run's history does not record
// (afterInputPath, afterResultSelector, afterResultPath behind an
// OutputPath, a Pass state's afterParameters) are evaluated again from
// the state's fields; an intrinsic such as States.UUID() therefore gives
// another value there than in the output.
func (l *Local) TestState(ctx context.Context, in *sfn.TestStateInput, _ ...func(*sfn.Options)) (*sfn.TestStateOutput, error) {
	if l.readOnly {
		return nil, errReadOnly("TestState")
	}
	tc, err := l.prepareTest(in)
	if err != nil {
		return nil, err
	}
	return tc.run(ctx)
}

// stateTest is one TestState call, checked and ready to run.
type stateTest struct {
	opts      engine.Options
	name      string       // the tested state's name in the run
	state     states.State // as written: its Retry and Catch decide RETRIABLE and CAUGHT_ERROR
	def       *states.Definition
	exits     map[string]testExit // terminal state of the run -> where the state went
	level     types.InspectionLevel
	input     any
	inputText string
	vars      map[string]any
	retries   int64
}

// testExit is where a transition of the tested state leads: the state it
// names, and the catcher it belongs to (-1 when it is not a catcher's).
type testExit struct {
	next  string
	catch int
}

func (l *Local) prepareTest(in *sfn.TestStateInput) (*stateTest, error) {
	if in.Definition == nil || *in.Definition == "" {
		return nil, validation("definition is required")
	}
	tc := &stateTest{level: in.InspectionLevel}
	switch tc.level {
	case "":
		tc.level = types.InspectionLevelInfo
	case types.InspectionLevelInfo, types.InspectionLevelDebug, types.InspectionLevelTrace:
	default:
		return nil, validation(fmt.Sprintf("inspectionLevel %q is not one of INFO, DEBUG, TRACE", string(tc.level)))
	}
	var mock *engine.MockCase
	if m := in.Mock; m != nil {
		if in.RevealSecrets {
			return nil, validation("revealSecrets cannot be used with a mock")
		}
		if (m.Result == nil) == (m.ErrorOutput == nil) {
			return nil, validation("a mock has either a result or an errorOutput")
		}
	}
	if in.Context != nil {
		if in.Mock == nil {
			return nil, validation("context may only be specified with a mock")
		}
		return nil, validation("context is not supported by keyflow's local TestState")
	}
	if c := in.StateConfiguration; c != nil {
		if c.ErrorCausedByState != nil || c.MapIterationFailureCount != nil || c.MapItemReaderData != nil {
			return nil, validation("errorCausedByState, mapIterationFailureCount and mapItemReaderData test Map and Parallel states, which keyflow's local TestState does not run")
		}
		if c.RetrierRetryCount != nil {
			if *c.RetrierRetryCount < 0 {
				return nil, validation("retrierRetryCount must not be negative")
			}
			tc.retries = int64(*c.RetrierRetryCount)
		}
	}
	if in.Variables != nil && *in.Variables != "" {
		v, err := data.Parse([]byte(*in.Variables))
		obj, ok := v.(map[string]any)
		if err != nil || !ok {
			return nil, validation("variables must be a JSON object")
		}
		// The variables are set by a Pass state's Assign, which would
		// read a key ending in ".$" as a path instead of a value.
		if k, bad := templateKey(obj); bad {
			return nil, validation(fmt.Sprintf("variables: keyflow's local TestState cannot set a value with an object key ending in \".$\" (%q)", k))
		}
		tc.vars = obj
	}
	tc.inputText = "{}"
	tc.input = map[string]any{}
	if in.Input != nil && strings.TrimSpace(*in.Input) != "" {
		v, err := data.Parse([]byte(*in.Input))
		if err != nil {
			return nil, &types.InvalidExecutionInput{Message: ptr("Invalid State Machine Execution Input: '" + err.Error() + "'")}
		}
		tc.input, tc.inputText = v, *in.Input
	}

	var err error
	var ql states.QueryLanguage
	if in.StateName != nil {
		tc.name = *in.StateName
		tc.state, ql, err = stateOfMachine(*in.Definition, tc.name)
	} else {
		tc.name = defaultTestStateName
		tc.state, ql, err = loneState(*in.Definition, tc.name)
	}
	if err != nil {
		return nil, err
	}

	task, isTask := tc.state.(*states.Task)
	switch tc.state.Type() {
	case states.TypePass, states.TypeTask, states.TypeChoice, states.TypeWait, states.TypeSucceed, states.TypeFail:
	default:
		return nil, validation(fmt.Sprintf("keyflow's local TestState does not run %s states", tc.state.Type()))
	}
	if in.Mock != nil && !isTask {
		return nil, validation("a mock can only be specified for Task, Map or Parallel states")
	}
	if isTask && in.Mock == nil {
		if deref(in.RoleArn) == "" {
			return nil, validation("RoleArn must be specified when testing a Task state")
		}
		if needsMock(task.Resource) {
			return nil, validation(fmt.Sprintf("testing the resource %q needs a mock: Activity tasks and the .sync and .waitForTaskToken patterns are run only with a mock", task.Resource))
		}
	}
	if r := deref(in.RoleArn); r != "" && !strings.HasPrefix(r, "arn:") {
		return nil, &types.InvalidArn{Message: ptr("Invalid Arn: 'Resource type not valid in this context: " + r + "'")}
	}
	if in.Mock != nil {
		if mock, err = mockCase(tc.name, in.Mock); err != nil {
			return nil, err
		}
	}

	tc.def, tc.exits = runDefinition(tc.name, tc.state, ql, tc.vars)

	// A throwaway engine: the service's handlers and identity, none of its
	// durability or hooks, and a clock of its own that never waits.
	o := l.engineOpts
	o.Journal, o.TokenSecret = nil, nil
	o.OnExecutionStart, o.OnExecutionEnd, o.OnTaskToken = nil, nil, nil
	o.Clock = engine.NewVirtualClock(time.Now())
	o.Mocks = mock
	o.DiscardHistory = false
	tc.opts = o
	return tc, nil
}

// templateKey finds an object key ending in ".$" anywhere in v.
func templateKey(v any) (string, bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if strings.HasSuffix(k, ".$") {
				return k, true
			}
			if k2, ok := templateKey(e); ok {
				return k2, true
			}
		}
	case []any:
		for _, e := range x {
			if k, ok := templateKey(e); ok {
				return k, true
			}
		}
	}
	return "", false
}

// needsMock reports a resource that AWS's TestState runs only with a mock.
func needsMock(resource string) bool {
	if strings.Contains(resource, ":activity:") {
		return true
	}
	for _, suf := range []string{".sync", ".sync:2", ".waitForTaskToken"} {
		if strings.HasSuffix(resource, suf) {
			return true
		}
	}
	return false
}

// mockCase turns TestState's mock into the engine's mocked response of
// the tested state. Retry is taken off the state that runs, so the state
// is invoked once: invocation 0.
func mockCase(state string, m *types.MockInput) (*engine.MockCase, error) {
	var entry map[string]any
	if m.Result != nil {
		v, err := data.Parse([]byte(*m.Result))
		if err != nil {
			return nil, validation("mock.result is not valid JSON: " + err.Error())
		}
		entry = map[string]any{"Return": v}
	} else {
		e := m.ErrorOutput
		entry = map[string]any{"Throw": map[string]any{"Error": deref(e.Error), "Cause": deref(e.Cause)}}
	}
	raw, err := data.Marshal(map[string]any{"0": entry})
	if err != nil {
		return nil, validation("mock: " + err.Error())
	}
	mc, err := engine.NewMockCase(map[string]json.RawMessage{state: raw})
	if err != nil {
		return nil, validation(err.Error())
	}
	return mc, nil
}

// loneState parses a definition that is one state. It is checked as the
// only state of a machine whose other states are the ones it names, so
// that every rule of the language (and every JSON pointer of an error)
// is the one a whole machine gets.
func loneState(def, name string) (states.State, states.QueryLanguage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(def), &fields); err != nil || fields == nil {
		return nil, "", invalidDefinition(errors.New("the definition of a state must be a JSON object"))
	}
	if _, ok := fields["Type"]; !ok {
		if _, ok := fields["States"]; ok {
			return nil, "", invalidDefinition(errors.New("a state machine definition needs stateName to say which state to test"))
		}
	}
	machine := map[string]json.RawMessage{name: json.RawMessage(def)}
	for _, target := range targetsOf(fields) {
		if _, ok := machine[target]; !ok {
			machine[target] = json.RawMessage(`{"Type":"Succeed"}`)
		}
	}
	doc, err := json.Marshal(map[string]any{"StartAt": name, "States": machine})
	if err != nil {
		return nil, "", invalidDefinition(err)
	}
	d, err := states.Parse(doc)
	if err != nil {
		return nil, "", invalidDefinition(err)
	}
	return d.States.ByName[name], d.QueryLanguage, nil
}

// targetsOf reads the names a state's transitions lead to, leniently:
// a malformed field is left for the parser to report.
func targetsOf(fields map[string]json.RawMessage) []string {
	var out []string
	str := func(raw json.RawMessage) {
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "" {
			out = append(out, s)
		}
	}
	nextOf := func(raw json.RawMessage) {
		var list []map[string]json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return
		}
		for _, e := range list {
			if n, ok := e["Next"]; ok {
				str(n)
			}
		}
	}
	for _, f := range []string{"Next", "Default"} {
		if raw, ok := fields[f]; ok {
			str(raw)
		}
	}
	for _, f := range []string{"Choices", "Catch"} {
		if raw, ok := fields[f]; ok {
			nextOf(raw)
		}
	}
	return out
}

// stateOfMachine parses a whole machine and finds the state named name,
// at the top level or in a Parallel branch or Map processor.
func stateOfMachine(def, name string) (states.State, states.QueryLanguage, error) {
	d, err := states.Parse([]byte(def))
	if err != nil {
		return nil, "", invalidDefinition(err)
	}
	if s, ql, ok := findState(d.States, d.QueryLanguage, name, 0); ok {
		return s, ql, nil
	}
	return nil, "", validation(fmt.Sprintf("the definition has no state named %q", name))
}

func findState(ss states.States, ql states.QueryLanguage, name string, depth int) (states.State, states.QueryLanguage, bool) {
	if depth > engine.MaxNesting {
		return nil, "", false
	}
	if s, ok := ss.ByName[name]; ok {
		return s, ql, true
	}
	for _, n := range ss.Names {
		var branches []states.Branch
		switch s := ss.ByName[n].(type) {
		case *states.Parallel:
			branches = s.Branches
		case *states.Map:
			if s.ItemProcessor != nil {
				branches = []states.Branch{*s.ItemProcessor}
			}
		}
		for _, b := range branches {
			bql := ql
			if b.QueryLanguage != "" {
				bql = b.QueryLanguage
			}
			if s, q, ok := findState(b.States, bql, name, depth+1); ok {
				return s, q, true
			}
		}
	}
	return nil, "", false
}

// runDefinition is the machine that runs the test: the state under its
// name, each of its transitions turned to a Succeed state of its own (so
// the run ends where the state would have gone, and the history says
// which transition it took), its Retry taken off (a retry is reported,
// never run) and its catchers' ResultPath reset, so that the error output
// itself reaches the catcher's terminal state. With variables, a Pass
// state before it assigns them.
func runDefinition(name string, s states.State, ql states.QueryLanguage, vars map[string]any) (*states.Definition, map[string]testExit) {
	exits := map[string]testExit{}
	var order []string
	used := map[string]bool{name: true}
	exit := func(next string, catch int) string {
		syn := fmt.Sprintf("keyflow-test-exit-%d", len(exits))
		for used[syn] {
			syn += "-"
		}
		used[syn] = true
		exits[syn] = testExit{next: next, catch: catch}
		order = append(order, syn)
		return syn
	}
	var run states.State
	switch x := s.(type) {
	case *states.Pass:
		c := *x
		if c.Next != "" {
			c.Next = exit(c.Next, -1)
		}
		run = &c
	case *states.Wait:
		c := *x
		if c.Next != "" {
			c.Next = exit(c.Next, -1)
		}
		run = &c
	case *states.Task:
		c := *x
		if c.Next != "" {
			c.Next = exit(c.Next, -1)
		}
		c.Retry = nil
		c.Catch = make([]states.Catcher, len(x.Catch))
		for i, k := range x.Catch {
			k.Next = exit(k.Next, i)
			k.ResultPath = nil
			c.Catch[i] = k
		}
		run = &c
	case *states.Choice:
		c := *x
		c.Choices = make([]states.ChoiceRule, len(x.Choices))
		for i, r := range x.Choices {
			r.Next = exit(r.Next, -1)
			c.Choices[i] = r
		}
		if c.Default != "" {
			c.Default = exit(c.Default, -1)
		}
		run = &c
	default:
		run = s // Succeed and Fail go nowhere
	}
	d := &states.Definition{StartAt: name, QueryLanguage: ql, States: states.States{ByName: map[string]states.State{name: run}}}
	d.States.Names = append(d.States.Names, name)
	for _, syn := range order {
		d.States.Names = append(d.States.Names, syn)
		d.States.ByName[syn] = &states.Succeed{}
	}
	if len(vars) > 0 {
		syn := "keyflow-test-variables"
		for used[syn] {
			syn += "-"
		}
		d.StartAt = syn
		d.States.Names = append(d.States.Names, syn)
		d.States.ByName[syn] = &states.Pass{CommonFields: states.CommonFields{Next: name, Assign: vars}}
	}
	return d, exits
}

// run executes the test and reads its outcome from the run's history.
func (tc *stateTest) run(ctx context.Context) (*sfn.TestStateOutput, error) {
	e := engine.New(tc.opts)
	m, err := e.Compile(tc.def, testMachineName)
	if err != nil {
		return nil, invalidDefinition(err)
	}
	rctx, cancel := context.WithTimeout(ctx, testStateTimeout)
	defer cancel()
	raw, err := data.Marshal(tc.input)
	if err != nil {
		return nil, &types.InvalidExecutionInput{Message: ptr(err.Error())}
	}
	x, err := m.Start(rctx, "", raw)
	if err != nil {
		return nil, apiError(err)
	}
	res := x.Wait(rctx)
	if res == nil {
		// The caller left or the five minutes are up: the run is
		// aborted either way, and waited for so that no handler
		// outlives the call.
		x.Stop("", "")
		<-x.Done()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &sfn.TestStateOutput{Status: types.TestExecutionStatusFailed, Error: ptr(failure.Timeout),
			Cause: ptr("The state did not finish within the five minutes that TestState allows.")}, nil
	}
	return tc.outcome(m, res), nil
}

// trace is what the run's history recorded of the tested state.
type trace struct {
	entered  *types.HistoryEvent
	params   *string // what the task was called with
	result   *string // what the task returned
	exit     string  // the terminal state the run reached, "" if none
	roleArn  string
	assigned map[string]string
}

func (tc *stateTest) read(h []types.HistoryEvent) trace {
	var tr trace
	for i := range h {
		ev := &h[i]
		switch {
		case ev.ExecutionStartedEventDetails != nil:
			tr.roleArn = deref(ev.ExecutionStartedEventDetails.RoleArn)
		case ev.StateEnteredEventDetails != nil:
			n := deref(ev.StateEnteredEventDetails.Name)
			if n == tc.name && tr.entered == nil {
				tr.entered = ev
			} else if _, ok := tc.exits[n]; ok && tr.entered != nil && tr.exit == "" {
				tr.exit = n
			}
		case ev.StateExitedEventDetails != nil:
			if deref(ev.StateExitedEventDetails.Name) == tc.name {
				tr.assigned = ev.StateExitedEventDetails.AssignedVariables
			}
		case ev.TaskScheduledEventDetails != nil:
			tr.params = ev.TaskScheduledEventDetails.Parameters
		case ev.LambdaFunctionScheduledEventDetails != nil:
			tr.params = ev.LambdaFunctionScheduledEventDetails.Input
		case ev.TaskSucceededEventDetails != nil:
			tr.result = ev.TaskSucceededEventDetails.Output
		case ev.LambdaFunctionSucceededEventDetails != nil:
			tr.result = ev.LambdaFunctionSucceededEventDetails.Output
		}
	}
	return tr
}

// outcome turns how the run ended into TestState's answer.
func (tc *stateTest) outcome(m *engine.Machine, res *engine.Result) *sfn.TestStateOutput {
	tr := tc.read(res.History())
	out := &sfn.TestStateOutput{}
	var insp *types.InspectionData
	if tc.level != types.InspectionLevelInfo {
		insp = &types.InspectionData{Input: ptr(tc.inputText)}
		out.InspectionData = insp
	}
	ex, hasExit := tc.exits[tr.exit]
	var errName, cause string
	switch {
	case res.Status == engine.StatusSucceeded && (!hasExit || ex.catch < 0):
		out.Status = types.TestExecutionStatusSucceeded
		text := marshalOrNull(res.Output)
		out.Output = &text
		if hasExit {
			out.NextState = ptr(ex.next)
		}
		if insp != nil {
			tc.inspectSuccess(insp, m, res, tr, text)
		}
		return out
	case res.Status == engine.StatusSucceeded:
		// A catcher took the error: the run's output is the error
		// output itself, as the catcher's ResultPath was reset.
		eo, _ := res.Output.(map[string]any)
		errName, _ = eo["Error"].(string)
		cause, _ = eo["Cause"].(string)
	case res.Status == engine.StatusFailed:
		errName, cause = res.Error, res.Cause
	default:
		// A run of one state ends only by itself or by the deadline,
		// which run handles; anything else is reported as it is.
		errName, cause = failure.Runtime, "the test run ended "+res.Status
	}
	out.Error, out.Cause = ptr(errName), ptr(cause)
	if insp != nil {
		tc.inspectFailure(insp, m, res, tr)
	}
	if task, ok := tc.state.(*states.Task); ok {
		// The engine retries the task's attempt (input, parameters, the
		// call), not what follows a result (ResultSelector, ResultPath,
		// OutputPath): an error after the task returned is not retriable.
		if idx, wait, ok := retriable(task.Retry, errName, tc.retries); ok && tr.result == nil {
			out.Status = types.TestExecutionStatusRetriable
			if insp != nil {
				insp.ErrorDetails = &types.InspectionErrorDetails{RetryIndex: ptr(int32(idx)), RetryBackoffIntervalSeconds: ptr(wait)}
			}
			return out
		}
		if hasExit && ex.catch >= 0 && ex.catch < len(task.Catch) {
			errOut := map[string]any{"Error": errName, "Cause": cause}
			placed, err := placeResult(task.Catch[ex.catch].ResultPath, tc.input, errOut)
			if err != nil {
				out.Status = types.TestExecutionStatusFailed
				out.Error, out.Cause = ptr(failure.Runtime), ptr(err.Error())
				return out
			}
			out.Status = types.TestExecutionStatusCaughtError
			out.NextState = ptr(ex.next)
			text := marshalOrNull(placed)
			out.Output = &text
			if insp != nil {
				insp.ErrorDetails = &types.InspectionErrorDetails{CatchIndex: ptr(int32(ex.catch))}
			}
			return out
		}
	}
	out.Status = types.TestExecutionStatusFailed
	return out
}

// retriable finds the retrier that decides about errName, as the engine
// does: the first whose ErrorEquals names it. The error is retriable when
// that retrier has attempts left after count retries; wait is the
// back-off before the next one (IntervalSeconds x BackoffRate^count,
// capped by MaxDelaySeconds, without jitter).
func retriable(rs []states.Retrier, errName string, count int64) (idx int, wait int32, ok bool) {
	for i, r := range rs {
		if !errorMatches(r.ErrorEquals, errName) {
			continue
		}
		maxAttempts, interval, backoff := int64(3), 1.0, 2.0
		if r.MaxAttempts != nil {
			maxAttempts = *r.MaxAttempts
		}
		if count >= maxAttempts {
			return i, 0, false
		}
		if r.IntervalSeconds != nil {
			interval = float64(*r.IntervalSeconds)
		}
		if r.BackoffRate != nil {
			backoff = *r.BackoffRate
		}
		d := interval * math.Pow(backoff, float64(count))
		if r.MaxDelaySeconds != nil && d > float64(*r.MaxDelaySeconds) {
			d = float64(*r.MaxDelaySeconds)
		}
		return i, int32(min(d, math.MaxInt32)), true
	}
	return -1, 0, false
}

// errorMatches is the engine's rule for ErrorEquals (engine/retry.go,
// unexported there): States.ALL matches any error but States.Runtime, and
// States.TaskFailed any but States.Runtime and States.Timeout.
func errorMatches(names []string, errName string) bool {
	for _, n := range names {
		switch {
		case n == errName:
			return true
		case n == failure.All || n == failure.TaskFailed:
			if errName == failure.Runtime || (n == failure.TaskFailed && errName == failure.Timeout) {
				continue
			}
			return true
		}
	}
	return false
}

// inspectSuccess fills the data-flow steps of a state that completed, with
// the fields AWS shows for its type: a Pass state with a Result shows no
// input processing (it reads no input), Choice, Wait and Succeed only
// their input path.
func (tc *stateTest) inspectSuccess(insp *types.InspectionData, m *engine.Machine, res *engine.Result, tr trace, output string) {
	sc := tc.scope(m, res, tr)
	set := func(dst **string, v any) { *dst = ptr(marshalOrNull(v)) }
	common := tc.state.Common()
	afterInput, inputOK := applyPath(common.InputPath, tc.input, sc)
	var result any
	var resultOK bool
	var resultPath *states.PathField
	var selector any
	switch s := tc.state.(type) {
	case *states.Pass:
		resultPath = s.ResultPath
		if s.HasResult {
			v, err := data.FromGo(s.Result)
			if err != nil {
				return
			}
			result, resultOK = v, true
			set(&insp.Result, result)
		} else {
			if !inputOK {
				return
			}
			set(&insp.AfterInputPath, afterInput)
			result, resultOK = afterInput, true
			if s.Parameters != nil {
				result, resultOK = evalTemplate(s.Parameters, afterInput, sc)
			}
			if !resultOK {
				return
			}
			set(&insp.AfterParameters, result)
		}
	case *states.Task:
		resultPath, selector = s.ResultPath, s.ResultSelector
		if inputOK {
			set(&insp.AfterInputPath, afterInput)
		}
		insp.AfterParameters = tr.params
		insp.Result = tr.result
		if tr.result == nil {
			return
		}
		v, err := data.Parse([]byte(*tr.result))
		if err != nil {
			return
		}
		result, resultOK = v, true
	default:
		if inputOK {
			set(&insp.AfterInputPath, afterInput)
		}
		tc.inspectVars(insp, tr)
		return
	}
	if selector != nil {
		if result, resultOK = evalTemplate(selector, result, sc); !resultOK {
			return
		}
	}
	set(&insp.AfterResultSelector, result)
	if op := common.OutputPath; op == nil || (!op.Null && op.Path == "$") {
		insp.AfterResultPath = ptr(output)
	} else if placed, err := placeResult(resultPath, tc.input, result); err == nil {
		set(&insp.AfterResultPath, placed)
	}
	tc.inspectVars(insp, tr)
}

// inspectFailure fills what a failed state got to: its input path and,
// for a task that was called, its parameters.
func (tc *stateTest) inspectFailure(insp *types.InspectionData, m *engine.Machine, res *engine.Result, tr trace) {
	if tr.entered == nil {
		return
	}
	if p, ok := tc.state.(*states.Pass); ok && p.HasResult {
		return
	}
	if v, ok := applyPath(tc.state.Common().InputPath, tc.input, tc.scope(m, res, tr)); ok {
		insp.AfterInputPath = ptr(marshalOrNull(v))
	}
	insp.AfterParameters = tr.params
}

// inspectVars shows the variables after the state: those the call set,
// with what the state assigned over them.
func (tc *stateTest) inspectVars(insp *types.InspectionData, tr trace) {
	if len(tc.vars) == 0 && len(tr.assigned) == 0 {
		return
	}
	vars := make(map[string]any, len(tc.vars)+len(tr.assigned))
	for k, v := range tc.vars {
		vars[k] = v
	}
	for k, text := range tr.assigned {
		v, err := data.Parse([]byte(text))
		if err != nil {
			continue
		}
		vars[k] = v
	}
	insp.Variables = ptr(marshalOrNull(vars))
}

// scope is what the state's paths and templates read when they are
// evaluated again: its input, the variables of the call, and a $$ with the
// run's execution and the state's entry.
func (tc *stateTest) scope(m *engine.Machine, res *engine.Result, tr trace) *jsonpath.Scope {
	execName := res.ExecutionArn[strings.LastIndex(res.ExecutionArn, ":")+1:]
	entered := res.StartDate
	if tr.entered != nil && tr.entered.Timestamp != nil {
		entered = *tr.entered.Timestamp
	}
	ctxObj := map[string]any{
		"Execution": map[string]any{"Id": res.ExecutionArn, "Input": tc.input, "Name": execName, "RoleArn": tr.roleArn,
			"StartTime": formatMS(res.StartDate), "RedriveCount": int64(0)},
		"State":        map[string]any{"EnteredTime": formatMS(entered), "Name": tc.name, "RetryCount": tc.retries},
		"StateMachine": map[string]any{"Id": m.Arn(), "Name": m.Name()},
	}
	return &jsonpath.Scope{Context: ctxObj, Vars: tc.vars}
}

func formatMS(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// applyPath applies an InputPath or OutputPath: absent is "$", null is {}.
func applyPath(f *states.PathField, v any, sc *jsonpath.Scope) (any, bool) {
	if f == nil {
		return v, true
	}
	if f.Null {
		return map[string]any{}, true
	}
	p, err := jsonpath.Compile(f.Path)
	if err != nil {
		return nil, false
	}
	s := *sc
	s.Input = v
	got, err := p.Get(&s)
	return got, err == nil
}

// evalTemplate evaluates a Parameters or ResultSelector template on v.
func evalTemplate(tmpl, v any, sc *jsonpath.Scope) (any, bool) {
	t, err := payload.Compile(tmpl)
	if err != nil {
		return nil, false
	}
	s := *sc
	s.Input = v
	got, err := t.Eval(&s)
	return got, err == nil
}

// placeResult applies a ResultPath: absent is "$" (the result replaces
// the input), null discards the result.
func placeResult(f *states.PathField, input, result any) (any, error) {
	if f == nil {
		return result, nil
	}
	if f.Null {
		return input, nil
	}
	r, err := jsonpath.CompileReference(f.Path)
	if err != nil {
		return nil, err
	}
	return r.Set(input, result)
}

// marshalOrNull is v as JSON text; a value tree always marshals, and
// "null" stands in should one ever not.
func marshalOrNull(v any) string {
	b, err := data.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}
