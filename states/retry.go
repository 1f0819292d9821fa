package states

import (
	"encoding/json"
	"fmt"
)

// Retry and Catch are shared by Task, Parallel and Map.

func (d *decoder) retriers(ptr string, raw json.RawMessage) []Retrier {
	elems := d.array(ptr, raw)
	out := make([]Retrier, 0, len(elems))
	for i, e := range elems {
		out = append(out, d.retrier(fmt.Sprintf("%s/%d", ptr, i), e))
	}
	return out
}

func (d *decoder) retrier(ptr string, raw json.RawMessage) Retrier {
	var r Retrier
	d.fields(ptr, raw, fieldSet{
		"Comment":         func(p string, v json.RawMessage) { r.Comment = d.str(p, v) },
		"ErrorEquals":     func(p string, v json.RawMessage) { r.ErrorEquals = d.stringList(p, v) },
		"IntervalSeconds": func(p string, v json.RawMessage) { r.IntervalSeconds = d.int64(p, v) },
		"MaxAttempts":     func(p string, v json.RawMessage) { r.MaxAttempts = d.int64(p, v) },
		"BackoffRate":     func(p string, v json.RawMessage) { r.BackoffRate = d.float(p, v) },
		"MaxDelaySeconds": func(p string, v json.RawMessage) { r.MaxDelaySeconds = d.int64(p, v) },
		"JitterStrategy":  func(p string, v json.RawMessage) { r.JitterStrategy = d.str(p, v) },
	}, unknownField)
	return r
}

func (d *decoder) catchers(ptr string, raw json.RawMessage) []Catcher {
	elems := d.array(ptr, raw)
	out := make([]Catcher, 0, len(elems))
	for i, e := range elems {
		out = append(out, d.catcher(fmt.Sprintf("%s/%d", ptr, i), e))
	}
	return out
}

func (d *decoder) catcher(ptr string, raw json.RawMessage) Catcher {
	var c Catcher
	d.fields(ptr, raw, fieldSet{
		"Comment":     func(p string, v json.RawMessage) { c.Comment = d.str(p, v) },
		"ErrorEquals": func(p string, v json.RawMessage) { c.ErrorEquals = d.stringList(p, v) },
		"Next":        func(p string, v json.RawMessage) { c.Next = d.str(p, v) },
		"ResultPath":  func(p string, v json.RawMessage) { c.ResultPath = d.pathField(p, v) },
		"Assign":      func(p string, v json.RawMessage) { c.Assign = d.object(p, v) },
		"Output":      func(p string, v json.RawMessage) { c.Output = d.value(p, v) },
	}, unknownField)
	return c
}

func encodeRetrier(r Retrier) object {
	var o object
	o.str("Comment", r.Comment)
	o.add("ErrorEquals", stringsOrEmpty(r.ErrorEquals))
	if r.IntervalSeconds != nil {
		o.add("IntervalSeconds", *r.IntervalSeconds)
	}
	if r.MaxAttempts != nil {
		o.add("MaxAttempts", *r.MaxAttempts)
	}
	if r.BackoffRate != nil {
		o.add("BackoffRate", *r.BackoffRate)
	}
	if r.MaxDelaySeconds != nil {
		o.add("MaxDelaySeconds", *r.MaxDelaySeconds)
	}
	o.str("JitterStrategy", r.JitterStrategy)
	return o
}

func encodeCatcher(c Catcher) object {
	var o object
	o.str("Comment", c.Comment)
	o.add("ErrorEquals", stringsOrEmpty(c.ErrorEquals))
	o.path("ResultPath", c.ResultPath)
	o.assign(c.Assign)
	o.value("Output", c.Output)
	o.str("Next", c.Next)
	return o
}

func encodeRetry(o *object, retry []Retrier, catch []Catcher) {
	if retry != nil {
		rs := make([]any, len(retry))
		for i, r := range retry {
			rs[i] = encodeRetrier(r)
		}
		o.add("Retry", rs)
	}
	if catch != nil {
		cs := make([]any, len(catch))
		for i, c := range catch {
			cs[i] = encodeCatcher(c)
		}
		o.add("Catch", cs)
	}
}

func stringsOrEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// errorAll is the wildcard error name; it lives in states/failure too, but
// the rule "States.ALL alone and last" is the language's, so it is named here.
const errorAll = "States.ALL"

func (v *validator) retry(ptr string, retry []Retrier) {
	for i, r := range retry {
		p := fmt.Sprintf("%s/%d", ptr, i)
		v.errorEquals(p, r.ErrorEquals, i == len(retry)-1, "retrier")
		if r.IntervalSeconds != nil && *r.IntervalSeconds < 1 {
			v.addf(p+"/IntervalSeconds", "must be at least 1, got %d", *r.IntervalSeconds)
		}
		if r.MaxAttempts != nil && *r.MaxAttempts < 0 {
			v.addf(p+"/MaxAttempts", "must not be negative, got %d", *r.MaxAttempts)
		}
		if r.BackoffRate != nil && *r.BackoffRate < 1 {
			v.addf(p+"/BackoffRate", "must be at least 1.0, got %v", *r.BackoffRate)
		}
		if r.MaxDelaySeconds != nil && *r.MaxDelaySeconds <= 0 {
			v.addf(p+"/MaxDelaySeconds", "must be positive, got %d", *r.MaxDelaySeconds)
		}
		if r.JitterStrategy != "" && r.JitterStrategy != "FULL" && r.JitterStrategy != "NONE" {
			v.addf(p+"/JitterStrategy", "must be \"FULL\" or \"NONE\", got %q", r.JitterStrategy)
		}
	}
}

func (v *validator) catch(ptr string, sc *scope, ql QueryLanguage, catch []Catcher) {
	for i, c := range catch {
		p := fmt.Sprintf("%s/%d", ptr, i)
		v.errorEquals(p, c.ErrorEquals, i == len(catch)-1, "catcher")
		if ql == JSONata && c.ResultPath != nil {
			v.jsonPathOnly(p+"/ResultPath", "ResultPath")
		} else {
			v.resultPath(p+"/ResultPath", c.ResultPath)
		}
		v.assign(p+"/Assign", ql, c.Assign)
		v.output(p+"/Output", ql, c.Output)
		if c.Next == "" {
			v.addf(p+"/Next", "missing required field")
		} else {
			v.transition(p+"/Next", sc, c.Next)
		}
	}
}

// errorEquals checks one ErrorEquals list: not empty, and "States.ALL"
// alone in it and only in the last retrier or catcher, since anything
// after it could never match.
func (v *validator) errorEquals(ptr string, names []string, last bool, what string) {
	if len(names) == 0 {
		v.addf(ptr+"/ErrorEquals", "must name at least one error")
		return
	}
	for _, n := range names {
		if n != errorAll {
			continue
		}
		if len(names) > 1 {
			v.addf(ptr+"/ErrorEquals", "%q must appear alone", errorAll)
		}
		if !last {
			v.addf(ptr, "a %s with %q must be the last one", what, errorAll)
		}
		return
	}
}
