package cfn

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"testing"

	"github.com/keyflow/keyflow/tasks"
)

// scheduleInput is what EventBridge Scheduler sends: the target's Input
// with CloudFormation's substitution done for the given parameters.
func scheduleInput(t *testing.T, input any, params map[string]string) []byte {
	t.Helper()
	sub, ok := input.(map[string]any)["Fn::Sub"].([]any)
	if !ok || len(sub) != 2 {
		t.Fatalf("input %v: want Fn::Sub with its variables", input)
	}
	vars := map[string]string{}
	for k, v := range params {
		vars[k] = v
	}
	for k, v := range sub[1].(map[string]any) {
		// The one variable is Fn::If(SingleAccount, AWS::AccountId, "").
		c := v.(map[string]any)["Fn::If"].([]any)
		if c[0] != condOneAccount || !reflect.DeepEqual(c[1], ref("AWS::AccountId")) || c[2] != "" {
			t.Fatalf("variable %s is %v", k, v)
		}
		vars[k] = ""
		if params["Organization"] == "false" {
			vars[k] = params["AWS::AccountId"]
		}
	}
	var missing []string
	out := regexp.MustCompile(`\$\{([^}]+)\}`).ReplaceAllStringFunc(sub[0].(string), func(m string) string {
		v, ok := vars[m[2:len(m)-1]]
		if !ok {
			missing = append(missing, m)
		}
		return v
	})
	if len(missing) > 0 {
		t.Fatalf("no value for %v in %s", missing, sub[0])
	}
	return []byte(out)
}

// TestSchedules: the inventory runs daily and the hygiene inventory too
// unless its expression is empty; each schedule's role may start its own
// machine and nothing else, and each input is one its handler takes, in
// one account (accountId, no organization) and in an Organization (no
// accountId), with every parameter at its default.
func TestSchedules(t *testing.T) {
	central, _ := templates(t)
	doc := decode(t, central)
	res := resources(doc)
	params := map[string]string{"AWS::AccountId": "123456789012"}
	for name, p := range doc["Parameters"].(map[string]any) {
		b, _ := json.Marshal(p.(map[string]any)["Default"])
		params[name] = string(bytes.Trim(b, `"`))
	}
	cases := []struct {
		schedule, machine, condition, expression string
		// into is the handler input the machine passes the schedule's
		// input to; extra are the machine's own fields.
		into  func() any
		extra []string
	}{
		{"InventorySchedule", "InventoryStateMachine", "", "InventoryScheduleExpression", func() any { return &tasks.InventoryInput{} }, nil},
		{"HygieneSchedule", "HygieneStateMachine", condHygieneScheduled, paramHygieneSchedule, func() any { return &tasks.HygieneInput{} }, []string{"setPasswordPolicy"}},
	}
	for _, c := range cases {
		t.Run(c.schedule, func(t *testing.T) {
			s, role := res[c.schedule], res[c.schedule+"Role"]
			if s == nil || role == nil {
				t.Fatalf("no %s or no %sRole", c.schedule, c.schedule)
			}
			if s["Type"] != "AWS::Scheduler::Schedule" || s["Condition"] != nilIfEmpty(c.condition) || role["Condition"] != nilIfEmpty(c.condition) {
				t.Errorf("type %v, conditions %v and %v; want %q on both", s["Type"], s["Condition"], role["Condition"], c.condition)
			}
			p := properties(s)
			target := p["Target"].(map[string]any)
			if !reflect.DeepEqual(p["ScheduleExpression"], ref(c.expression)) || !reflect.DeepEqual(target["Arn"], ref(c.machine)) {
				t.Errorf("expression %v, target %v", p["ScheduleExpression"], target["Arn"])
			}
			stmts := statements(decode(t, central))[c.schedule+"Role/Policies"]
			if len(stmts) != 1 || !reflect.DeepEqual(actionsOf(stmts[0]), []string{"states:StartExecution"}) || !reflect.DeepEqual(stmts[0]["Resource"], ref(c.machine)) {
				t.Errorf("the role may %v", stmts)
			}
			for _, org := range []string{"false", "true"} {
				params := with(params, "Organization", org)
				raw := scheduleInput(t, target["Input"], params)
				var fields map[string]any
				if err := json.Unmarshal(raw, &fields); err != nil {
					t.Fatalf("organization %s: the input is not JSON: %v\n%s", org, err, raw)
				}
				for _, f := range c.extra {
					delete(fields, f)
				}
				rest, _ := json.Marshal(fields)
				dec := json.NewDecoder(bytes.NewReader(rest))
				dec.DisallowUnknownFields()
				in := c.into()
				if err := dec.Decode(in); err != nil {
					t.Fatalf("organization %s: the handler does not take %s: %v", org, raw, err)
				}
				account := reflect.ValueOf(in).Elem().FieldByName("AccountID").String()
				organization := reflect.ValueOf(in).Elem().FieldByName("Organization").Bool()
				if organization == (account != "") || (!organization && account != params["AWS::AccountId"]) {
					t.Errorf("organization %s: input says accountId %q, organization %t: the handler refuses it", org, account, organization)
				}
			}
		})
	}
	want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref(paramHygieneSchedule), ""}}}}
	if got := doc["Conditions"].(map[string]any)[condHygieneScheduled]; !reflect.DeepEqual(got, want) {
		t.Errorf("%s is %v: an empty expression must turn the schedule off", condHygieneScheduled, got)
	}
	if defaultMFAGraceDays != tasks.DefaultMFAGraceDays || params[paramMFAGraceDays] != "7" {
		t.Errorf("grace days: cfn %d, parameter default %s, tasks %d", defaultMFAGraceDays, params[paramMFAGraceDays], tasks.DefaultMFAGraceDays)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// with is m with k set to v, m unchanged.
func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for mk, mv := range m {
		if mk != k {
			out[mk] = mv
		}
	}
	return out
}
