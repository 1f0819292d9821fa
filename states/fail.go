package states

import "encoding/json"

func (d *decoder) failFields(s *Fail) fieldSet {
	fs := d.common(&s.CommonFields)
	fs["Error"] = func(p string, r json.RawMessage) { s.Error = d.str(p, r) }
	fs["ErrorPath"] = func(p string, r json.RawMessage) { s.ErrorPath = d.str(p, r) }
	fs["Cause"] = func(p string, r json.RawMessage) { s.Cause = d.str(p, r) }
	fs["CausePath"] = func(p string, r json.RawMessage) { s.CausePath = d.str(p, r) }
	return fs
}

func encodeFail(o *object, s *Fail) {
	o.str("Error", s.Error)
	o.str("ErrorPath", s.ErrorPath)
	o.str("Cause", s.Cause)
	o.str("CausePath", s.CausePath)
}

func (v *validator) fail(ptr string, s *Fail, ql QueryLanguage) {
	if s.Error != "" && s.ErrorPath != "" {
		v.addf(ptr+"/ErrorPath", "cannot be used with Error")
	}
	if s.Cause != "" && s.CausePath != "" {
		v.addf(ptr+"/CausePath", "cannot be used with Cause")
	}
	// ErrorPath and CausePath take a path or an intrinsic call (AWS allows
	// States.Format and friends there), never JSONata.
	v.pathOrCall(ptr+"/ErrorPath", ql, "ErrorPath", s.ErrorPath)
	v.pathOrCall(ptr+"/CausePath", ql, "CausePath", s.CausePath)
}
