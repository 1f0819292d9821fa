package states

import (
	"encoding/json"
	"fmt"
)

func (d *decoder) parallelFields(s *Parallel) fieldSet {
	fs := d.common(&s.CommonFields, "Next", "End", "InputPath", "OutputPath", "Assign", "Output")
	fs["Branches"] = func(p string, r json.RawMessage) {
		elems := d.array(p, r)
		s.Branches = make([]Branch, 0, len(elems))
		for i, e := range elems {
			s.Branches = append(s.Branches, *d.branch(fmt.Sprintf("%s/%d", p, i), e, false))
		}
	}
	fs["Parameters"] = func(p string, r json.RawMessage) { s.Parameters = d.value(p, r) }
	fs["Arguments"] = func(p string, r json.RawMessage) { s.Arguments = d.value(p, r) }
	fs["ResultSelector"] = func(p string, r json.RawMessage) { s.ResultSelector = d.value(p, r) }
	fs["ResultPath"] = func(p string, r json.RawMessage) { s.ResultPath = d.pathField(p, r) }
	fs["Retry"] = func(p string, r json.RawMessage) { s.Retry = d.retriers(p, r) }
	fs["Catch"] = func(p string, r json.RawMessage) { s.Catch = d.catchers(p, r) }
	return fs
}

func encodeParallel(o *object, s *Parallel) {
	o.value("Parameters", s.Parameters)
	o.value("Arguments", s.Arguments)
	if s.Branches != nil {
		bs := make([]any, len(s.Branches))
		for i := range s.Branches {
			bs[i] = encodeBranch(&s.Branches[i])
		}
		o.add("Branches", bs)
	}
	o.value("ResultSelector", s.ResultSelector)
	o.path("ResultPath", s.ResultPath)
	encodeRetry(o, s.Retry, s.Catch)
}

func (v *validator) parallel(ptr string, sc *scope, s *Parallel, ql QueryLanguage) {
	v.parameters(ptr+"/Parameters", ql, "Parameters", s.Parameters)
	v.arguments(ptr+"/Arguments", ql, s.Arguments)
	if len(s.Branches) == 0 {
		v.addf(ptr+"/Branches", "must have at least one branch")
	}
	for i := range s.Branches {
		p := fmt.Sprintf("%s/Branches/%d", ptr, i)
		if s.Branches[i].ProcessorConfig != nil { // only a built branch can carry one
			v.addf(p+"/ProcessorConfig", "is only supported by a Map's ItemProcessor")
		}
		v.branch(p, &s.Branches[i])
	}
	v.parameters(ptr+"/ResultSelector", ql, "ResultSelector", s.ResultSelector)
	v.resultPathIn(ptr+"/ResultPath", ql, s.ResultPath)
	v.retry(ptr+"/Retry", s.Retry)
	v.catch(ptr+"/Catch", sc, ql, s.Catch)
}
