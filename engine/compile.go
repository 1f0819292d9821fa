package engine

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/jsonpath"
	"github.com/keyflow/keyflow/states/payload"
)

// MaxNesting caps how deeply Parallel and Map states may nest (and how
// deeply executions may start executions synchronously), so that a
// definition cannot exhaust the stack.
const MaxNesting = 32

// Machine is a compiled state machine. It is immutable and shared by every
// execution; start as many as you like from any goroutine.
type Machine struct {
	e       *Engine
	name    string
	arn     string
	def     *states.Definition
	top     *program
	timeout time.Duration
	ctxSM   map[string]any
	roleArn string // the execution role's ARN, as $$.Execution.RoleArn gives it
	// execArnPrefix + an execution's name is the execution's ARN.
	execArnPrefix string
	// stateNames[i] is the name of the node whose id is i+1: history
	// records name a state by id.
	stateNames []*string

	mu    sync.Mutex
	names map[string]*nameRecord
}

// program is a compiled States: the top level, a Parallel branch or a Map's
// ItemProcessor.
type program struct {
	start *node
	nodes map[string]*node
	// usesCtx: some state of the program reads "$$" (a Map builds $$.Map
	// for its iterations only then).
	usesCtx bool
}

// node is one compiled state. Fields common to the state types live here;
// the type's own behaviour is impl.
type node struct {
	name     string
	id       int // 1 + its index in Machine.stateNames
	typ      states.StateType
	next     *node
	end      bool
	in, out  selector
	assign   *payload.Template
	usesCtx  bool // some path or template of the state reads "$$"
	impl     impl
	nextName string
}

type impl interface {
	// exec runs the state on its raw input and returns its output and the
	// next node (nil at the end of the program).
	exec(t *thread, n *node, input any) (any, *node, error)
}

// Name returns the machine's name.
func (m *Machine) Name() string { return m.name }

// Arn returns the machine's ARN.
func (m *Machine) Arn() string { return m.arn }

// ExecutionArn is the ARN an execution of the machine named name has.
func (m *Machine) ExecutionArn(name string) string { return m.execArnPrefix + name }

// Definition returns the definition the machine was compiled from.
func (m *Machine) Definition() *states.Definition { return m.def }

// Compile compiles a parsed (and validated) definition. The error names
// the state and field at fault. A Task whose resource nothing serves (no
// handler, no mock, no supported integration) is an error here, before any
// run. Compiling again under the same name replaces the machine that
// startExecution tasks find by that name.
func (e *Engine) Compile(def *states.Definition, stateMachineName string) (*Machine, error) {
	return e.compile(def, stateMachineName, true)
}

// CompileRevision compiles an older revision of a state machine, for the
// executions that started on it, without replacing the machine that
// startExecution tasks find by the name.
func (e *Engine) CompileRevision(def *states.Definition, stateMachineName string) (*Machine, error) {
	return e.compile(def, stateMachineName, false)
}

func (e *Engine) compile(def *states.Definition, stateMachineName string, register bool) (*Machine, error) {
	if def == nil {
		return nil, fmt.Errorf("engine: compile: no definition")
	}
	if stateMachineName == "" {
		stateMachineName = "StateMachine"
	}
	if err := checkName(stateMachineName); err != nil {
		return nil, fmt.Errorf("engine: compile: state machine name: %w", err)
	}
	m := &Machine{e: e, name: stateMachineName, def: def, names: map[string]*nameRecord{}}
	m.arn = fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", e.opts.Region, e.opts.AccountID, stateMachineName)
	m.ctxSM = map[string]any{"Id": m.arn, "Name": stateMachineName}
	m.execArnPrefix = fmt.Sprintf("arn:aws:states:%s:%s:execution:%s:", e.opts.Region, e.opts.AccountID, stateMachineName)
	m.roleArn = fmt.Sprintf("arn:aws:iam::%s:role/StepFunctions-%s-role", e.opts.AccountID, stateMachineName)
	if def.TimeoutSeconds != nil {
		m.timeout = time.Duration(*def.TimeoutSeconds) * time.Second
	}
	c := &compiler{e: e, ql: def.QueryLanguage}
	if def.QueryLanguage == states.JSONata {
		return nil, fmt.Errorf("engine: compile: /QueryLanguage: JSONata is not supported yet; use JSONPath")
	}
	top, err := c.program("", def.StartAt, def.States, 0)
	if err != nil {
		return nil, err
	}
	m.top = top
	m.stateNames = c.names
	if register {
		e.mu.Lock()
		e.byName[m.name] = m
		e.byArn[m.arn] = m
		e.mu.Unlock()
	}
	return m, nil
}

type compiler struct {
	e     *Engine
	ql    states.QueryLanguage
	names []*string // of the nodes compiled so far, by id-1
}

func (c *compiler) program(ptr, startAt string, ss states.States, depth int) (*program, error) {
	if depth > MaxNesting {
		return nil, fmt.Errorf("engine: compile: %s: Parallel and Map states nest deeper than %d", ptr, MaxNesting)
	}
	p := &program{nodes: make(map[string]*node, len(ss.Names))}
	for _, name := range ss.Names {
		st := ss.ByName[name]
		sptr := ptr + "/States/" + escapePointer(name)
		n, err := c.node(sptr, name, st, depth)
		if err != nil {
			return nil, err
		}
		p.nodes[name] = n
		p.usesCtx = p.usesCtx || n.usesCtx
	}
	for _, name := range ss.Names {
		n := p.nodes[name]
		if n.nextName != "" {
			nx, ok := p.nodes[n.nextName]
			if !ok {
				return nil, fmt.Errorf("engine: compile: %s/States/%s/Next: no state named %q", ptr, escapePointer(name), n.nextName)
			}
			n.next = nx
		}
		if r, ok := n.impl.(resolver); ok {
			if err := r.resolve(p); err != nil {
				return nil, fmt.Errorf("engine: compile: %s/States/%s: %w", ptr, escapePointer(name), err)
			}
		}
	}
	start, ok := p.nodes[startAt]
	if !ok {
		return nil, fmt.Errorf("engine: compile: %s/StartAt: no state named %q", ptr, startAt)
	}
	p.start = start
	return p, nil
}

// resolver is implemented by states that name other states besides Next
// (Choice rules and Default, Catch).
type resolver interface {
	resolve(p *program) error
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func (c *compiler) node(ptr, name string, st states.State, depth int) (*node, error) {
	cf := st.Common()
	if cf.QueryLanguage == states.JSONata {
		return nil, fmt.Errorf("engine: compile: %s/QueryLanguage: JSONata is not supported yet; use JSONPath", ptr)
	}
	n := &node{name: name, typ: st.Type(), nextName: cf.Next, end: cf.End}
	c.names = append(c.names, &n.name)
	n.id = len(c.names)
	var err error
	if n.in, err = compileSelector(cf.InputPath); err != nil {
		return nil, fmt.Errorf("engine: compile: %s/InputPath: %w", ptr, err)
	}
	if n.out, err = compileSelector(cf.OutputPath); err != nil {
		return nil, fmt.Errorf("engine: compile: %s/OutputPath: %w", ptr, err)
	}
	if cf.Assign != nil {
		if n.assign, err = payload.Compile(any(cf.Assign)); err != nil {
			return nil, fmt.Errorf("engine: compile: %s/Assign%w", ptr, relErr(err))
		}
	}
	n.usesCtx = mentionsContext(cf.InputPath, cf.OutputPath, cf.Assign)
	switch s := st.(type) {
	case *states.Pass:
		n.impl, err = c.pass(ptr, n, s)
	case *states.Task:
		n.impl, err = c.task(ptr, n, s)
	case *states.Choice:
		n.impl, err = c.choice(ptr, n, s)
	case *states.Wait:
		n.impl, err = c.wait(ptr, n, s)
	case *states.Succeed:
		n.impl = succeedState{}
	case *states.Fail:
		n.impl, err = c.fail(ptr, n, s)
	case *states.Parallel:
		n.impl, err = c.parallel(ptr, n, s, depth)
	case *states.Map:
		n.impl, err = c.mapState(ptr, n, s, depth)
	default:
		err = fmt.Errorf("engine: compile: %s: unknown state type %T", ptr, st)
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}

// relErr turns a payload error (which names a relative pointer "/Key.$: ...")
// into a suffix for the field's pointer.
func relErr(err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "/") {
		return fmt.Errorf("%s", msg)
	}
	return fmt.Errorf(": %w", err)
}

// mentionsContext reports whether any string in the values reads the
// context object. Building $$ costs allocations, so a state builds it only
// when one of its paths or templates needs it.
func mentionsContext(vals ...any) bool {
	for _, v := range vals {
		if walkStrings(v, func(s string) bool { return strings.Contains(s, "$$") }) {
			return true
		}
	}
	return false
}

func walkStrings(v any, f func(string) bool) bool {
	switch t := v.(type) {
	case string:
		return f(t)
	case *states.PathField:
		return t != nil && f(t.Path)
	case map[string]any:
		for k, x := range t {
			if f(k) || walkStrings(x, f) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if walkStrings(x, f) {
				return true
			}
		}
	case []states.ChoiceRule:
		for i := range t {
			if walkStrings(&t[i], f) {
				return true
			}
		}
	case *states.ChoiceRule:
		if t == nil {
			return false
		}
		if f(t.Variable) || walkStrings(t.Value, f) || walkStrings(t.And, f) || walkStrings(t.Or, f) || walkStrings(t.Not, f) {
			return true
		}
		return walkStrings(t.Assign, f)
	}
	return false
}

// selector is a compiled InputPath or OutputPath.
type selector struct {
	null bool
	p    *jsonpath.Path
}

func compileSelector(f *states.PathField) (selector, error) {
	if f == nil || (!f.Null && f.Path == "$") {
		return selector{}, nil
	}
	if f.Null {
		return selector{null: true}, nil
	}
	p, err := jsonpath.Compile(f.Path)
	if err != nil {
		return selector{}, err
	}
	return selector{p: p}, nil
}

var emptyObject = map[string]any{}

// withinInput reports whether what s selects is never larger, as JSON
// text, than the value it applies to (plus 2 bytes: null gives {}): the
// value itself, {}, or one value inside it.
func (s selector) withinInput() bool {
	return s.p == nil || s.null || (s.p.Definite() && s.p.Root() == "$")
}

func (s selector) apply(t *thread, n *node, v any) (any, error) {
	if s.null {
		return emptyObject, nil
	}
	if s.p == nil {
		return v, nil
	}
	return s.p.Get(t.tempScope(n, v))
}

// resultPath is a compiled ResultPath.
type resultPath struct {
	discard bool
	ref     *jsonpath.ReferencePath // nil: "$", the result replaces the input
	// grow bounds what setting a result at ref adds to the input's JSON
	// text beyond the result's own: each step's key (escaped: at most 6
	// bytes a byte), quotes, colon, comma and the braces of an object the
	// step creates.
	grow int
}

func compileResultPath(f *states.PathField) (resultPath, error) {
	if f == nil || (!f.Null && f.Path == "$") {
		return resultPath{}, nil
	}
	if f.Null {
		return resultPath{discard: true}, nil
	}
	r, err := jsonpath.CompileReference(f.Path)
	if err != nil {
		return resultPath{}, err
	}
	return resultPath{ref: r, grow: 8*len(f.Path) + 16}, nil
}

func (r resultPath) apply(input, result any) (any, error) {
	if r.discard {
		return input, nil
	}
	if r.ref == nil {
		return result, nil
	}
	return r.ref.Set(input, result)
}

// template compiles an optional payload template.
func template(ptr, field string, v any) (*payload.Template, error) {
	if v == nil {
		return nil, nil
	}
	t, err := payload.Compile(v)
	if err != nil {
		return nil, fmt.Errorf("engine: compile: %s/%s%w", ptr, field, relErr(err))
	}
	return t, nil
}

// parameters is a compiled Parameters field. readsInput: some path or
// intrinsic argument of it reads the state's input ("$..."), which AWS
// refuses to apply to a null input.
type parameters struct {
	tmpl       *payload.Template
	readsInput bool
	size       sizeBound // of the result, see templateBound
}

// sizeBound bounds the size, as JSON text, of a template's result:
// fixed + perInput * the size of the effective input, when ok.
type sizeBound struct {
	fixed, perInput int
	ok              bool
}

// of is the bound for an effective input of at most in bytes (in < 0:
// unknown), or -1.
func (b sizeBound) of(in int) int {
	switch {
	case !b.ok:
		return -1
	case b.perInput == 0:
		return b.fixed
	case in < 0:
		return -1
	}
	return b.fixed + b.perInput*in
}

// maxNumberSize bounds the JSON text of any number (int64 or float64).
const maxNumberSize = 32

// templateBound bounds the result of template v (as states decodes it)
// without evaluating it: literals have their own size, a field that reads
// a definite path of the input at most the input's, and a
// States.MathAdd a number's. Anything else (the context object,
// variables, other intrinsics, indefinite paths) is not bounded.
func templateBound(v any) sizeBound {
	switch t := v.(type) {
	case map[string]any:
		b := sizeBound{fixed: 2 + max(len(t)-1, 0), ok: true}
		for k, x := range t {
			var f sizeBound
			if name, dyn := strings.CutSuffix(k, ".$"); dyn {
				k = name
				src, isStr := x.(string)
				if !isStr {
					return sizeBound{}
				}
				switch {
				case strings.HasPrefix(src, "States.MathAdd("):
					f = sizeBound{fixed: maxNumberSize, ok: true}
				default:
					p, err := jsonpath.Compile(src)
					if err != nil || !p.Definite() || p.Root() != "$" {
						return sizeBound{}
					}
					f = sizeBound{perInput: 1, ok: true}
				}
			} else if f = templateBound(x); !f.ok {
				return sizeBound{}
			}
			b.fixed += data.Size(k) + 1 + f.fixed
			b.perInput += f.perInput
		}
		return b
	case []any:
		b := sizeBound{fixed: 2 + max(len(t)-1, 0), ok: true}
		for _, x := range t {
			f := templateBound(x)
			if !f.ok {
				return sizeBound{}
			}
			b.fixed += f.fixed
			b.perInput += f.perInput
		}
		return b
	}
	tree, err := data.FromGo(v)
	if err != nil {
		return sizeBound{}
	}
	return sizeBound{fixed: data.Size(tree), ok: true}
}

// compileParameters compiles an optional Parameters field.
func compileParameters(ptr string, v any) (*parameters, error) {
	t, err := template(ptr, "Parameters", v)
	if t == nil || err != nil {
		return nil, err
	}
	return &parameters{tmpl: t, readsInput: readsInput(v), size: templateBound(v)}, nil
}

// eval evaluates the parameters on the effective input eff. As on AWS, a
// path applied to a null input fails: "Unable to apply Path
// transformation to null or empty input." (runtimeCause prefixes the state).
func (p *parameters) eval(t *thread, n *node, eff any) (any, error) {
	if eff == nil && p.readsInput {
		return nil, fail(failure.Runtime, "Unable to apply Path transformation to null or empty input.")
	}
	return p.tmpl.Eval(t.tempScope(n, eff))
}

// readsInput reports whether a payload template reads "$" (the input):
// the value of a key ending in ".$" that is a path rooted at "$", or an
// intrinsic call with such an argument. "$$" (the context object) and
// "$name" (a variable) do not count.
func readsInput(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && strings.HasSuffix(k, ".$") {
				if pathReadsInput(s) {
					return true
				}
			} else if readsInput(x) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if readsInput(x) {
				return true
			}
		}
	}
	return false
}

// pathReadsInput finds a "$" that starts an input path in s: not part of
// "$$", not followed by a variable name, not inside a quoted string.
func pathReadsInput(s string) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '\'':
			quoted = !quoted
		case c == '$' && !quoted:
			if i+1 < len(s) && s[i+1] == '$' {
				i++
				continue
			}
			if i+1 == len(s) || s[i+1] == '.' || s[i+1] == '[' || s[i+1] == ',' || s[i+1] == ')' || s[i+1] == ' ' {
				return true
			}
		}
	}
	return false
}

// checkOutput enforces the 256 KiB quota on the output out of a state
// that set result res (of at most resSize bytes; -1: unknown) into its
// input with rp, then applied n's OutputPath. The input's size is bounded
// (t.inSize), so out's is bounded by it plus res's and rp's growth: out is
// walked only when no bound shows it within the quota. It records out's
// bound for the next state.
func (t *thread) checkOutput(n *node, rp resultPath, res any, resSize int, out any) error {
	if n.out.withinInput() {
		bound := -1
		switch {
		case rp.discard:
			if t.inSizeOK {
				bound = t.inSize
			}
		case rp.ref == nil:
			bound = resSize
		case t.inSizeOK:
			if resSize < 0 {
				resSize = data.Size(res)
			}
			bound = t.inSize + resSize + rp.grow
		}
		if bound >= 0 && bound+2 <= MaxPayloadBytes {
			t.outSize, t.outSizeOK = bound+2, true
			return nil
		}
	}
	sz := data.Size(out)
	if sz > MaxPayloadBytes {
		return fail(failure.DataLimitExceeded, "The state/task '%s' returned a result with a size exceeding the maximum number of bytes service limit.", n.name)
	}
	t.outSize, t.outSizeOK = sz, true
	return nil
}

// effSize bounds the size of n's effective input (InputPath applied), or
// is -1.
func (t *thread) effSize(n *node) int {
	if t.inSizeOK && n.in.withinInput() {
		return t.inSize + 2
	}
	return -1
}

// checkPayload enforces the 256 KiB quota on a state's input, output or
// task result.
func checkPayload(v any, what string) error {
	if sz := data.Size(v); sz > MaxPayloadBytes {
		return fail(failure.DataLimitExceeded, "The state/task '%s' returned a result with a size exceeding the maximum number of bytes service limit.", what)
	}
	return nil
}

// MaxPayloadBytes is AWS's quota on an execution's input and on every
// state's input, output and task result: 256 KiB of UTF-8 JSON.
const MaxPayloadBytes = 256 * 1024

func compileErr(ptr, field string, err error) error {
	return fmt.Errorf("engine: compile: %s/%s: %w", ptr, field, err)
}
