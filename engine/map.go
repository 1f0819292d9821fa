package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/jsonpath"
	"github.com/keyflow/keyflow/states/payload"
)

// mapState runs its ItemProcessor once per item; the output is the array
// of the iterations' outputs in item order.
type mapState struct {
	proc        *program
	distributed bool
	itemsPath   selector
	selector    *payload.Template // ItemSelector (or legacy Parameters)
	selUsesCtx  bool              // the selector reads $$
	// selItemOnly: every "$$" of the selector starts "$$.Map.Item.Value" or
	// "$$.Map.Item.Index", so no path can return the context object, $$.Map
	// or $$.Map.Item themselves: a worker may refill one set of them per
	// item instead of building new ones (see iterScratch).
	selItemOnly bool
	selReadsIdx bool // the selector reads $$.Map.Item.Index
	resSelector *payload.Template
	rp          resultPath
	g           *guard

	maxConc     int64
	maxConcPath *jsonpath.Path

	tolCount, tolPct         float64
	hasTolCount, hasTolPct   bool
	tolCountPath, tolPctPath *jsonpath.Path

	batch *batcher
	// readerMocked: the items come from the mocked response of the state.
	readerMocked bool
}

type batcher struct {
	maxItems     int64
	maxItemsPath *jsonpath.Path
	maxBytes     int64
	maxBytesPath *jsonpath.Path
	input        *payload.Template
}

func (c *compiler) mapState(ptr string, n *node, s *states.Map, depth int) (impl, error) {
	m := &mapState{}
	var err error
	if s.ItemProcessor == nil {
		return nil, fmt.Errorf("engine: compile: %s/ItemProcessor: missing", ptr)
	}
	proc := s.ItemProcessor
	pf := "ItemProcessor"
	if s.LegacyIterator {
		pf = "Iterator"
	}
	if proc.ProcessorConfig != nil && proc.ProcessorConfig.Mode == "DISTRIBUTED" {
		m.distributed = true
	}
	if s.Items != nil {
		return nil, compileErr(ptr, "Items", errJSONata)
	}
	mocked := c.e.opts.Mocks.has(n.name)
	if s.ItemReader != nil {
		if !mocked {
			return nil, fmt.Errorf("engine: compile: %s/ItemReader: reading items from %q is not supported locally; mock the state to give its items", ptr, s.ItemReader.Resource)
		}
		m.readerMocked = true
	}
	if s.ResultWriter != nil && !mocked {
		return nil, fmt.Errorf("engine: compile: %s/ResultWriter: writing results to %q is not supported locally; mock the state", ptr, s.ResultWriter.Resource)
	}
	if m.proc, err = c.program(ptr+"/"+pf, proc.StartAt, proc.States, depth+1); err != nil {
		return nil, err
	}
	if m.itemsPath, err = compileSelector(s.ItemsPath); err != nil {
		return nil, compileErr(ptr, "ItemsPath", err)
	}
	sel, field := s.ItemSelector, "ItemSelector"
	if sel == nil && s.Parameters != nil {
		sel, field = s.Parameters, "Parameters"
	}
	if m.selector, err = template(ptr, field, sel); err != nil {
		return nil, err
	}
	m.selUsesCtx = mentionsContext(sel)
	m.selItemOnly = m.selUsesCtx && !walkStrings(sel, func(s string) bool { return !ctxOnlyMapItem(s) })
	m.selReadsIdx = walkStrings(sel, func(s string) bool { return strings.Contains(s, "$$.Map.Item.Index") })
	if m.resSelector, err = template(ptr, "ResultSelector", s.ResultSelector); err != nil {
		return nil, err
	}
	if m.rp, err = compileResultPath(s.ResultPath); err != nil {
		return nil, compileErr(ptr, "ResultPath", err)
	}
	if m.g, err = compileGuard(ptr, s.Retry, s.Catch); err != nil {
		return nil, err
	}
	if s.MaxConcurrency != nil {
		m.maxConc = s.MaxConcurrency.Value
	}
	if m.maxConcPath, err = optPath(s.MaxConcurrencyPath); err != nil {
		return nil, compileErr(ptr, "MaxConcurrencyPath", err)
	}
	if s.ToleratedFailureCount != nil {
		m.tolCount, m.hasTolCount = float64(s.ToleratedFailureCount.Value), true
	}
	if s.ToleratedFailurePercentage != nil {
		m.tolPct, m.hasTolPct = s.ToleratedFailurePercentage.Value, true
	}
	if m.tolCountPath, err = optPath(s.ToleratedFailureCountPath); err != nil {
		return nil, compileErr(ptr, "ToleratedFailureCountPath", err)
	}
	if m.tolPctPath, err = optPath(s.ToleratedFailurePercentagePath); err != nil {
		return nil, compileErr(ptr, "ToleratedFailurePercentagePath", err)
	}
	if b := s.ItemBatcher; b != nil {
		m.batch = &batcher{}
		if b.MaxItemsPerBatch != nil {
			m.batch.maxItems = b.MaxItemsPerBatch.Value
		}
		if b.MaxInputBytesPerBatch != nil {
			m.batch.maxBytes = b.MaxInputBytesPerBatch.Value
		}
		if m.batch.maxItemsPath, err = optPath(b.MaxItemsPerBatchPath); err != nil {
			return nil, compileErr(ptr, "ItemBatcher/MaxItemsPerBatchPath", err)
		}
		if m.batch.maxBytesPath, err = optPath(b.MaxInputBytesPerBatchPath); err != nil {
			return nil, compileErr(ptr, "ItemBatcher/MaxInputBytesPerBatchPath", err)
		}
		if m.batch.input, err = template(ptr+"/ItemBatcher", "BatchInput", b.BatchInput); err != nil {
			return nil, err
		}
	}
	n.usesCtx = n.usesCtx || mentionsContext(s.ItemsPath, s.ResultSelector, s.ResultPath, s.MaxConcurrencyPath,
		s.ToleratedFailureCountPath, s.ToleratedFailurePercentagePath)
	return m, nil
}

func optPath(src string) (*jsonpath.Path, error) {
	if src == "" {
		return nil, nil
	}
	return jsonpath.Compile(src)
}

func (m *mapState) resolve(p *program) error { return m.g.resolve(p) }

func (m *mapState) exec(t *thread, n *node, input any) (any, *node, error) {
	t.enter(n, types.HistoryEventTypeMapStateEntered, input)
	res, err := t.withRetry(m.g, func() (any, error) { return m.attempt(t, n, input) })
	if err == nil {
		var out any
		var assigned map[string]any
		out, assigned, err = finishResult(t, n, m.resSelector, m.rp, input, res)
		if err == nil {
			t.exit(n, types.HistoryEventTypeMapStateExited, out, assigned)
			return out, n.next, nil
		}
	}
	return t.catch(m.g, n, input, err, types.HistoryEventTypeMapStateExited)
}

// number reads an optional numeric field given by path.
func (t *thread) number(n *node, p *jsonpath.Path, eff any, field string) (float64, error) {
	v, err := p.Get(t.scope(n, eff))
	if err != nil {
		return 0, err
	}
	f, ok := data.Number(v)
	if !ok || f < 0 {
		return 0, fail(failure.Runtime, "The %s field does not reference a valid non-negative number: %s", field, preview(v))
	}
	return f, nil
}

func (m *mapState) attempt(t *thread, n *node, input any) (any, error) {
	eff, err := n.in.apply(t, n, input)
	if err != nil {
		return nil, err
	}
	var itemsV any
	if m.readerMocked {
		if itemsV, err = t.x.mocked(n.name); err != nil {
			return nil, err
		}
	} else if itemsV, err = m.itemsPath.apply(t, n, eff); err != nil {
		return nil, err
	}
	items, ok := itemsV.([]any)
	if !ok {
		return nil, fail(failure.Runtime, "Items of the Map state '%s' must be an array, but it is %s.", n.name, describe(itemsV))
	}
	conc := m.maxConc
	if m.maxConcPath != nil {
		f, err := t.number(n, m.maxConcPath, eff, "MaxConcurrencyPath")
		if err != nil {
			return nil, err
		}
		conc = int64(f)
	}
	tolCount, tolPct, hasCount, hasPct := m.tolCount, m.tolPct, m.hasTolCount, m.hasTolPct
	if m.tolCountPath != nil {
		if tolCount, err = t.number(n, m.tolCountPath, eff, "ToleratedFailureCountPath"); err != nil {
			return nil, err
		}
		hasCount = true
	}
	if m.tolPctPath != nil {
		if tolPct, err = t.number(n, m.tolPctPath, eff, "ToleratedFailurePercentagePath"); err != nil {
			return nil, err
		}
		hasPct = true
	}
	// Each item's input: ItemSelector evaluated with $$.Map.Item, then
	// batching. Selection happens in the iteration for inline Maps so that a
	// failing selector fails that iteration, as on AWS.
	inputs := items
	if m.batch != nil {
		if inputs, err = m.batches(t, n, eff, items); err != nil {
			return nil, err
		}
	}
	total := len(inputs)
	t.emit(&event{typ: types.HistoryEventTypeMapStateStarted, length: int32(total)})
	if m.distributed {
		t.emit(&event{typ: types.HistoryEventTypeMapRunStarted, mapRunArn: t.x.mapRunArn(n.name)})
	}
	results := make([]any, total)
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	var mu sync.Mutex
	var first error
	failed := 0
	tolerant := hasCount || hasPct || m.distributed
	exceeded := func() bool {
		if hasCount && float64(failed) > tolCount {
			return true
		}
		if hasPct && float64(failed)*100 > tolPct*float64(total) {
			return true
		}
		return !hasCount && !hasPct && failed > 0
	}
	workers := total
	if conc > 0 && int(conc) < total {
		workers = int(conc)
	}
	var base map[string]any
	if m.selUsesCtx && m.batch == nil {
		base = t.contextObject(n)
		delete(base, "Map")
	}
	next := 0
	t.x.run.fork(ctx, t.f, workers, func(f *fiber, _ int) {
		// One worker runs its items one after the other: what an item
		// needs only while it runs is allocated once per worker.
		var scr *iterScratch
		for {
			mu.Lock()
			i := next
			next++
			stop := i >= total || first != nil
			mu.Unlock()
			if stop || ctx.Err() != nil {
				return
			}
			if scr == nil {
				scr = new(iterScratch)
			}
			out, err := m.iteration(t, f, ctx, n, eff, base, inputs[i], i, scr)
			if err != nil {
				if errors.Is(err, errStopped) {
					continue
				}
				mu.Lock()
				failed++
				if first == nil && exceeded() {
					first = err
					if tolerant {
						first = fail(failure.ExceedToleratedFailure, "The specified tolerated failure threshold was exceeded")
					}
				}
				stopAll := first != nil
				var fe *failure.Error
				if errors.As(err, &fe) {
					results[i] = map[string]any{"Error": fe.Name, "Cause": fe.Cause}
				}
				mu.Unlock()
				if stopAll {
					cancel()
					t.x.run.wakeCanceled()
					return
				}
				continue
			}
			results[i] = out
		}
	})
	if t.ctx.Err() != nil {
		return nil, errStopped
	}
	t.prev = t.x.hist.last()
	if first != nil {
		if m.distributed {
			var fe *failure.Error
			errors.As(first, &fe)
			t.emit(&event{typ: types.HistoryEventTypeMapRunFailed, errName: fe.Name, cause: fe.Cause, hasErr: true})
		}
		t.emit(&event{typ: types.HistoryEventTypeMapStateFailed})
		return nil, first
	}
	if m.distributed {
		t.emit(&event{typ: types.HistoryEventTypeMapRunSucceeded})
	}
	t.emit(&event{typ: types.HistoryEventTypeMapStateSucceeded})
	return results, nil
}

// iteration runs one item as its own thread, with the iteration events
// AWS records for inline Maps (a distributed Map's iterations are child
// executions whose events stay out of the parent's history).
// base is the Map state's $$ without Map (nil unless the selector reads
// $$), built before the iterations start: they may run on goroutines of
// their own and must not touch the Map's thread.
func (m *mapState) iteration(t *thread, f *fiber, ctx context.Context, n *node, eff any, base map[string]any, item any, i int, scr *iterScratch) (any, error) {
	// The iteration's thread is the worker's: nothing keeps a thread once
	// its program has returned.
	ct := &scr.th
	*ct = thread{x: t.x, f: f, ctx: ctx, prev: t.prev, vars: t.vars, noEvent: t.noEvent, hc: &scr.hc}
	if m.distributed {
		ct.noEvent = true
		ct.vars = nil
	}
	ct.emit(&event{typ: types.HistoryEventTypeMapIterationStarted, node: n, index: int32(i)})
	// $$.Map of the iteration: built once, only when the selector or a
	// state of the processor reads $$, and shared (it is immutable). When
	// only the selector reads it, and only below $$.Map.Item.Value or
	// .Index, the worker refills its own: no value of the selector's
	// result can be one of those maps.
	var mc map[string]any
	reuse := m.selItemOnly && !m.proc.usesCtx
	if (m.selUsesCtx || m.proc.usesCtx) && !reuse {
		mc = map[string]any{"Item": map[string]any{"Index": int64(i), "Value": item}}
	}
	in := item
	if m.selector != nil && m.batch == nil {
		sc := &scr.sc
		*sc = jsonpath.Scope{Input: eff, Vars: t.vars}
		switch {
		case reuse:
			if scr.ctx == nil {
				scr.item = map[string]any{"Index": int64(0), "Value": nil}
				scr.ctx = map[string]any{"Map": map[string]any{"Item": scr.item}}
			}
			scr.item["Value"] = item
			if m.selReadsIdx {
				scr.item["Index"] = int64(i)
			}
			sc.Context = scr.ctx
		case m.selUsesCtx:
			c := make(map[string]any, len(base)+1)
			maps.Copy(c, base)
			c["Map"] = mc
			sc.Context = c
		}
		v, err := m.selector.Eval(sc)
		if reuse {
			scr.item["Value"] = nil // the worker must not keep the item alive
		}
		*sc = jsonpath.Scope{}
		if err != nil {
			ct.emit(&event{typ: types.HistoryEventTypeMapIterationFailed, node: n, index: int32(i)})
			return nil, err
		}
		in = v
	}
	if m.proc.usesCtx {
		ct.mapCtx = mc
	}
	out, err := ct.runProgram(m.proc, in)
	switch {
	case errors.Is(err, errStopped):
		ct.emit(&event{typ: types.HistoryEventTypeMapIterationAborted, node: n, index: int32(i)})
	case err != nil:
		ct.emit(&event{typ: types.HistoryEventTypeMapIterationFailed, node: n, index: int32(i)})
	default:
		ct.emit(&event{typ: types.HistoryEventTypeMapIterationSucceeded, node: n, index: int32(i)})
	}
	return out, err
}

// iterScratch is what a Map worker reuses from one item to the next.
type iterScratch struct {
	th   thread
	sc   jsonpath.Scope
	ctx  map[string]any // {"Map": {"Item": item}}, see mapState.selItemOnly
	item map[string]any
	hc   smallCache
}

// ctxOnlyMapItem reports whether every "$$" in s starts "$$.Map.Item.Value"
// or "$$.Map.Item.Index" (followed by a step or the end of the path).
func ctxOnlyMapItem(s string) bool {
	for {
		i := strings.Index(s, "$$")
		if i < 0 {
			return true
		}
		s = s[i+2:]
		var rest string
		switch {
		case strings.HasPrefix(s, ".Map.Item.Value"):
			rest = s[len(".Map.Item.Value"):]
		case strings.HasPrefix(s, ".Map.Item.Index"):
			rest = s[len(".Map.Item.Index"):]
		default:
			return false
		}
		if rest != "" && rest[0] != '.' && rest[0] != '[' && rest[0] != ',' && rest[0] != ')' && rest[0] != ' ' {
			return false
		}
		if strings.HasPrefix(rest, "..") {
			return false
		}
		s = rest
	}
}

func (t *thread) contextWithMap(n *node, mc map[string]any) map[string]any {
	c := t.contextObject(n)
	c["Map"] = mc
	return c
}

// batches groups the (selected) items into batch inputs
// {"Items": [...], ...BatchInput}.
func (m *mapState) batches(t *thread, n *node, eff any, items []any) ([]any, error) {
	b := m.batch
	maxItems, maxBytes := b.maxItems, b.maxBytes
	if b.maxItemsPath != nil {
		f, err := t.number(n, b.maxItemsPath, eff, "MaxItemsPerBatchPath")
		if err != nil {
			return nil, err
		}
		maxItems = int64(f)
	}
	if b.maxBytesPath != nil {
		f, err := t.number(n, b.maxBytesPath, eff, "MaxInputBytesPerBatchPath")
		if err != nil {
			return nil, err
		}
		maxBytes = int64(f)
	}
	var extra map[string]any
	if b.input != nil {
		v, err := b.input.Eval(t.scope(n, eff))
		if err != nil {
			return nil, err
		}
		extra, _ = v.(map[string]any)
	}
	sel := make([]any, len(items))
	for i, it := range items {
		sel[i] = it
		if m.selector != nil {
			mc := map[string]any{"Item": map[string]any{"Index": int64(i), "Value": it}}
			v, err := m.selector.Eval(&jsonpath.Scope{Input: eff, Vars: t.vars, Context: t.contextWithMap(n, mc)})
			if err != nil {
				return nil, err
			}
			sel[i] = v
		}
	}
	var out []any
	var cur []any
	size := 0
	flush := func() {
		if len(cur) == 0 {
			return
		}
		batch := make(map[string]any, len(extra)+1)
		for k, v := range extra {
			batch[k] = v
		}
		batch["Items"] = cur
		out = append(out, batch)
		cur, size = nil, 0
	}
	for _, it := range sel {
		sz := data.Size(it)
		if len(cur) > 0 && ((maxItems > 0 && int64(len(cur)) >= maxItems) || (maxBytes > 0 && int64(size+sz) > maxBytes)) {
			flush()
		}
		cur = append(cur, it)
		size += sz
	}
	flush()
	return out, nil
}

func (x *Execution) mapRunArn(state string) string {
	return fmt.Sprintf("arn:aws:states:%s:%s:mapRun:%s/%s:%s", x.m.e.opts.Region, x.m.e.opts.AccountID, x.m.name, state, x.requestID())
}
