package states

import "encoding/json"

func (d *decoder) passFields(s *Pass) fieldSet {
	fs := d.common(&s.CommonFields, "Next", "End", "InputPath", "OutputPath", "Assign", "Output")
	fs["Parameters"] = func(p string, r json.RawMessage) { s.Parameters = d.value(p, r) }
	fs["Result"] = func(p string, r json.RawMessage) { s.Result, s.HasResult = d.value(p, r), true }
	fs["ResultPath"] = func(p string, r json.RawMessage) { s.ResultPath = d.pathField(p, r) }
	return fs
}

func encodePass(o *object, s *Pass) {
	o.value("Parameters", s.Parameters)
	if s.HasResult || s.Result != nil {
		o.add("Result", s.Result)
	}
	o.path("ResultPath", s.ResultPath)
}

func (v *validator) pass(ptr string, s *Pass, ql QueryLanguage) {
	v.parameters(ptr+"/Parameters", ql, "Parameters", s.Parameters)
	v.resultPathIn(ptr+"/ResultPath", ql, s.ResultPath)
}
