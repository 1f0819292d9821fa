package cfn

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"

	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/tasks"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// templates are the two templates as `keyflow synth` writes them by
// default (no zip built, so no code hash).
func templates(t *testing.T) (central, member []byte) {
	t.Helper()
	central, err := Central(Options{})
	if err != nil {
		t.Fatal(err)
	}
	member, err = Member()
	if err != nil {
		t.Fatal(err)
	}
	return central, member
}

func decode(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func resources(doc map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for k, v := range doc["Resources"].(map[string]any) {
		out[k] = v.(map[string]any)
	}
	return out
}

func properties(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

func ofType(doc map[string]any, typ string) []string {
	var out []string
	for k, r := range resources(doc) {
		if r["Type"] == typ {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cfn -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the synthesized output; if the change is deliberate, run go test ./cfn -update and review the diff", path)
	}
}

// TestGolden keeps what AWS reads under review: both templates and every
// definition as the template embeds it.
func TestGolden(t *testing.T) {
	central, member := templates(t)
	golden(t, "central.template.json", central)
	golden(t, "member.template.json", member)
	for _, name := range ofType(decode(t, central), "AWS::StepFunctions::StateMachine") {
		def, err := json.MarshalIndent(properties(resources(decode(t, central))[name])["Definition"], "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, strings.ToLower(strings.TrimSuffix(name, "StateMachine"))+".asl.json", append(def, '\n'))
	}
}

// packaged is the template as `aws cloudformation package` leaves it: the
// local Code path replaced by the uploaded object.
func packaged(t *testing.T, central []byte) []byte {
	t.Helper()
	doc := decode(t, central)
	for _, name := range ofType(doc, "AWS::Lambda::Function") {
		p := properties(resources(doc)[name])
		if p["Code"] != DefaultCodeURI {
			t.Errorf("%s: Code is %v, want the local path %q for aws cloudformation package", name, p["Code"], DefaultCodeURI)
		}
		p["Code"] = map[string]any{"S3Bucket": "deploy-bucket", "S3Key": "0123456789abcdef"}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseBack(t *testing.T) {
	central, member := templates(t)
	tpl, err := goformation.ParseJSON(packaged(t, central))
	if err != nil {
		t.Fatalf("goformation cannot read the central template back: %v", err)
	}
	if n := len(tpl.GetAllLambdaFunctionResources()); n != len(Handlers) {
		t.Errorf("%d functions, want one per handler (%d)", n, len(Handlers))
	}
	if n := len(tpl.GetAllLambdaVersionResources()); n != len(Handlers) {
		t.Errorf("%d versions, want one per handler (%d)", n, len(Handlers))
	}
	if n := len(tpl.GetAllStepFunctionsStateMachineResources()); n != len(statemachines.Names()) {
		t.Errorf("%d state machines, want %d", n, len(statemachines.Names()))
	}
	for name, fn := range tpl.GetAllLambdaFunctionResources() {
		if *fn.Runtime != "provided.al2023" || !slices.Equal(fn.Architectures, []string{"arm64"}) || *fn.Handler != "bootstrap" {
			t.Errorf("%s: runtime %s %v handler %s", name, *fn.Runtime, fn.Architectures, *fn.Handler)
		}
	}
	for name, sm := range tpl.GetAllStepFunctionsStateMachineResources() {
		lc := sm.LoggingConfiguration
		if lc == nil || lc.IncludeExecutionData == nil || *lc.IncludeExecutionData || len(lc.Destinations) != 1 {
			t.Errorf("%s: logging must be on, to one log group, without execution data", name)
		}
	}
	for name, lg := range tpl.GetAllLogsLogGroupResources() {
		_ = lg
		if properties(resources(decode(t, central))[name])["RetentionInDays"] == nil {
			t.Errorf("%s: no retention", name)
		}
	}
	m, err := goformation.ParseJSON(member)
	if err != nil {
		t.Fatalf("goformation cannot read the member template back: %v", err)
	}
	if n := len(m.GetAllIAMRoleResources()); n != 1 {
		t.Errorf("member template: %d roles, want 1", n)
	}
}

var pseudo = regexp.MustCompile(`^AWS::(AccountId|Partition|Region|StackName|StackId|URLSuffix|NoValue|NotificationARNs)$`)

// TestReferencesResolve: every Ref, GetAtt, Sub variable, condition and
// DependsOn names something the template declares, and every definition's
// "${...}" placeholder has a substitution (and every substitution a use).
func TestReferencesResolve(t *testing.T) {
	central, member := templates(t)
	for name, raw := range map[string][]byte{"central": central, "member": member} {
		doc := decode(t, raw)
		params, _ := doc["Parameters"].(map[string]any)
		conds, _ := doc["Conditions"].(map[string]any)
		res := resources(doc)
		known := func(n string) bool {
			_, p := params[n]
			_, r := res[n]
			return p || r || pseudo.MatchString(n)
		}
		var problems []string
		bad := func(where, format string, args ...any) {
			problems = append(problems, where+": "+fmt.Sprintf(format, args...))
		}
		subVar := regexp.MustCompile(`\$\{([^!}][^}]*)\}`)
		var walk func(where string, v any, inDefinition bool)
		walk = func(where string, v any, inDefinition bool) {
			switch v := v.(type) {
			case map[string]any:
				if r, ok := v["Ref"].(string); ok && len(v) == 1 && !known(r) {
					bad(where, "Ref %q", r)
				}
				if g, ok := v["Fn::GetAtt"].([]any); ok && len(v) == 1 {
					if _, ok := res[g[0].(string)]; !ok {
						bad(where, "GetAtt %v", g)
					}
				}
				// Fn::Sub as a string, or as [string, {variables}]: a
				// variable is a parameter, a resource, a pseudo parameter
				// or one of the Sub's own.
				sub, local := "", map[string]any{}
				switch s := v["Fn::Sub"].(type) {
				case string:
					sub = s
				case []any:
					sub, _ = s[0].(string)
					if len(s) > 1 {
						local, _ = s[1].(map[string]any)
					}
				}
				if len(v) == 1 {
					for _, m := range subVar.FindAllStringSubmatch(sub, -1) {
						n, _, _ := strings.Cut(m[1], ".")
						if _, own := local[n]; !own && !known(n) {
							bad(where, "Sub variable %q", m[1])
						}
					}
				}
				if c, ok := v["Fn::If"].([]any); ok && len(v) == 1 {
					if _, ok := conds[c[0].(string)]; !ok {
						bad(where, "condition %q", c[0])
					}
				}
				for k, e := range v {
					walk(where+"/"+k, e, inDefinition)
				}
			case []any:
				for i, e := range v {
					walk(fmt.Sprintf("%s/%d", where, i), e, inDefinition)
				}
			}
		}
		for _, section := range []string{"Conditions", "Outputs"} {
			walk(section, doc[section], false)
		}
		for logical, r := range res {
			if c, ok := r["Condition"].(string); ok {
				if _, ok := conds[c]; !ok {
					bad(logical, "condition %q", c)
				}
			}
			deps, _ := r["DependsOn"].([]any)
			for _, d := range deps {
				if _, ok := res[d.(string)]; !ok {
					bad(logical, "DependsOn %q", d)
				}
			}
			p := properties(r)
			for k, v := range p {
				if k == "Definition" {
					continue // ASL, not CloudFormation: checked below
				}
				walk(logical+"/"+k, v, false)
			}
			if r["Type"] != "AWS::StepFunctions::StateMachine" {
				continue
			}
			def, _ := json.Marshal(p["Definition"])
			used := map[string]bool{}
			for _, m := range subVar.FindAllStringSubmatch(string(def), -1) {
				used[m[1]] = true
			}
			subs, _ := p["DefinitionSubstitutions"].(map[string]any)
			for _, k := range slices.Sorted(maps.Keys(used)) {
				if _, ok := subs[k]; !ok {
					bad(logical, "definition uses ${%s} but DefinitionSubstitutions has no %s", k, k)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(subs)) {
				if !used[k] {
					bad(logical, "substitution %s is never used by the definition", k)
				}
			}
		}
		if len(problems) > 0 {
			slices.Sort(problems)
			t.Errorf("%s template: unresolved references:\n%s", name, strings.Join(problems, "\n"))
		}
	}
}

// statements returns every policy statement of the template (roles' inline
// policies, trust policies, key, bucket policies), with where it is, and
// unwraps Fn::If (both branches).
func statements(doc map[string]any) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	var collect func(where string, v any)
	collect = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if c, ok := v["Fn::If"].([]any); ok {
				collect(where, c[1])
				collect(where, c[2])
				return
			}
			if _, ok := v["Effect"]; ok {
				out[where] = append(out[where], v)
			}
		}
	}
	for logical, r := range resources(doc) {
		p := properties(r)
		for _, key := range []string{"AssumeRolePolicyDocument", "KeyPolicy", "PolicyDocument"} {
			if d, ok := p[key].(map[string]any); ok {
				for _, s := range d["Statement"].([]any) {
					collect(logical+"/"+key, s)
				}
			}
		}
		pols, _ := p["Policies"].([]any)
		for _, pol := range pols {
			d := pol.(map[string]any)["PolicyDocument"].(map[string]any)
			for _, s := range d["Statement"].([]any) {
				collect(logical+"/Policies", s)
			}
		}
	}
	return out
}

func actionsOf(s map[string]any) []string {
	var out []string
	switch a := s["Action"].(type) {
	case string:
		out = append(out, a)
	case []any:
		for _, e := range a {
			out = append(out, e.(string))
		}
	}
	return out
}

// TestNoWildcardAction: no statement anywhere grants a "*" action, a
// wildcard in an action, or NotAction. Deny statements are exempt: the
// MFA-required and source-IP policies deny "*" (or everything but a list)
// on purpose, and policy's evaluator tests hold them to what they allow.
func TestNoWildcardAction(t *testing.T) {
	central, member := templates(t)
	for name, raw := range map[string][]byte{"central": central, "member": member} {
		n := 0
		for where, stmts := range statements(decode(t, raw)) {
			for _, s := range stmts {
				n++
				if s["Effect"] == "Deny" {
					continue
				}
				if _, ok := s["NotAction"]; ok {
					t.Errorf("%s %s: NotAction", name, where)
				}
				acts := actionsOf(s)
				if len(acts) == 0 {
					t.Errorf("%s %s: a statement without actions", name, where)
				}
				for _, a := range acts {
					if strings.Contains(a, "*") {
						t.Errorf("%s %s: wildcard action %q", name, where, a)
					}
				}
			}
		}
		if n == 0 {
			t.Fatalf("%s: no statements found: the walk is broken", name)
		}
	}
}

// noPermission are actions that IAM never checks: AWS documents that
// sts:GetCallerIdentity works even when explicitly denied.
var noPermission = map[string]bool{"sts:GetCallerIdentity": true}

// runtimeActions are what a function's role needs beside its handler's
// calls: the Lambda runtime writing the function's logs.
var runtimeActions = []string{"logs:CreateLogStream", "logs:PutLogEvents"}

func roleActions(r map[string]any) map[string][]any {
	out := map[string][]any{} // action -> resources
	var add func(v any)
	add = func(v any) {
		s, ok := v.(map[string]any)
		if !ok {
			return
		}
		if c, ok := s["Fn::If"].([]any); ok {
			add(c[1])
			add(c[2])
			return
		}
		for _, a := range actionsOf(s) {
			out[a] = append(out[a], s["Resource"])
		}
	}
	for _, pol := range properties(r)["Policies"].([]any) {
		for _, s := range pol.(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			add(s)
		}
	}
	return out
}

// TestRolesGrantWhatHandlersCall walks every function's role: its actions
// are exactly those its handler's source calls (derived from package tasks,
// not from Handlers), and the IAM ones reach users only.
func TestRolesGrantWhatHandlersCall(t *testing.T) {
	derived := derivedActions(t)
	central, _ := templates(t)
	res := resources(decode(t, central))
	seen := map[string]bool{}
	for _, h := range Handlers {
		seen[h.Logical] = true
		calls, ok := derived[h.Logical]
		if !ok {
			t.Errorf("handler %s: no type tasks.%s with a Handle method", h.Name, h.Logical)
			continue
		}
		var want []string
		for _, a := range calls {
			if !noPermission[a] {
				want = append(want, a)
			}
		}
		if got := sortedCopy(h.Actions); !slices.Equal(got, want) {
			t.Errorf("handler %s: Handlers lists %v, its code calls %v", h.Name, got, want)
		}
		grants := roleActions(res[h.Logical+"Role"])
		got := slices.Sorted(maps.Keys(grants))
		wantRole := sortedCopy(append(slices.Clone(want), runtimeActions...))
		if slices.ContainsFunc(want, func(a string) bool { return service(a) == "secretsmanager" }) {
			// Secrets Manager encrypts the secrets with the stack's key
			// on the handler's behalf (the lifecycle names it).
			wantRole = sortedCopy(append(wantRole, "kms:Decrypt", "kms:GenerateDataKey"))
		}
		if !slices.Equal(got, wantRole) {
			t.Errorf("role of %s grants %v, want %v", h.Name, got, wantRole)
		}
		for a, rs := range grants {
			if service(a) != "iam" {
				continue
			}
			for _, r := range rs {
				s, _ := json.Marshal(r)
				if accountIAMActions[a] {
					if string(s) != `"*"` {
						t.Errorf("role of %s: %s on %s: IAM authorizes it on \"*\" only", h.Name, a, s)
					}
					continue
				}
				if !strings.Contains(string(s), ":user/") {
					t.Errorf("role of %s: %s on %s, want IAM users only", h.Name, a, s)
				}
			}
		}
	}
	for typ := range derived {
		if !seen[typ] {
			t.Errorf("tasks.%s has a Handle method but no function in the template", typ)
		}
	}
	if MemberRoleName != tasks.DefaultMemberRole {
		t.Errorf("MemberRoleName %q, but the handlers assume %q", MemberRoleName, tasks.DefaultMemberRole)
	}
}

// TestMemberRole: the member role grants every IAM and Secrets Manager
// action some handler calls, nothing else, and trusts only the central
// stack's roles.
func TestMemberRole(t *testing.T) {
	derived := derivedActions(t)
	var want []string
	for _, calls := range derived {
		for _, a := range calls {
			if s := service(a); s == "iam" || s == "secretsmanager" {
				want = append(want, a)
			}
		}
	}
	want = sortedCopy(want)
	_, member := templates(t)
	doc := decode(t, member)
	role := resources(doc)["MemberRole"]
	if got := slices.Sorted(maps.Keys(roleActions(role))); !slices.Equal(got, want) {
		t.Errorf("member role grants %v, want %v", got, want)
	}
	trust, _ := json.Marshal(properties(role)["AssumeRolePolicyDocument"])
	if !strings.Contains(string(trust), "aws:PrincipalArn") || !strings.Contains(string(trust), ":role"+rolePath+"*") {
		t.Errorf("member role trust %s: want only the central stack's roles", trust)
	}
}

// TestStateMachineRoles: a machine's role invokes exactly the functions its
// definition names, starts only what it starts, and nothing else but its
// logs and (when enabled) tracing.
func TestStateMachineRoles(t *testing.T) {
	central, _ := templates(t)
	res := resources(decode(t, central))
	machines, err := Machines(statemachines.Options{})
	if err != nil {
		t.Fatal(err)
	}
	allowedOther := map[string]bool{
		"logs:CreateLogDelivery": true, "logs:DeleteLogDelivery": true, "logs:DescribeLogGroups": true,
		"logs:DescribeResourcePolicies": true, "logs:GetLogDelivery": true, "logs:ListLogDeliveries": true,
		"logs:PutResourcePolicy": true, "logs:UpdateLogDelivery": true,
		"xray:GetSamplingRules": true, "xray:GetSamplingTargets": true, "xray:PutTelemetryRecords": true, "xray:PutTraceSegments": true,
		"states:StartExecution": true, "states:DescribeExecution": true, "states:StopExecution": true,
	}
	for _, m := range machines {
		raw, _ := json.Marshal(m.Definition)
		var want []string
		for _, h := range Handlers {
			if strings.Contains(string(raw), "${"+h.Substitution+"}") {
				want = append(want, fmt.Sprintf(`{"Fn::Sub":"${%sFunction.Arn}:*"}`, h.Logical))
			}
		}
		grants := roleActions(res[m.Logical+"StateMachineRole"])
		var got []string
		for _, r := range grants["lambda:InvokeFunction"] {
			if l, ok := r.([]any); ok {
				for _, e := range l {
					s, _ := json.Marshal(e)
					got = append(got, string(s))
				}
			} else {
				s, _ := json.Marshal(r)
				got = append(got, string(s))
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: invokes %v, its definition calls %v", m.Workflow, got, want)
		}
		for a := range grants {
			if a != "lambda:InvokeFunction" && !allowedOther[a] {
				t.Errorf("%s: unexpected action %s", m.Workflow, a)
			}
		}
		starts := strings.Contains(string(raw), "states:::states:startExecution")
		if _, ok := grants["states:StartExecution"]; ok != starts {
			t.Errorf("%s: states:StartExecution granted %t, but the definition starts executions: %t", m.Workflow, ok, starts)
		}
	}
}

// substituted is a definition as Step Functions sees it once
// CloudFormation filled DefinitionSubstitutions.
func substituted(t *testing.T, def any, subs map[string]any) []byte {
	t.Helper()
	raw, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for k, v := range subs {
		var val string
		switch {
		case k == subAdminsGroup:
			val = "admins"
		case k == subSecretsKey:
			val = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		case strings.HasSuffix(k, "FunctionArn"):
			r := v.(map[string]any)["Ref"].(string)
			h := strings.TrimSuffix(r, "Version")
			for _, hh := range Handlers {
				if hh.Logical == h {
					val = "arn:aws:lambda:us-east-1:123456789012:function:" + hh.FunctionName + ":1"
				}
			}
		case startable[k] != "":
			val = "arn:aws:states:us-east-1:123456789012:stateMachine:" + statemachines.StateMachineName(startable[k])
		}
		if val == "" {
			t.Fatalf("no sample value for substitution %s", k)
		}
		s = strings.ReplaceAll(s, "${"+k+"}", val)
	}
	return []byte(s)
}

// TestDefinitionsValidate: every definition in the template, as AWS will
// see it after substitution, passes states.Validate and asl-validator.
func TestDefinitionsValidate(t *testing.T) {
	central, _ := templates(t)
	res := resources(decode(t, central))
	validator := filepath.Join("..", "node_modules", ".bin", "asl-validator")
	_, verr := os.Stat(validator)
	dir := t.TempDir()
	for _, name := range ofType(decode(t, central), "AWS::StepFunctions::StateMachine") {
		p := properties(res[name])
		subs, _ := p["DefinitionSubstitutions"].(map[string]any)
		doc := substituted(t, p["Definition"], subs)
		d, err := states.Parse(doc)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := states.Validate(d); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if verr != nil {
			continue
		}
		file := filepath.Join(dir, name+".asl.json")
		if err := os.WriteFile(file, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(validator, "--json-path", file).CombinedOutput()
		if err != nil {
			t.Errorf("asl-validator %s: %v\n%s", name, err, out)
		}
	}
	if verr != nil {
		t.Skipf("asl-validator not installed (%s missing): run `npm ci` (make npm) at the repository root; states.Validate ran", validator)
	}
}

// TestCfnLint runs AWS's linter on both templates. W3002 ("may only work
// with package") is the point of a local Code path, so it is the one
// finding allowed; every error and every other warning fails.
func TestCfnLint(t *testing.T) {
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint not on PATH (pip install cfn-lint==1.51.0); the template is not linted here")
	}
	if err := exec.Command(lint, "--version").Run(); err != nil {
		t.Skipf("cfn-lint on PATH does not run (%v); the template is not linted here", err)
	}
	central, member := templates(t)
	dir := t.TempDir()
	for name, doc := range map[string][]byte{"central.json": central, "member.json": member} {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(lint, "--format", "json", file).Output()
		var findings []struct {
			Level    string
			Message  string
			Rule     struct{ Id string }
			Location struct{ Start struct{ LineNumber int } }
		}
		if err := json.Unmarshal(out, &findings); err != nil {
			t.Fatalf("cfn-lint %s: %v\n%s", name, err, out)
		}
		for _, f := range findings {
			if f.Rule.Id == "W3002" {
				continue
			}
			t.Errorf("cfn-lint %s:%d: %s %s %s", name, f.Location.Start.LineNumber, f.Level, f.Rule.Id, f.Message)
		}
	}
}
