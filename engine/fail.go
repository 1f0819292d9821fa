package engine

import (
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/intrinsic"
	"github.com/keyflow/keyflow/states/jsonpath"
)

// failState ends its program with an error and a cause, given literally or
// by ErrorPath/CausePath (a path or an intrinsic call).
type failState struct {
	errName, cause   string
	errExpr, causeEx evaluator
}

// evaluator is a compiled path or intrinsic call.
type evaluator interface {
	Eval(s *jsonpath.Scope) (any, error)
}

type pathEval struct{ p *jsonpath.Path }

func (p pathEval) Eval(s *jsonpath.Scope) (any, error) { return p.p.Get(s) }

// compileExpr compiles a field that holds a path or an intrinsic call.
func compileExpr(src string) (evaluator, error) {
	if intrinsic.IsCall(src) {
		return intrinsic.Compile(src)
	}
	p, err := jsonpath.Compile(src)
	if err != nil {
		return nil, err
	}
	return pathEval{p}, nil
}

func (c *compiler) fail(ptr string, n *node, s *states.Fail) (impl, error) {
	f := &failState{errName: s.Error, cause: s.Cause}
	var err error
	if s.ErrorPath != "" {
		if f.errExpr, err = compileExpr(s.ErrorPath); err != nil {
			return nil, compileErr(ptr, "ErrorPath", err)
		}
	}
	if s.CausePath != "" {
		if f.causeEx, err = compileExpr(s.CausePath); err != nil {
			return nil, compileErr(ptr, "CausePath", err)
		}
	}
	n.usesCtx = n.usesCtx || mentionsContext(s.ErrorPath, s.CausePath)
	return f, nil
}

func (f *failState) exec(t *thread, n *node, input any) (any, *node, error) {
	t.enter(n, types.HistoryEventTypeFailStateEntered, input)
	name, cause := f.errName, f.cause
	if f.errExpr != nil || f.causeEx != nil {
		sc := t.scope(n, input)
		var err error
		if f.errExpr != nil {
			if name, err = evalString(f.errExpr, sc, "ErrorPath"); err != nil {
				return nil, nil, err
			}
		}
		if f.causeEx != nil {
			if cause, err = evalString(f.causeEx, sc, "CausePath"); err != nil {
				return nil, nil, err
			}
		}
	}
	return nil, nil, &failure.Error{Name: name, Cause: cause}
}

func evalString(e evaluator, sc *jsonpath.Scope, field string) (string, error) {
	v, err := e.Eval(sc)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fail(failure.Runtime, "The %s field must resolve to a string, but it resolved to %s.", field, describe(v))
	}
	return s, nil
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	default:
		return "a number"
	}
}
