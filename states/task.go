package states

import (
	"encoding/json"
	"strings"
)

func (d *decoder) taskFields(s *Task) fieldSet {
	fs := d.common(&s.CommonFields, "Next", "End", "InputPath", "OutputPath", "Assign", "Output")
	fs["Resource"] = func(p string, r json.RawMessage) { s.Resource = d.str(p, r) }
	fs["Parameters"] = func(p string, r json.RawMessage) { s.Parameters = d.value(p, r) }
	fs["Arguments"] = func(p string, r json.RawMessage) { s.Arguments = d.value(p, r) }
	fs["ResultSelector"] = func(p string, r json.RawMessage) { s.ResultSelector = d.value(p, r) }
	fs["ResultPath"] = func(p string, r json.RawMessage) { s.ResultPath = d.pathField(p, r) }
	fs["Retry"] = func(p string, r json.RawMessage) { s.Retry = d.retriers(p, r) }
	fs["Catch"] = func(p string, r json.RawMessage) { s.Catch = d.catchers(p, r) }
	fs["TimeoutSeconds"] = func(p string, r json.RawMessage) { s.TimeoutSeconds = d.intExpr(p, r) }
	fs["TimeoutSecondsPath"] = func(p string, r json.RawMessage) { s.TimeoutSecondsPath = d.str(p, r) }
	fs["HeartbeatSeconds"] = func(p string, r json.RawMessage) { s.HeartbeatSeconds = d.intExpr(p, r) }
	fs["HeartbeatSecondsPath"] = func(p string, r json.RawMessage) { s.HeartbeatSecondsPath = d.str(p, r) }
	fs["Credentials"] = func(p string, r json.RawMessage) { s.Credentials = d.value(p, r) }
	return fs
}

func encodeTask(o *object, s *Task) {
	o.str("Resource", s.Resource)
	o.value("Credentials", s.Credentials)
	o.value("Parameters", s.Parameters)
	o.value("Arguments", s.Arguments)
	o.value("ResultSelector", s.ResultSelector)
	o.path("ResultPath", s.ResultPath)
	o.intExpr("TimeoutSeconds", s.TimeoutSeconds)
	o.str("TimeoutSecondsPath", s.TimeoutSecondsPath)
	o.intExpr("HeartbeatSeconds", s.HeartbeatSeconds)
	o.str("HeartbeatSecondsPath", s.HeartbeatSecondsPath)
	encodeRetry(o, s.Retry, s.Catch)
}

func (v *validator) task(ptr string, sc *scope, s *Task, ql QueryLanguage) {
	if s.Resource == "" {
		v.addf(ptr+"/Resource", "missing required field")
	} else if !validARN(s.Resource) {
		v.addf(ptr+"/Resource", "not a valid ARN: %s", quote(s.Resource))
	}
	v.credentials(ptr+"/Credentials", ql, s.Credentials)
	v.parameters(ptr+"/Parameters", ql, "Parameters", s.Parameters)
	v.arguments(ptr+"/Arguments", ql, s.Arguments)
	v.parameters(ptr+"/ResultSelector", ql, "ResultSelector", s.ResultSelector)
	v.resultPathIn(ptr+"/ResultPath", ql, s.ResultPath)

	v.intExpr(ptr+"/TimeoutSeconds", ql, s.TimeoutSeconds, 1)
	v.intExpr(ptr+"/HeartbeatSeconds", ql, s.HeartbeatSeconds, 1)
	if s.TimeoutSeconds != nil && s.TimeoutSecondsPath != "" {
		v.addf(ptr+"/TimeoutSecondsPath", "cannot be used with TimeoutSeconds")
	}
	if s.HeartbeatSeconds != nil && s.HeartbeatSecondsPath != "" {
		v.addf(ptr+"/HeartbeatSecondsPath", "cannot be used with HeartbeatSeconds")
	}
	// A heartbeat that is not shorter than the timeout could never fire.
	if t, h := s.TimeoutSeconds, s.HeartbeatSeconds; t != nil && h != nil && t.Expr == "" && h.Expr == "" && h.Value >= t.Value && h.Value >= 1 {
		v.addf(ptr+"/HeartbeatSeconds", "must be smaller than TimeoutSeconds (%d), got %d", t.Value, h.Value)
	}
	v.pathIn(ptr+"/TimeoutSecondsPath", ql, "TimeoutSecondsPath", s.TimeoutSecondsPath)
	v.pathIn(ptr+"/HeartbeatSecondsPath", ql, "HeartbeatSecondsPath", s.HeartbeatSecondsPath)
	v.retry(ptr+"/Retry", s.Retry)
	v.catch(ptr+"/Catch", sc, ql, s.Catch)
}

// credentials checks a Task's Credentials: an object naming the role to
// assume, "RoleArn" (or, under JSONPath, "RoleArn.$").
func (v *validator) credentials(ptr string, ql QueryLanguage, c any) {
	if c == nil {
		return
	}
	m, ok := c.(map[string]any)
	if !ok {
		v.addf(ptr, "must be an object with RoleArn")
		return
	}
	_, arn := m["RoleArn"]
	_, arnPath := m["RoleArn.$"]
	if !arn && !arnPath {
		v.addf(ptr+"/RoleArn", "missing required field")
	}
	if ql == JSONPath {
		v.template(ptr, c)
	}
}

// validARN checks the shape arn:partition:service:region:account:resource,
// where region and account may be empty ("arn:aws:states:::lambda:invoke").
// It does not check that the resource exists: the engine does that when it
// binds handlers.
func validARN(s string) bool {
	// A whole "${Name}" is a CloudFormation DefinitionSubstitutions
	// placeholder: AWS puts the ARN in before it validates the definition.
	if strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") && !strings.ContainsAny(s[2:len(s)-1], "${}") {
		return true
	}
	parts := strings.SplitN(s, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && parts[1] != "" && parts[2] != "" && parts[5] != ""
}
