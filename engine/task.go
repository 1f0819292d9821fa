package engine

import (
	"context"
	"errors"
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

// DefaultTaskTimeout is how long a task may run when TimeoutSeconds is not
// set: AWS's default of 99999999 seconds. On the virtual clock a token wait
// that nobody answers ends there.
const DefaultTaskTimeout = 99999999 * time.Second

type taskKind int

const (
	kindGeneric      taskKind = iota
	kindLambdaARN             // arn:aws:lambda:...:function:NAME
	kindLambdaInvoke          // arn:aws:states:::lambda:invoke
	kindStartExec             // arn:aws:states:::states:startExecution
)

// taskState runs one unit of work named by its resource.
type taskState struct {
	resource     string
	kind         taskKind
	pattern      string // "", "sync", "sync:2", "waitForTaskToken"
	service, api string // ResourceType and Resource of the history events
	handler      Handler
	params       *parameters
	selector     *payload.Template
	rp           resultPath
	g            *guard
	timeout      int64
	hasTimeout   bool
	timeoutPath  *jsonpath.Path
	heartbeat    int64
	hbPath       *jsonpath.Path
	mocked       bool
}

func (c *compiler) task(ptr string, n *node, s *states.Task) (impl, error) {
	ts := &taskState{resource: s.Resource}
	var err error
	if ts.params, err = compileParameters(ptr, s.Parameters); err != nil {
		return nil, err
	}
	if ts.selector, err = template(ptr, "ResultSelector", s.ResultSelector); err != nil {
		return nil, err
	}
	if ts.rp, err = compileResultPath(s.ResultPath); err != nil {
		return nil, compileErr(ptr, "ResultPath", err)
	}
	if ts.g, err = compileGuard(ptr, s.Retry, s.Catch); err != nil {
		return nil, err
	}
	if s.TimeoutSeconds != nil {
		if s.TimeoutSeconds.Expr != "" {
			return nil, compileErr(ptr, "TimeoutSeconds", errJSONata)
		}
		ts.timeout, ts.hasTimeout = s.TimeoutSeconds.Value, true
	}
	if s.TimeoutSecondsPath != "" {
		if ts.timeoutPath, err = jsonpath.Compile(s.TimeoutSecondsPath); err != nil {
			return nil, compileErr(ptr, "TimeoutSecondsPath", err)
		}
	}
	if s.HeartbeatSeconds != nil {
		if s.HeartbeatSeconds.Expr != "" {
			return nil, compileErr(ptr, "HeartbeatSeconds", errJSONata)
		}
		ts.heartbeat = s.HeartbeatSeconds.Value
	}
	if s.HeartbeatSecondsPath != "" {
		if ts.hbPath, err = jsonpath.Compile(s.HeartbeatSecondsPath); err != nil {
			return nil, compileErr(ptr, "HeartbeatSecondsPath", err)
		}
	}
	if s.Arguments != nil {
		return nil, compileErr(ptr, "Arguments", errJSONata)
	}
	n.usesCtx = n.usesCtx || mentionsContext(s.Parameters, s.ResultSelector, s.ResultPath, s.TimeoutSecondsPath, s.HeartbeatSecondsPath)
	ts.parseResource()
	ts.mocked = c.e.opts.Mocks.has(n.name)
	if err := c.checkServed(ts, s); err != nil {
		return nil, fmt.Errorf("engine: compile: %s/Resource: %w", ptr, err)
	}
	return ts, nil
}

func (ts *taskState) resolve(p *program) error { return ts.g.resolve(p) }

// parseResource splits the resource ARN into the kind of dispatch, the
// integration pattern, and the names the history events carry.
func (ts *taskState) parseResource() {
	r := ts.resource
	base := r
	for _, suf := range []string{".waitForTaskToken", ".sync:2", ".sync"} {
		if b, ok := strings.CutSuffix(r, suf); ok {
			base, ts.pattern = b, suf[1:]
			break
		}
	}
	parts := strings.SplitN(r, ":", 6)
	switch {
	case strings.HasPrefix(r, "arn:aws:lambda:") && len(parts) == 6 && strings.HasPrefix(parts[5], "function:"):
		ts.kind = kindLambdaARN
		ts.service, ts.api = "lambda", r
	case strings.HasPrefix(r, "arn:aws:states:::"):
		rest := strings.TrimPrefix(r, "arn:aws:states:::")
		ts.service, ts.api, _ = strings.Cut(rest, ":")
		switch strings.TrimPrefix(base, "arn:aws:states:::") {
		case "lambda:invoke":
			ts.kind = kindLambdaInvoke
		case "states:startExecution":
			ts.kind = kindStartExec
		}
	default:
		ts.service, ts.api = "", r
		if len(parts) >= 3 {
			ts.service = parts[2]
		}
	}
}

// checkServed refuses, before any run, a resource that nothing serves.
func (c *compiler) checkServed(ts *taskState, s *states.Task) error {
	if ts.mocked {
		return nil
	}
	h := c.e.opts.Handlers
	switch ts.kind {
	case kindLambdaARN:
		if ts.handler = lookupLambda(h, ts.resource); ts.handler == nil {
			return fmt.Errorf("no handler for Lambda function %q", ts.resource)
		}
		return nil
	case kindLambdaInvoke:
		m, _ := s.Parameters.(map[string]any)
		if fn, ok := m["FunctionName"].(string); ok {
			if lookupLambda(h, fn) == nil {
				if ts.pattern == "waitForTaskToken" && c.e.opts.OnTaskToken != nil {
					return nil
				}
				return fmt.Errorf("no handler for Lambda function %q", fn)
			}
			return nil
		}
		if _, ok := m["FunctionName.$"]; ok {
			return nil // chosen at run time
		}
		return fmt.Errorf("lambda:invoke needs Parameters.FunctionName")
	case kindStartExec:
		return nil // the machine is looked up by ARN at run time
	}
	if ts.handler = lookupResource(h, ts.resource); ts.handler != nil {
		return nil
	}
	if ts.pattern == "waitForTaskToken" && c.e.opts.OnTaskToken != nil {
		return nil
	}
	return fmt.Errorf("nothing serves resource %q: register a handler or a mocked response", ts.resource)
}

func lookupResource(h map[string]Handler, r string) Handler {
	if x, ok := h[r]; ok {
		return x
	}
	for _, suf := range []string{".waitForTaskToken", ".sync:2", ".sync"} {
		if b, ok := strings.CutSuffix(r, suf); ok {
			if x, ok := h[b]; ok {
				return x
			}
		}
	}
	return nil
}

// lookupLambda finds the handler of a function given by name, by ARN
// (with or without a qualifier) or by partial ARN.
func lookupLambda(h map[string]Handler, fn string) Handler {
	if x, ok := h[fn]; ok {
		return x
	}
	name := fn
	if i := strings.Index(fn, "function:"); i >= 0 {
		name = fn[i+len("function:"):]
	}
	if x, ok := h[name]; ok {
		return x
	}
	if b, _, ok := strings.Cut(name, ":"); ok {
		if x, ok := h[b]; ok {
			return x
		}
		for k, x := range h {
			if strings.HasSuffix(k, "function:"+b) {
				return x
			}
		}
	}
	for k, x := range h {
		if strings.HasSuffix(k, "function:"+name) {
			return x
		}
	}
	return nil
}

func (ts *taskState) exec(t *thread, n *node, input any) (any, *node, error) {
	t.enter(n, types.HistoryEventTypeTaskStateEntered, input)
	res, err := t.withRetry(ts.g, func() (any, error) { return ts.attempt(t, n, input) })
	if err == nil {
		var out any
		var assigned map[string]any
		out, assigned, err = ts.finish(t, n, input, res)
		if err == nil {
			t.exit(n, types.HistoryEventTypeTaskStateExited, out, assigned)
			return out, n.next, nil
		}
	}
	return t.catch(ts.g, n, input, err, types.HistoryEventTypeTaskStateExited)
}

func (ts *taskState) finish(t *thread, n *node, input, res any) (any, map[string]any, error) {
	return finishResult(t, n, ts.selector, ts.rp, input, res)
}

// finishResult is ResultSelector -> ResultPath -> OutputPath -> Assign,
// the end of a Task, Parallel or Map state. Assign reads the result after
// ResultSelector as $, as AWS documents.
func finishResult(t *thread, n *node, selector *payload.Template, rp resultPath, input, res any) (any, map[string]any, error) {
	var err error
	if selector != nil {
		if res, err = selector.Eval(t.scope(n, res)); err != nil {
			return nil, nil, err
		}
	}
	out, err := rp.apply(input, res)
	if err != nil {
		return nil, nil, err
	}
	if out, err = n.out.apply(t, n, out); err != nil {
		return nil, nil, err
	}
	if err := checkPayload(out, n.name); err != nil {
		return nil, nil, err
	}
	assigned, err := t.assign(n, n.assign, res)
	return out, assigned, err
}

// attempt is one try of the task: InputPath, Parameters, the call.
func (ts *taskState) attempt(t *thread, n *node, input any) (any, error) {
	t.entered = t.now()
	var w *tokenWait
	if ts.pattern == "waitForTaskToken" && !ts.mocked {
		w = t.x.newTokenWait(t.f)
		t.token = w.token
	}
	eff, err := n.in.apply(t, n, input)
	if err != nil {
		return nil, err
	}
	params := eff
	if ts.params != nil {
		if params, err = ts.params.eval(t, n, eff); err != nil {
			return nil, err
		}
	}
	if data.Size(params) > MaxPayloadBytes {
		return nil, fail(failure.DataLimitExceeded, "The state/task '%s' has an input with a size exceeding the maximum number of bytes service limit.", n.name)
	}
	timeout, heartbeat, err := ts.limits(t, n, eff)
	if err != nil {
		return nil, err
	}
	call := &taskCall{t: t, ts: ts, n: n, params: params, timeout: timeout, heartbeat: heartbeat, w: w}
	res, err := call.run()
	if err == nil {
		if data.Size(res) > MaxPayloadBytes {
			return nil, fail(failure.DataLimitExceeded, "The state/task '%s' returned a result with a size exceeding the maximum number of bytes service limit.", ts.resource)
		}
	}
	return res, err
}

// limits reads TimeoutSeconds/HeartbeatSeconds or their Path forms.
func (ts *taskState) limits(t *thread, n *node, eff any) (timeout, heartbeat int64, err error) {
	timeout, heartbeat = ts.timeout, ts.heartbeat
	if !ts.hasTimeout {
		timeout = 0
	}
	read := func(p *jsonpath.Path, field string) (int64, error) {
		v, err := p.Get(t.scope(n, eff))
		if err != nil {
			return 0, err
		}
		f, ok := data.Number(v)
		if !ok || f <= 0 || f != float64(int64(f)) {
			return 0, fail(failure.Runtime, "The %s parameter does not reference a valid positive integer value: %s", field, preview(v))
		}
		return int64(f), nil
	}
	if ts.timeoutPath != nil {
		if timeout, err = read(ts.timeoutPath, "TimeoutSecondsPath"); err != nil {
			return 0, 0, err
		}
	}
	if ts.hbPath != nil {
		if heartbeat, err = read(ts.hbPath, "HeartbeatSecondsPath"); err != nil {
			return 0, 0, err
		}
	}
	return timeout, heartbeat, nil
}

// taskCall is one call of a task's resource, with its history events.
type taskCall struct {
	t                  *thread
	ts                 *taskState
	n                  *node
	params             any
	timeout, heartbeat int64
	w                  *tokenWait
}

func (c *taskCall) lambdaEvents() bool { return c.ts.kind == kindLambdaARN }

func (c *taskCall) scheduled() {
	ts := c.ts
	var to, hb *int64
	if c.timeout > 0 {
		to = ptr(c.timeout)
	}
	if c.heartbeat > 0 {
		hb = ptr(c.heartbeat)
	}
	if c.lambdaEvents() {
		c.t.emit(&event{typ: types.HistoryEventTypeLambdaFunctionScheduled, resource: ts.resource, input: c.params, hasInput: true, timeout: to})
		c.t.emit(&event{typ: types.HistoryEventTypeLambdaFunctionStarted})
		return
	}
	c.t.emit(&event{typ: types.HistoryEventTypeTaskScheduled, resource: ts.api, resourceType: ts.service,
		region: c.t.x.m.e.opts.Region, params: c.params, timeout: to, heartbeat: hb})
	c.t.emit(&event{typ: types.HistoryEventTypeTaskStarted, resource: ts.api, resourceType: ts.service})
}

func (c *taskCall) succeeded(out any) {
	if c.lambdaEvents() {
		c.t.emit(&event{typ: types.HistoryEventTypeLambdaFunctionSucceeded, output: out, hasOutput: true})
		return
	}
	c.t.emit(&event{typ: types.HistoryEventTypeTaskSucceeded, resource: c.ts.api, resourceType: c.ts.service, output: out, hasOutput: true})
}

func (c *taskCall) failed(fe *failure.Error) {
	timedOut := fe.Name == failure.Timeout || fe.Name == failure.HeartbeatTimeout
	switch {
	case c.lambdaEvents() && timedOut:
		c.t.emit(&event{typ: types.HistoryEventTypeLambdaFunctionTimedOut, errName: fe.Name, cause: fe.Cause, hasErr: true})
	case c.lambdaEvents():
		c.t.emit(&event{typ: types.HistoryEventTypeLambdaFunctionFailed, errName: fe.Name, cause: fe.Cause, hasErr: true})
	case timedOut:
		c.t.emit(&event{typ: types.HistoryEventTypeTaskTimedOut, resource: c.ts.api, resourceType: c.ts.service, errName: fe.Name, cause: fe.Cause, hasErr: true})
	default:
		c.t.emit(&event{typ: types.HistoryEventTypeTaskFailed, resource: c.ts.api, resourceType: c.ts.service, errName: fe.Name, cause: fe.Cause, hasErr: true})
	}
}

func (c *taskCall) run() (any, error) {
	c.scheduled()
	res, err, replayed := c.replayedResult()
	if !replayed {
		// What the task is asked is on disk before it acts.
		c.t.x.commit(time.Time{}, false)
		res, err = c.call()
	}
	if err != nil {
		var fe *failure.Error
		if errors.As(err, &fe) {
			c.failed(fe)
		}
		return nil, err
	}
	c.succeeded(res)
	return res, nil
}

// call dispatches: a mocked response first, then the integration.
func (c *taskCall) call() (any, error) {
	t, ts := c.t, c.ts
	if ts.mocked {
		return t.x.mocked(c.n.name)
	}
	switch ts.kind {
	case kindStartExec:
		return c.startExecution()
	case kindLambdaInvoke:
		m, _ := c.params.(map[string]any)
		fn, _ := m["FunctionName"].(string)
		h := lookupLambda(t.x.m.e.opts.Handlers, fn)
		pl, ok := m["Payload"]
		if !ok {
			pl = emptyObject
		}
		if c.w != nil {
			if sub, ok := c.replayedSubmission(); ok {
				return c.waitToken(sub)
			}
			var sub any
			if h != nil {
				out, err := c.invoke(h, pl)
				if err != nil {
					return nil, err
				}
				sub = lambdaInvokeResult(t, out)
			}
			return c.waitToken(sub)
		}
		if h == nil {
			return nil, fail("Lambda.ResourceNotFoundException", "Function not found: %s", fn)
		}
		out, err := c.invoke(h, pl)
		if err != nil {
			return nil, err
		}
		return lambdaInvokeResult(t, out), nil
	}
	h := ts.handler
	if h == nil {
		h = lookupResource(t.x.m.e.opts.Handlers, ts.resource)
	}
	if c.w != nil {
		if sub, ok := c.replayedSubmission(); ok {
			return c.waitToken(sub)
		}
		var sub any = emptyObject
		if h != nil {
			out, err := c.invoke(h, c.params)
			if err != nil {
				return nil, err
			}
			sub = out
		}
		return c.waitToken(sub)
	}
	if h == nil {
		return nil, fail(failure.TaskFailed, "nothing serves resource %s", ts.resource)
	}
	return c.invoke(h, c.params)
}

// invoke calls a handler in-process. Its error becomes the error that
// Lambda reports: the Go type name as the name, and the cause as the JSON
// {"errorMessage","errorType"} that AWS writes for Lambda failures.
func (c *taskCall) invoke(h Handler, in any) (any, error) {
	b, err := data.Marshal(in)
	if err != nil {
		return nil, fail(failure.Runtime, "cannot encode the task input: %v", err)
	}
	ctx := withTaskTime(c.t.ctx, c.t.now())
	var cancel context.CancelFunc = func() {}
	if !c.t.x.m.e.virtual() && c.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(c.timeout)*time.Second)
	}
	defer cancel()
	out, herr := c.t.x.m.e.invokeHandler(ctx, h, b)
	if c.t.ctx.Err() != nil {
		return nil, errStopped
	}
	if ctx.Err() != nil {
		return nil, &failure.Error{Name: failure.Timeout}
	}
	if herr != nil {
		return nil, lambdaFailure(herr)
	}
	if len(out) == 0 {
		return nil, nil
	}
	v, perr := data.Parse(out)
	if perr != nil {
		return string(out), nil
	}
	return v, nil
}

// waitToken parks a ".waitForTaskToken" task after its resource accepted
// the token (TaskSubmitted) until the token is answered or times out.
func (c *taskCall) waitToken(submitted any) (any, error) {
	t, w := c.t, c.w
	x := t.x
	if !c.lambdaEvents() {
		t.emit(&event{typ: types.HistoryEventTypeTaskSubmitted, resource: c.ts.api, resourceType: c.ts.service, output: submitted, hasOutput: true})
	}
	now := t.now()
	x.run.locked(w, func() {
		w.started, w.lastBeat = now, now
		if c.timeout > 0 {
			w.timeout = time.Duration(c.timeout) * time.Second
		}
		w.heartbeat = time.Duration(c.heartbeat) * time.Second
	})
	if x.dur != nil {
		x.replayAnswer(w, t.prev)
	}
	e := x.m.e
	if cb := e.opts.OnTaskToken; cb != nil {
		cb(w.token, c.params)
	}
	x.run.park(t.ctx, t.f, w)
	if t.ctx.Err() != nil {
		return nil, errStopped
	}
	switch {
	case w.timedOut.Load() && w.hbLapsed:
		return nil, &failure.Error{Name: failure.HeartbeatTimeout}
	case w.timedOut.Load():
		return nil, &failure.Error{Name: failure.Timeout}
	case w.failed:
		return nil, &failure.Error{Name: w.errName, Cause: w.cause}
	}
	return w.output, nil
}

// newTokenWait registers a token before the resource is called, so that a
// handler may answer its own token while it runs.
func (x *Execution) newTokenWait(f *fiber) *tokenWait {
	w := &tokenWait{token: x.tokenFor(), x: x, f: f, signal: make(chan struct{}), timeout: DefaultTaskTimeout}
	x.m.e.tokens.Store(w.token, w)
	x.tokMu.Lock()
	x.tokens = append(x.tokens, w.token)
	x.tokMu.Unlock()
	return w
}

// mocked answers the next invocation of state from the mock case.
func (x *Execution) mocked(state string) (any, error) {
	mc := x.m.e.opts.Mocks
	x.mockMu.Lock()
	if x.mockCalls == nil {
		x.mockCalls = map[string]int{}
	}
	n := x.mockCalls[state]
	x.mockCalls[state] = n + 1
	x.mockMu.Unlock()
	ent, ok := mc.byState[state].answer(n)
	if !ok {
		return nil, fail(failure.TaskFailed, "no mocked response for invocation %d of state %q", n, state)
	}
	if !ent.hasRet {
		return nil, &failure.Error{Name: ent.errName, Cause: ent.cause}
	}
	return ent.ret, nil
}
