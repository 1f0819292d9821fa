package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/payload"
)

// parallelState runs its branches side by side on the same input; the
// output is the array of their outputs in branch order. The first branch
// to fail stops the others and its error becomes the state's.
type parallelState struct {
	branches []*program
	params   *parameters
	selector *payload.Template
	rp       resultPath
	g        *guard
}

func (c *compiler) parallel(ptr string, n *node, s *states.Parallel, depth int) (impl, error) {
	p := &parallelState{}
	var err error
	if s.Arguments != nil {
		return nil, compileErr(ptr, "Arguments", errJSONata)
	}
	for i := range s.Branches {
		b := &s.Branches[i]
		bptr := fmt.Sprintf("%s/Branches/%d", ptr, i)
		if b.QueryLanguage == states.JSONata {
			return nil, compileErr(bptr, "QueryLanguage", errJSONata)
		}
		prog, err := c.program(bptr, b.StartAt, b.States, depth+1)
		if err != nil {
			return nil, err
		}
		p.branches = append(p.branches, prog)
	}
	if p.params, err = compileParameters(ptr, s.Parameters); err != nil {
		return nil, err
	}
	if p.selector, err = template(ptr, "ResultSelector", s.ResultSelector); err != nil {
		return nil, err
	}
	if p.rp, err = compileResultPath(s.ResultPath); err != nil {
		return nil, compileErr(ptr, "ResultPath", err)
	}
	if p.g, err = compileGuard(ptr, s.Retry, s.Catch); err != nil {
		return nil, err
	}
	n.usesCtx = n.usesCtx || mentionsContext(s.Parameters, s.ResultSelector, s.ResultPath)
	return p, nil
}

func (p *parallelState) resolve(prog *program) error { return p.g.resolve(prog) }

func (p *parallelState) exec(t *thread, n *node, input any) (any, *node, error) {
	t.enter(n, types.HistoryEventTypeParallelStateEntered, input)
	res, err := t.withRetry(p.g, func() (any, error) { return p.attempt(t, n, input) })
	if err == nil {
		var out any
		var assigned map[string]any
		out, assigned, err = finishResult(t, n, p.selector, p.rp, input, res)
		if err == nil {
			t.exit(n, types.HistoryEventTypeParallelStateExited, out, assigned)
			return out, n.next, nil
		}
	}
	return t.catch(p.g, n, input, err, types.HistoryEventTypeParallelStateExited)
}

func (p *parallelState) attempt(t *thread, n *node, input any) (any, error) {
	eff, err := n.in.apply(t, n, input)
	if err != nil {
		return nil, err
	}
	if p.params != nil {
		if eff, err = p.params.eval(t, n, eff); err != nil {
			return nil, err
		}
	}
	t.emit(&event{typ: types.HistoryEventTypeParallelStateStarted})
	results := make([]any, len(p.branches))
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	var mu sync.Mutex
	var first error
	t.x.run.fork(ctx, t.f, len(p.branches), func(f *fiber, i int) {
		ct := t.child(f, ctx)
		out, err := ct.runProgram(p.branches[i], eff)
		if err != nil {
			mu.Lock()
			if first == nil && !errors.Is(err, errStopped) {
				first = err
			}
			mu.Unlock()
			cancel()
			t.x.run.wakeCanceled()
			return
		}
		results[i] = out
	})
	if t.ctx.Err() != nil {
		return nil, errStopped
	}
	t.prev = t.x.hist.last()
	if first != nil {
		t.emit(&event{typ: types.HistoryEventTypeParallelStateFailed})
		return nil, first
	}
	t.emit(&event{typ: types.HistoryEventTypeParallelStateSucceeded})
	return toAnySlice(results), nil
}

func toAnySlice(v []any) any { return v }
