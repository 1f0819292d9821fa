package cfn

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keyflow/keyflow/policy"
	"github.com/keyflow/keyflow/tasks"
)

// The handlers find the MFA policy by the name the template gives it.
func TestMFAPolicyNameAgrees(t *testing.T) {
	if tasks.DefaultMFAPolicyName != policy.MFARequiredName {
		t.Errorf("tasks says %q, policy says %q", tasks.DefaultMFAPolicyName, policy.MFARequiredName)
	}
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
		if p["ManagedPolicyName"] != policy.MFARequiredName {
			t.Errorf("%s: MFA policy named %v", name, p["ManagedPolicyName"])
		}
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
// attach only keyflow's MFA policy.
func TestAttachOnlyTheMFAPolicy(t *testing.T) {
	central, member := templates(t)
	n := 0
	for name, raw := range map[string][]byte{"central": central, "member": member} {
		for where, stmts := range statements(decode(t, raw)) {
			for _, s := range stmts {
				if s["Effect"] != "Allow" || !slices.Contains(actionsOf(s), "iam:AttachUserPolicy") {
					continue
				}
				n++
				c, _ := json.Marshal(s["Condition"])
				if !strings.Contains(string(c), `"iam:PolicyARN"`) || !strings.Contains(string(c), policy.MFARequiredName) {
					t.Errorf("%s %s: attach allowed with condition %s", name, where, c)
				}
			}
		}
	}
	if n < 2 {
		t.Errorf("%d statements allow iam:AttachUserPolicy; want the enforce-mfa role's and the member role's", n)
	}
}
