package engine

import (
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
)

// passState passes its input, its Parameters or its Result to its output.
type passState struct {
	params    *parameters
	result    any
	hasResult bool
	resSize   int // of result
	rp        resultPath
}

func (c *compiler) pass(ptr string, n *node, s *states.Pass) (impl, error) {
	p := &passState{result: s.Result, hasResult: s.HasResult}
	var err error
	if p.params, err = compileParameters(ptr, s.Parameters); err != nil {
		return nil, err
	}
	if p.rp, err = compileResultPath(s.ResultPath); err != nil {
		return nil, compileErr(ptr, "ResultPath", err)
	}
	if p.hasResult {
		// Result is a literal: make it a value tree once, shared by every run.
		if p.result, err = toTree(p.result); err != nil {
			return nil, compileErr(ptr, "Result", err)
		}
		p.resSize = data.Size(p.result)
	}
	n.usesCtx = n.usesCtx || mentionsContext(s.Parameters, s.ResultPath)
	return p, nil
}

func (p *passState) exec(t *thread, n *node, input any) (any, *node, error) {
	t.enter(n, types.HistoryEventTypePassStateEntered, input)
	eff, err := n.in.apply(t, n, input)
	if err != nil {
		return nil, nil, err
	}
	if p.params != nil {
		if eff, err = p.params.eval(t, n, eff); err != nil {
			return nil, nil, err
		}
	}
	res := eff
	resSize := t.effSize(n)
	if p.params != nil {
		resSize = p.params.size.of(resSize)
	}
	if p.hasResult {
		res, resSize = p.result, p.resSize
	}
	out, err := p.rp.apply(input, res)
	if err != nil {
		return nil, nil, err
	}
	if out, err = n.out.apply(t, n, out); err != nil {
		return nil, nil, err
	}
	assigned, err := t.assign(n, n.assign, res)
	if err != nil {
		return nil, nil, err
	}
	if err := t.checkOutput(n, p.rp, res, resSize, out); err != nil {
		return nil, nil, err
	}
	t.exit(n, types.HistoryEventTypePassStateExited, out, assigned)
	return out, n.next, nil
}
