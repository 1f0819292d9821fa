package cfn

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyflow/keyflow/policy"
	"github.com/keyflow/keyflow/tasks"
)

// The handlers find the MFA policy of a member account by the name the
// member template gives it, and get the central stack's own policy's ARN:
// the defaults of the names agree, and the three MFA functions are told
// both.
func TestMFAPolicyNameAgrees(t *testing.T) {
	if tasks.DefaultMFAPolicyName != policy.MFARequiredName {
		t.Errorf("tasks says %q, policy says %q", tasks.DefaultMFAPolicyName, policy.MFARequiredName)
	}
	central, member := templates(t)
	c, m := decode(t, central), decode(t, member)
	if d := paramDefault(c, paramMemberMFAPolicy); d != policy.MFARequiredName {
		t.Errorf("central %s defaults to %q", paramMemberMFAPolicy, d)
	}
	if d := paramDefault(m, paramMFAPolicyName); d != policy.MFARequiredName {
		t.Errorf("member %s defaults to %q", paramMFAPolicyName, d)
	}
	want := map[string]any{
		"KEYFLOW_MFA_POLICY_ARN":         map[string]any{"Ref": "MFARequiredPolicy"},
		"KEYFLOW_MFA_MEMBER_POLICY_NAME": map[string]any{"Ref": paramMemberMFAPolicy},
	}
	res := resources(c)
	for _, h := range Handlers {
		env, _ := properties(res[h.Logical+"Function"])["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		for k, v := range want {
			switch h.Name {
			case "hygiene", "check-mfa", "enforce-mfa":
				if !reflect.DeepEqual(vars[k], v) {
					t.Errorf("%s: %s = %v, want %v", h.Name, k, vars[k], v)
				}
			default:
				if _, ok := vars[k]; ok {
					t.Errorf("%s has %s: it never touches the MFA policy", h.Name, k)
				}
			}
		}
	}
}

func paramDefault(doc map[string]any, name string) any {
	p, _ := doc["Parameters"].(map[string]any)[name].(map[string]any)
	return p["Default"]
}

// ownMFAPolicyArn is the template's own MFA policy's ARN as the template
// writes it: a Ref when CloudFormation names it, the ARN of its name when
// the name is a parameter.
func ownMFAPolicyArn(t *testing.T, doc map[string]any) any {
	t.Helper()
	switch n := properties(resources(doc)["MFARequiredPolicy"])["ManagedPolicyName"].(type) {
	case nil:
		return map[string]any{"Ref": "MFARequiredPolicy"}
	case map[string]any:
		if p, ok := n["Ref"].(string); ok && len(n) == 1 {
			return map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${" + p + "}"}
		}
	}
	t.Fatalf("MFA policy named %v: neither CloudFormation's name nor a parameter", properties(resources(doc)["MFARequiredPolicy"])["ManagedPolicyName"])
	return nil
}

// asIAMReads a template's policy document as IAM reads it once
// CloudFormation has substituted: the partition "aws", ${!x} back to ${x},
// and a Ref of the source ranges parameter as the given ranges.
func asIAMReads(t *testing.T, v any, ranges []string) []byte {
	t.Helper()
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["Fn::Sub"].(string); ok && len(x) == 1 {
				return strings.ReplaceAll(strings.ReplaceAll(s, "${AWS::Partition}", "aws"), "${!", "${")
			}
			if r, ok := x["Ref"].(string); ok && len(x) == 1 && r == paramSourceRanges {
				out := make([]any, len(ranges))
				for i, r := range ranges {
					out[i] = r
				}
				return out
			}
			out := map[string]any{}
			for k, e := range x {
				out[k] = walk(e)
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = walk(e)
			}
			return out
		}
		return v
	}
	b, err := json.Marshal(walk(v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPoliciesAsCode: the template's managed policies are policy's
// documents (in both templates), the source-IP policy takes the parameter's
// ranges and evaluates as its generator's does, and each policy goes to the
// optional group only under its condition.
func TestPoliciesAsCode(t *testing.T) {
	central, member := templates(t)
	for name, raw := range map[string][]byte{"central": central, "member": member} {
		p := properties(resources(decode(t, raw))["MFARequiredPolicy"])
		doc, err := policy.Parse(asIAMReads(t, p["PolicyDocument"], nil))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(doc, policy.MFARequired("")) {
			t.Errorf("%s: the template's MFA policy is not policy.MFARequired:\n%+v", name, doc)
		}
	}
	// The central stack's copy is CloudFormation's to name (see
	// TestNoFixedNameClash); a member's has the name the handlers look for.
	if name, named := properties(resources(decode(t, central))["MFARequiredPolicy"])["ManagedPolicyName"]; named {
		t.Errorf("central MFA policy named %v: the member stack in the same account would clash", name)
	}
	if name := properties(resources(decode(t, member))["MFARequiredPolicy"])["ManagedPolicyName"]; !reflect.DeepEqual(name, map[string]any{"Ref": paramMFAPolicyName}) {
		t.Errorf("member MFA policy named %v, want the %s parameter", name, paramMFAPolicyName)
	}

	res := resources(decode(t, central))
	ipRes := res["SourceIpPolicy"]
	if name, named := properties(ipRes)["ManagedPolicyName"]; named {
		t.Errorf("source-IP policy named %v: a second stack in the account would clash", name)
	}
	if ipRes["Condition"] != condSourceIP {
		t.Errorf("source-IP policy condition %v", ipRes["Condition"])
	}
	ranges := []string{"203.0.113.0/24", "2001:db8::/32"}
	doc, err := policy.Parse(asIAMReads(t, properties(ipRes)["PolicyDocument"], ranges))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := policy.SourceIPRestriction(ranges)
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("source-IP policy %+v, want %+v", doc, want)
	}
	for name, wantCond := range map[string]string{"MFARequiredPolicy": condMFAGroup, "SourceIpPolicy": condSourceIPGroup} {
		groups, _ := json.Marshal(properties(res[name])["Groups"])
		if !strings.Contains(string(groups), `"Fn::If":["`+wantCond+`"`) {
			t.Errorf("%s groups %s: want Fn::If on %s", name, groups, wantCond)
		}
	}
}

// TestCISAlarms: with the trail, each CIS pattern counts into a metric an
// alarm watches, and the alarms notify the alarm topic; the trail delivers
// to the filters' log group.
func TestCISAlarms(t *testing.T) {
	central, _ := templates(t)
	res := resources(decode(t, central))
	if len(cisAlarms) != 4 {
		t.Fatalf("%d alarms, want unauthorized calls, console without MFA, root use and IAM policy changes", len(cisAlarms))
	}
	for _, a := range cisAlarms {
		f, al := res[a.logical+"MetricFilter"], res[a.logical+"Alarm"]
		if f == nil || al == nil || f["Condition"] != condTrail || al["Condition"] != condTrail {
			t.Fatalf("%s: filter %v alarm %v", a.logical, f != nil, al != nil)
		}
		fp, ap := properties(f), properties(al)
		mt := fp["MetricTransformations"].([]any)[0].(map[string]any)
		if mt["MetricName"] != ap["MetricName"] || mt["MetricNamespace"] != ap["Namespace"] {
			t.Errorf("%s: the alarm watches %v/%v, the filter counts %v/%v", a.logical, ap["Namespace"], ap["MetricName"], mt["MetricNamespace"], mt["MetricName"])
		}
		if s, _ := json.Marshal(ap["AlarmActions"]); string(s) != `[{"Ref":"AlarmTopic"}]` {
			t.Errorf("%s: alarm actions %s", a.logical, s)
		}
		if !strings.HasPrefix(a.pattern, "{") || !strings.HasSuffix(a.pattern, "}") || strings.Count(a.pattern, "(") != strings.Count(a.pattern, ")") {
			t.Errorf("%s: malformed pattern %q", a.logical, a.pattern)
		}
	}
	trail := properties(res["Trail"])
	if s, _ := json.Marshal(trail["CloudWatchLogsLogGroupArn"]); !strings.Contains(string(s), "TrailLogGroup") {
		t.Errorf("the trail delivers to %s", s)
	}
}

// TestAttachOnlyTheMFAPolicy: a role that may attach user policies may
// attach only its own template's MFA policy, exactly.
func TestAttachOnlyTheMFAPolicy(t *testing.T) {
	central, member := templates(t)
	n := 0
	for name, raw := range map[string][]byte{"central": central, "member": member} {
		doc := decode(t, raw)
		want := map[string]any{"ArnEquals": map[string]any{"iam:PolicyARN": ownMFAPolicyArn(t, doc)}}
		for where, stmts := range statements(doc) {
			for _, s := range stmts {
				if s["Effect"] != "Allow" || !slices.Contains(actionsOf(s), "iam:AttachUserPolicy") {
					continue
				}
				n++
				if !reflect.DeepEqual(s["Condition"], want) {
					c, _ := json.Marshal(s["Condition"])
					w, _ := json.Marshal(want)
					t.Errorf("%s %s: attach allowed with condition %s, want %s", name, where, c, w)
				}
			}
		}
	}
	if n < 2 {
		t.Errorf("%d statements allow iam:AttachUserPolicy; want the enforce-mfa role's and the member role's", n)
	}
}

// TestNoFixedNameClash: the central and member templates deployed in one
// account and Region (as a StackSet over the Organization does, the
// central account included) never ask for the same physical name. Names
// are worked out as CloudFormation would with the parameters' defaults and
// each stack's own name; a name CloudFormation makes up cannot clash.
func TestNoFixedNameClash(t *testing.T) {
	central, member := templates(t)
	seen := map[string]string{} // type + name -> stack/logical id
	for _, s := range []struct {
		stack string
		raw   []byte
	}{{"keyflow", central}, {"keyflow-member", member}} {
		for key, where := range physicalNames(t, decode(t, s.raw), s.stack) {
			if other, ok := seen[key]; ok {
				t.Errorf("%s and %s/%s both name %s", other, s.stack, where, key)
			}
			seen[key] = s.stack + "/" + where
		}
	}
	if len(seen) == 0 {
		t.Fatal("no named resource found: the walk is broken")
	}
}

// physicalNames are a template's names that it sets itself, as "type name"
// to logical id. The name property is the one CloudFormation documents for
// the type (RoleName for AWS::IAM::Role, ManagedPolicyName, FunctionName,
// TopicName, ...), or Name.
func physicalNames(t *testing.T, doc map[string]any, stack string) map[string]string {
	t.Helper()
	params := map[string]string{"AWS::StackName": stack, "AWS::AccountId": "123456789012", "AWS::Region": "us-east-1",
		"AWS::Partition": "aws", "CentralAccountId": "123456789012"}
	for k, v := range doc["Parameters"].(map[string]any) {
		if d, ok := v.(map[string]any)["Default"].(string); ok {
			params[k] = d
		}
	}
	sub := regexp.MustCompile(`\$\{([^}!]+)\}`)
	resolve := func(v any) (string, bool) {
		switch x := v.(type) {
		case string:
			return x, true
		case map[string]any:
			if r, ok := x["Ref"].(string); ok {
				p, ok := params[r]
				return p, ok
			}
			if s, ok := x["Fn::Sub"].(string); ok {
				out, ok := s, true
				for _, m := range sub.FindAllStringSubmatch(s, -1) {
					p, known := params[m[1]]
					ok = ok && known
					out = strings.ReplaceAll(out, m[0], p)
				}
				return out, ok
			}
		}
		return "", false // an attribute or a condition: not a fixed name
	}
	out := map[string]string{}
	for logical, r := range resources(doc) {
		typ, _ := r["Type"].(string)
		short := typ[strings.LastIndex(typ, ":")+1:]
		for _, prop := range []string{short + "Name", "Name"} {
			v, ok := properties(r)[prop]
			if !ok {
				continue
			}
			if name, ok := resolve(v); ok && name != "" {
				out[typ+" "+name] = logical
			} else if !ok {
				t.Logf("%s.%s: %v is not worked out; assumed unique", logical, prop, v)
			}
		}
	}
	return out
}
