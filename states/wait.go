package states

import (
	"encoding/json"
	"time"
)

func (d *decoder) waitFields(s *Wait) fieldSet {
	fs := d.common(&s.CommonFields, "Next", "End", "InputPath", "OutputPath", "Assign", "Output")
	fs["Seconds"] = func(p string, r json.RawMessage) { s.Seconds = d.intExpr(p, r) }
	fs["SecondsPath"] = func(p string, r json.RawMessage) { s.SecondsPath = d.str(p, r) }
	fs["Timestamp"] = func(p string, r json.RawMessage) { s.Timestamp = d.str(p, r) }
	fs["TimestampPath"] = func(p string, r json.RawMessage) { s.TimestampPath = d.str(p, r) }
	return fs
}

func encodeWait(o *object, s *Wait) {
	o.intExpr("Seconds", s.Seconds)
	o.str("SecondsPath", s.SecondsPath)
	o.str("Timestamp", s.Timestamp)
	o.str("TimestampPath", s.TimestampPath)
}

func (v *validator) wait(ptr string, s *Wait, ql QueryLanguage) {
	n := 0
	for _, set := range []bool{s.Seconds != nil, s.SecondsPath != "", s.Timestamp != "", s.TimestampPath != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		v.addf(ptr, "must have exactly one of Seconds, SecondsPath, Timestamp or TimestampPath")
	}
	v.intExpr(ptr+"/Seconds", ql, s.Seconds, 0)
	if s.Timestamp != "" {
		if isExpr(s.Timestamp) {
			if ql != JSONata {
				v.addf(ptr+"/Timestamp", "JSONata expression requires QueryLanguage JSONata")
			}
		} else if _, err := time.Parse(time.RFC3339, s.Timestamp); err != nil {
			v.addf(ptr+"/Timestamp", "not an RFC 3339 timestamp: %s", quote(s.Timestamp))
		}
	}
	v.pathIn(ptr+"/SecondsPath", ql, "SecondsPath", s.SecondsPath)
	v.pathIn(ptr+"/TimestampPath", ql, "TimestampPath", s.TimestampPath)
}
