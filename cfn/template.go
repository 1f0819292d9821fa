package cfn

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/cloudtrail"
	"github.com/awslabs/goformation/v7/cloudformation/events"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
	"github.com/awslabs/goformation/v7/cloudformation/kms"
	"github.com/awslabs/goformation/v7/cloudformation/lambda"
	"github.com/awslabs/goformation/v7/cloudformation/policies"
	"github.com/awslabs/goformation/v7/cloudformation/s3"
	"github.com/awslabs/goformation/v7/cloudformation/scheduler"
	"github.com/awslabs/goformation/v7/cloudformation/sns"
	"github.com/awslabs/goformation/v7/cloudformation/stepfunctions"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/states"
)

// DefaultCodeURI is the Lambda bundle that `make lambda` writes, relative
// to the template written into dist/.
const DefaultCodeURI = "keyflow-lambda.zip"

// MemberRoleName is the role Member creates and the handlers assume; it is
// tasks.DefaultMemberRole (a test keeps the two equal, without cfn
// importing the handlers' runtime).
const MemberRoleName = "KeyflowMemberRole"

// rolePath puts every role of the central stack under /keyflow/, which is
// what the member role's trust policy admits.
const rolePath = "/keyflow/"

// Options shape the central template.
type Options struct {
	// CodeURI is the Lambda zip as `aws cloudformation package` reads it:
	// a path relative to the template file. DefaultCodeURI when empty.
	CodeURI string
	// CodeSHA256 is the zip's SHA-256, base64 (what Lambda reports as
	// CodeSha256). Each AWS::Lambda::Version carries it, so a new zip
	// replaces the versions (a new version is published) while the old
	// ones are retained for the executions that still run them. Without it
	// an update of the code alone publishes no new version.
	CodeSHA256 string
	// Workflows are the state machines' options; its Resources and
	// AdminsGroup are set by the template (substitutions).
	Workflows statemachines.Options
}

// Machine is one state machine of the central template.
type Machine struct {
	Workflow   string // statemachines name: "lifecycle"
	Logical    string // "Lifecycle": LifecycleStateMachine, LifecycleStateMachineRole, ...
	Definition *states.Definition
}

func logicalOf(workflow string) string {
	return strings.ToUpper(workflow[:1]) + workflow[1:]
}

// Machines builds every workflow as the template embeds it: the Resources
// are DefinitionSubstitutions placeholders, and so is the admins group, so
// that the stack's parameter decides it.
func Machines(o statemachines.Options) ([]Machine, error) {
	o.Resources = statemachines.Substitutions()
	o.AdminsGroup = "${" + subAdminsGroup + "}"
	o.SecretsKMSKeyID = "${" + subSecretsKey + "}"
	var out []Machine
	for _, w := range statemachines.Names() {
		d, err := statemachines.Build(w, o)
		if err != nil {
			return nil, fmt.Errorf("cfn: workflow %s: %w", w, err)
		}
		out = append(out, Machine{Workflow: w, Logical: logicalOf(w), Definition: d})
	}
	return out, nil
}

// subAdminsGroup is the substitution that puts the AdminsGroup parameter
// into the quarantine's definition.
const subAdminsGroup = "AdminsGroup"

// subSecretsKey puts the stack's KMS key into the lifecycle's CreateKey
// when keyflow runs in one account. For an Organization it is empty: the
// secrets live in the member accounts, where a key of this account would
// need cross-account grants, so they keep each account's
// aws/secretsmanager key.
const subSecretsKey = "SecretsKmsKeyId"

// Conditions of the central template.
const (
	condTracing     = "TracingEnabled"
	condTrail       = "CreateTrailEnabled"
	condEmail       = "HasNotificationEmail"
	condSESEmail    = "EmailEnabled"
	condOneAccount  = "SingleAccount"
	paramMemberRole = "MemberRoleName"
)

// Central returns the template of the account that runs keyflow, as JSON
// ready for `aws cloudformation package`.
func Central(o Options) ([]byte, error) {
	if o.CodeURI == "" {
		o.CodeURI = DefaultCodeURI
	}
	machines, err := Machines(o.Workflows)
	if err != nil {
		return nil, err
	}
	t := cloudformation.NewTemplate()
	t.Description = "keyflow: staged IAM access key rotation and manual-approval quarantine on AWS Step Functions (central account)"
	centralParameters(t, o.Workflows)
	equals := func(p, v string) map[string]any { return map[string]any{"Fn::Equals": []any{ref(p), v}} }
	t.Conditions = map[string]any{
		condTracing:    equals("EnableXRay", "true"),
		condTrail:      equals("CreateTrail", "true"),
		condOneAccount: equals("Organization", "false"),
		condEmail:      map[string]any{"Fn::Not": []any{equals("NotificationEmail", "")}},
		condSESEmail:   map[string]any{"Fn::Not": []any{equals("EmailSender", "")}},
		// The hygiene schedule is optional: an empty expression is none.
		condHygieneScheduled: map[string]any{"Fn::Not": []any{equals(paramHygieneSchedule, "")}},
	}
	emailTemplate(t)

	secretsKey(t)
	topic(t)
	// The secrets are encrypted with the stack's key only when the
	// lifecycle names it to CreateKey; otherwise Secrets Manager uses the
	// account's aws/secretsmanager key and no role needs kms actions.
	useKey := false
	for _, m := range machines {
		if raw, err := json.Marshal(m.Definition); err == nil && strings.Contains(string(raw), `"kmsKeyId`) {
			useKey = true
		}
	}
	for _, h := range Handlers {
		function(t, h, o, useKey)
	}
	// Which resources a definition's Tasks reach decides its role.
	for _, m := range machines {
		subs, stmts, err := machineGrants(m)
		if err != nil {
			return nil, err
		}
		stateMachine(t, m, subs, stmts)
	}
	schedule(t)
	quarantineRule(t)
	auditRule(t)
	trail(t)
	if err := hygiene(t); err != nil {
		return nil, err
	}
	t.Outputs = cloudformation.Outputs{}
	for _, m := range machines {
		t.Outputs[m.Logical+"StateMachineArn"] = cloudformation.Output{
			Description: cloudformation.String(m.Workflow + " state machine"),
			Value:       cloudformation.Ref(m.Logical + "StateMachine"),
		}
	}
	t.Outputs["TopicArn"] = cloudformation.Output{Description: cloudformation.String("notifications and approval requests"), Value: cloudformation.Ref("Topic")}
	t.Outputs["SecretsKeyArn"] = cloudformation.Output{Description: cloudformation.String("KMS key for the users' secrets"), Value: cloudformation.GetAtt("SecretsKey", "Arn")}
	t.Outputs["MFARequiredPolicyArn"] = cloudformation.Output{
		Description: cloudformation.String("this account's MFA-required policy, named by CloudFormation (keyflow report --aws --mfa-policy-arn)"),
		Value:       cloudformation.Ref("MFARequiredPolicy"),
	}

	doc, err := render(t)
	if err != nil {
		return nil, err
	}
	// Two properties goformation cannot type: the Lambda code as the local
	// path that `aws cloudformation package` uploads and rewrites, and the
	// tracing switch as a condition.
	res := doc["Resources"].(map[string]any)
	for _, h := range Handlers {
		props(res, h.Logical+"Function")["Code"] = o.CodeURI
	}
	for _, m := range machines {
		props(res, m.Logical+"StateMachine")["TracingConfiguration"] = ifCond(condTracing, map[string]any{"Enabled": true}, noValue)
	}
	return marshal(doc)
}

func props(res map[string]any, logical string) map[string]any {
	return res[logical].(map[string]any)["Properties"].(map[string]any)
}

func param(typ, desc string, def any, allowed ...any) cloudformation.Parameter {
	return cloudformation.Parameter{Type: typ, Description: &desc, Default: def, AllowedValues: allowed}
}

func centralParameters(t *cloudformation.Template, w statemachines.Options) {
	// The workflows' own defaults (45, 60, 90 days) unless synth was told
	// otherwise; the schedule passes the parameters as the inventory's
	// input, which overrides what the definition holds.
	or := func(v, d int) int {
		if v == 0 {
			return d
		}
		return v
	}
	days := func(desc string, def int) cloudformation.Parameter {
		p := param("Number", desc, def)
		p.MinValue, p.MaxValue = cloudformation.Float64(1), cloudformation.Float64(3650)
		return p
	}
	graceDays := param("Number", "Days a console user without MFA has to enrol after the first notice, before the MFA-required policy is attached.",
		or(int(w.MFAGracePeriod/(24*time.Hour)), defaultMFAGraceDays))
	graceDays.MinValue, graceDays.MaxValue = cloudformation.Float64(1), cloudformation.Float64(365)
	t.Parameters = cloudformation.Parameters{
		"RotationDays": days("Days after its creation at which a key is rotated (a new key is created and stored).", or(w.RotationDays, 45)),
		"InactiveDays": days("Days after its creation at which the old key is deactivated.", or(w.InactiveDays, 60)),
		"BufferDays":   days("Days after its creation at which the old, inactive key is deleted.", or(w.BufferDays, 90)),
		"AdminsGroup":  param("String", "IAM group whose members' IAM calls never start a quarantine.", "admins"),
		"NotificationEmail": param("String",
			"Address subscribed to the notifications topic (confirm the subscription mail); empty for none.", ""),
		"EmailSender": param("String",
			"Address notify emails the key's owner and NotificationEmail from, through SES with the stack's template; it (or its domain) must be a verified SES identity of this account. Empty: no email.", ""),
		"Exemptions": param("String",
			`JSON array of exemptions the daily inventory honours: [{"scope":"user|group|tag|account|ou","value":"...","reason":"...","owner":"...","expires":"2027-01-01T00:00:00Z"}].`, "[]"),
		"DryRun":                      param("String", "true: every workflow reports what it would do and changes nothing.", "false", "true", "false"),
		"Organization":                param("String", "true: the inventory covers every account of the AWS Organization (deploy in the management or a delegated administrator account, and the member template in every account).", "false", "true", "false"),
		"InventoryScheduleExpression": param("String", "When the inventory runs (EventBridge Scheduler expression, UTC).", "cron(0 6 * * ? *)"),
		paramHygieneSchedule:          param("String", "When the account hygiene inventory runs (EventBridge Scheduler expression, UTC): console users without MFA are told, then get the MFA-required policy after the grace period; empty: no schedule.", "cron(30 6 * * ? *)"),
		paramMFAGraceDays:             graceDays,
		paramSetPasswordPolicy:        param("String", "true: the hygiene inventory also brings each account's password policy up to the baseline (it only tightens).", "false", "true", "false"),
		paramMemberRole:               param("String", "Name of the role the member template creates in the other accounts.", MemberRoleName),
		"LogRetentionDays": param("Number", "Retention of every log group of the stack.", 365,
			1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653),
		"EnableXRay":  param("String", "true: trace the state machines with AWS X-Ray.", "false", "true", "false"),
		"CreateTrail": param("String", "true: create a multi-Region CloudTrail trail (the quarantine rule needs IAM events from CloudTrail; skip if one already exists).", "false", "true", "false"),
	}
}

// secretsKey is the customer-managed key for the users' secrets. Its key
// policy lists the administration actions by name (no "kms:*"), and lets
// principals of this account use it only through Secrets Manager.
func secretsKey(t *cloudformation.Template) {
	root := map[string]any{"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")}
	admin := statement{
		Sid: "AccountAdministers", Effect: "Allow", Principal: root, Resource: "*",
		Action: sortedCopy([]string{
			"kms:CancelKeyDeletion", "kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey",
			"kms:EnableKeyRotation", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags",
			"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription",
		}),
	}
	use := statement{
		Sid: "SecretsManagerUse", Effect: "Allow", Principal: root, Resource: "*",
		Action: []string{"kms:Decrypt", "kms:GenerateDataKey"},
		Condition: map[string]any{"StringEquals": map[string]any{
			"kms:ViaService":    sub("secretsmanager.${AWS::Region}.amazonaws.com"),
			"kms:CallerAccount": ref("AWS::AccountId"),
		}},
	}
	t.Resources["SecretsKey"] = &kms.Key{
		Description:                          cloudformation.String("keyflow: encrypts the users' access key secrets"),
		EnableKeyRotation:                    cloudformation.Bool(true),
		KeyPolicy:                            document(admin, use),
		AWSCloudFormationDeletionPolicy:      policies.DeletionPolicy("Retain"),
		AWSCloudFormationUpdateReplacePolicy: policies.UpdateReplacePolicy("Retain"),
	}
	t.Resources["SecretsKeyAlias"] = &kms.Alias{
		AliasName:   cloudformation.Sub("alias/keyflow-${AWS::StackName}-secrets"),
		TargetKeyId: cloudformation.Ref("SecretsKey"),
	}
}

func topic(t *cloudformation.Template) {
	t.Resources["Topic"] = &sns.Topic{
		DisplayName: cloudformation.String("keyflow"),
		// Notifications never carry a secret, but they name users and keys:
		// encrypted at rest with the account's SNS key.
		KmsMasterKeyId: cloudformation.String("alias/aws/sns"),
	}
	t.Resources["TopicSubscription"] = &sns.Subscription{
		TopicArn:                   cloudformation.Ref("Topic"),
		Protocol:                   "email",
		Endpoint:                   cloudformation.RefPtr("NotificationEmail"),
		AWSCloudFormationCondition: condEmail,
	}
}

func logGroup(t *cloudformation.Template, logical, name string) {
	// goformation types RetentionInDays as an int, which cannot hold the
	// Ref to the retention parameter.
	t.Resources[logical] = &rawResource{Type: "AWS::Logs::LogGroup", Properties: map[string]any{
		"LogGroupName":    name,
		"RetentionInDays": ref("LogRetentionDays"),
	}}
}

// rawResource is a resource whose properties goformation would type too
// narrowly for an intrinsic (an int that must be a Ref).
type rawResource struct {
	Type       string
	Properties map[string]any
}

func (r *rawResource) AWSCloudFormationType() string { return r.Type }
func (r *rawResource) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"Type": r.Type, "Properties": r.Properties})
}

func function(t *cloudformation.Template, h Handler, o Options, useKey bool) {
	logGroup(t, h.Logical+"LogGroup", "/aws/lambda/"+h.FunctionName)
	t.Resources[h.Logical+"Role"] = &iam.Role{
		Description:              cloudformation.String("keyflow " + h.Name + " handler: exactly the actions it calls"),
		Path:                     cloudformation.String(rolePath),
		AssumeRolePolicyDocument: trust("lambda.amazonaws.com"),
		Policies:                 []iam.Role_Policy{{PolicyName: h.Name, PolicyDocument: document(handlerStatements(h, useKey)...)}},
	}
	env := map[string]string{
		"KEYFLOW_HANDLER":     h.Name,
		"KEYFLOW_MEMBER_ROLE": cloudformation.Ref(paramMemberRole),
	}
	switch h.Name {
	case "notify":
		env["KEYFLOW_TOPIC_ARN"] = cloudformation.Ref("Topic")
		env["KEYFLOW_SECURITY_TEAM"] = cloudformation.Ref("NotificationEmail")
		env["KEYFLOW_EMAIL_FROM"] = cloudformation.Ref("EmailSender") // empty: no email
		env["KEYFLOW_EMAIL_TEMPLATE"] = NotifyEmailTemplateName
	case "quarantine":
		env["KEYFLOW_ADMINS_GROUP"] = cloudformation.Ref("AdminsGroup")
	case "audit-record":
		env["KEYFLOW_AUDIT_BUCKET"] = cloudformation.Ref("AuditBucket")
	case "hygiene", "check-mfa", "enforce-mfa":
		env["KEYFLOW_MFA_POLICY_ARN"] = cloudformation.Ref("MFARequiredPolicy")
		env["KEYFLOW_MFA_MEMBER_POLICY_NAME"] = cloudformation.Ref(paramMemberMFAPolicy)
		if h.Name == "hygiene" {
			env["KEYFLOW_MFA_STATE_MACHINE_ARN"] = cloudformation.Ref(mfaStateMachine)
		}
	}
	t.Resources[h.Logical+"Function"] = &lambda.Function{
		FunctionName:                 cloudformation.String(h.FunctionName),
		Description:                  cloudformation.String("keyflow " + h.Name + " handler"),
		Runtime:                      cloudformation.String("provided.al2023"),
		Architectures:                []string{"arm64"},
		Handler:                      cloudformation.String("bootstrap"),
		Code:                         &lambda.Function_Code{}, // the local path, set in Central
		Role:                         cloudformation.GetAtt(h.Logical+"Role", "Arn"),
		MemorySize:                   cloudformation.Int(256),
		Timeout:                      cloudformation.Int(h.TimeoutSeconds),
		Environment:                  &lambda.Function_Environment{Variables: env},
		ReservedConcurrentExecutions: oneAtATime(h),
		// The log group exists (with its retention) before the function
		// can write to it, so Lambda never creates one without retention.
		AWSCloudFormationDependsOn: []string{h.Logical + "LogGroup"},
	}
	v := &lambda.Version{
		FunctionName: cloudformation.Ref(h.Logical + "Function"),
		Description:  cloudformation.String("keyflow " + h.Name + ": the code the state machines invoke"),
		// Retained on replacement: an execution that started on this
		// version (a lifecycle runs 90 days) keeps invoking it.
		AWSCloudFormationDeletionPolicy:      policies.DeletionPolicy("Retain"),
		AWSCloudFormationUpdateReplacePolicy: policies.UpdateReplacePolicy("Retain"),
	}
	if o.CodeSHA256 != "" {
		v.CodeSha256 = cloudformation.String(o.CodeSHA256)
	}
	t.Resources[h.Logical+"Version"] = v
}

func stateMachineArn(workflow string) map[string]any {
	return sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:" + statemachines.StateMachineName(workflow))
}

func executionsOf(workflow string) map[string]any {
	return sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:" + statemachines.StateMachineName(workflow) + "/*")
}

func stateMachine(t *cloudformation.Template, m Machine, subs map[string]any, grants []any) {
	name := statemachines.StateMachineName(m.Workflow)
	logGroup(t, m.Logical+"StateMachineLogGroup", "/aws/vendedlogs/states/"+name)
	// Step Functions delivers logs through CloudWatch Logs' vended-log
	// delivery, whose API takes no resource: AWS documents these actions
	// on "*".
	delivery := allow("LogDelivery", []string{
		"logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
		"logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
	}, "*")
	tracing := ifCond(condTracing, allow("XRay", []string{
		"xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
	}, "*"), noValue)
	stmts := append(slices.Clone(grants), delivery, tracing)
	t.Resources[m.Logical+"StateMachineRole"] = &iam.Role{
		Description:              cloudformation.String("keyflow " + m.Workflow + " state machine: what its Tasks call, and its logs"),
		Path:                     cloudformation.String(rolePath),
		AssumeRolePolicyDocument: trust("states.amazonaws.com"),
		Policies:                 []iam.Role_Policy{{PolicyName: m.Workflow, PolicyDocument: document(stmts...)}},
	}
	t.Resources[m.Logical+"StateMachine"] = &stepfunctions.StateMachine{
		StateMachineName:        cloudformation.String(name),
		StateMachineType:        cloudformation.String("STANDARD"),
		RoleArn:                 cloudformation.GetAtt(m.Logical+"StateMachineRole", "Arn"),
		Definition:              m.Definition,
		DefinitionSubstitutions: subs,
		LoggingConfiguration: &stepfunctions.StateMachine_LoggingConfiguration{
			Level: cloudformation.String("ALL"),
			// The histories keep the data; logs never do, so no key id or
			// user detail is copied into CloudWatch Logs.
			IncludeExecutionData: cloudformation.Bool(false),
			Destinations: []stepfunctions.StateMachine_LogDestination{{
				CloudWatchLogsLogGroup: &stepfunctions.StateMachine_CloudWatchLogsLogGroup{
					LogGroupArn: cloudformation.GetAttPtr(m.Logical+"StateMachineLogGroup", "Arn"),
				},
			}},
		},
	}
}

// startable are the workflows a definition may start, by the
// DefinitionSubstitutions key that names them.
var startable = map[string]string{
	statemachines.SubLifecycleStateMachine: statemachines.NameLifecycle,
	statemachines.SubMFAStateMachine:       statemachines.NameMFA,
}

// machineGrants reads a definition's Tasks and returns its
// DefinitionSubstitutions and the statements its role needs. Each
// integration keyflow uses is known here; any other is an error, so a new
// kind of Task cannot ship with a guessed (or a broad) permission.
func machineGrants(m Machine) (map[string]any, []any, error) {
	subs := map[string]any{}
	invoke := map[string]bool{}
	var start []any
	var problems []string
	placeholder := func(s string) (string, bool) {
		if strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") {
			return s[2 : len(s)-1], true
		}
		return "", false
	}
	function := func(ptr, s string) {
		key, ok := placeholder(s)
		h, known := handlerBySubstitution(key)
		if !ok || !known {
			problems = append(problems, fmt.Sprintf("%s: function %q is not one of the template's handlers", ptr, s))
			return
		}
		subs[key] = ref(h.Logical + "Version")
		invoke[h.Logical] = true
	}
	distributed := false
	states.Walk(m.Definition, func(ptr, _ string, s states.State) {
		if mp, ok := s.(*states.Map); ok && mp.ItemProcessor != nil && mp.ItemProcessor.ProcessorConfig != nil &&
			mp.ItemProcessor.ProcessorConfig.Mode == "DISTRIBUTED" {
			distributed = true
		}
		task, ok := s.(*states.Task)
		if !ok {
			return
		}
		if task.Credentials != nil {
			problems = append(problems, ptr+": Credentials (a cross-account Task) has no grant here")
		}
		params, _ := task.Parameters.(map[string]any)
		str := func(k string) string { v, _ := params[k].(string); return v }
		switch r := task.Resource; {
		case strings.HasPrefix(r, "${"):
			function(ptr, r)
		case r == "arn:aws:states:::lambda:invoke" || r == "arn:aws:states:::lambda:invoke.waitForTaskToken":
			function(ptr, str("FunctionName"))
		case r == "arn:aws:states:::states:startExecution":
			key, ok := placeholder(str("StateMachineArn"))
			target, known := startable[key]
			if !ok || !known {
				problems = append(problems, fmt.Sprintf("%s: starts %q, not a keyflow workflow another starts", ptr, str("StateMachineArn")))
				return
			}
			logical := logicalOf(target) + "StateMachine"
			subs[key] = ref(logical)
			if !slices.ContainsFunc(start, func(x any) bool { return reflect.DeepEqual(x, ref(logical)) }) {
				start = append(start, ref(logical))
			}
		default:
			problems = append(problems, fmt.Sprintf("%s: no grant known for Resource %q", ptr, r))
		}
	})
	if len(problems) > 0 {
		return nil, nil, fmt.Errorf("cfn: %s state machine: %s", m.Workflow, strings.Join(problems, "; "))
	}
	// The admins group is a string in the quarantine's definition.
	if raw, err := json.Marshal(m.Definition); err == nil && strings.Contains(string(raw), "${"+subAdminsGroup+"}") {
		subs[subAdminsGroup] = ref("AdminsGroup")
	}
	if raw, err := json.Marshal(m.Definition); err == nil && strings.Contains(string(raw), "${"+subSecretsKey+"}") {
		subs[subSecretsKey] = map[string]any{"Fn::If": []any{condOneAccount, getAtt("SecretsKey", "Arn"), ""}}
	}
	var stmts []any
	if len(invoke) > 0 {
		var arns []any
		for _, l := range slices.Sorted(maps.Keys(invoke)) {
			// Every version of the function: an execution that started on
			// an older version (kept by its Retain policy) still invokes it.
			arns = append(arns, sub("${"+l+"Function.Arn}:*"))
		}
		stmts = append(stmts, allow("InvokeHandlers", []string{"lambda:InvokeFunction"}, arns...))
	}
	for _, target := range start {
		logical := target.(map[string]any)["Ref"].(string)
		stmts = append(stmts, allow("Start"+strings.TrimSuffix(logical, "StateMachine"), []string{"states:StartExecution"}, target))
	}
	if distributed {
		// A distributed Map runs its iterations as child executions of
		// this very machine (named, so no reference cycle with the role).
		stmts = append(stmts,
			allow("DistributedMapStart", []string{"states:StartExecution"}, stateMachineArn(m.Workflow)),
			allow("DistributedMapChildren", []string{"states:DescribeExecution", "states:StopExecution"}, executionsOf(m.Workflow)))
	}
	if len(subs) == 0 {
		subs = nil
	}
	return subs, stmts, nil
}

// defaultMFAGraceDays is tasks.DefaultMFAGraceDays (cfn must not import
// tasks; a test keeps the two equal).
const defaultMFAGraceDays = 7

// Conditions and parameters of the schedules.
const (
	condHygieneScheduled   = "HygieneScheduled"
	paramHygieneSchedule   = "HygieneScheduleExpression"
	paramMFAGraceDays      = "MFAGraceDays"
	paramSetPasswordPolicy = "SetPasswordPolicy"
)

// scheduleAccount is the accountId a schedule's input names: this account
// when keyflow runs in one account, nothing for an Organization (the
// handlers refuse both at once, and refuse neither).
var scheduleAccount = map[string]any{"ScheduleAccountId": cloudformation.If(condOneAccount, cloudformation.Ref("AWS::AccountId"), "")}

// schedule starts the inventory daily, with the stack's policy as input,
// and, unless HygieneScheduleExpression is empty, the hygiene inventory
// (MFA enforcement and the password policy) on its own schedule: a slow
// console walk never delays key rotation, and an account that does not
// want MFA enforced turns it off without losing rotation.
func schedule(t *cloudformation.Template) {
	start := func(logical, machine, description, expression, input string, condition string) {
		t.Resources[logical+"ScheduleRole"] = &iam.Role{
			Description:              cloudformation.String("keyflow schedule: starts the " + statemachines.StateMachineName(strings.ToLower(logical)) + " state machine"),
			Path:                     cloudformation.String(rolePath),
			AssumeRolePolicyDocument: trust("scheduler.amazonaws.com"),
			Policies: []iam.Role_Policy{{PolicyName: "start-" + strings.ToLower(logical), PolicyDocument: document(
				allow("Start"+logical, []string{"states:StartExecution"}, ref(machine)))}},
			AWSCloudFormationCondition: condition,
		}
		t.Resources[logical+"Schedule"] = &scheduler.Schedule{
			Description:                cloudformation.String(description),
			ScheduleExpression:         cloudformation.Ref(expression),
			ScheduleExpressionTimezone: cloudformation.String("UTC"),
			FlexibleTimeWindow:         &scheduler.Schedule_FlexibleTimeWindow{Mode: "OFF"},
			State:                      cloudformation.String("ENABLED"),
			Target: &scheduler.Schedule_Target{
				Arn:         cloudformation.Ref(machine),
				RoleArn:     cloudformation.GetAtt(logical+"ScheduleRole", "Arn"),
				Input:       cloudformation.SubVarsPtr(input, scheduleAccount),
				RetryPolicy: &scheduler.Schedule_RetryPolicy{MaximumRetryAttempts: cloudformation.Float64(3)},
			},
			AWSCloudFormationCondition: condition,
		}
	}
	start("Inventory", "InventoryStateMachine", "keyflow: the daily inventory of access keys", "InventoryScheduleExpression",
		`{"accountId":"${ScheduleAccountId}","organization":${Organization},"exemptions":${Exemptions},`+
			`"rotationDays":${RotationDays},"inactiveDays":${InactiveDays},"bufferDays":${BufferDays},"dryRun":${DryRun}}`, "")
	start("Hygiene", "HygieneStateMachine", "keyflow: the daily account hygiene inventory (MFA enforcement, password policy)", paramHygieneSchedule,
		`{"accountId":"${ScheduleAccountId}","organization":${Organization},"exemptions":${Exemptions},`+
			`"graceDays":${`+paramMFAGraceDays+`},"setPasswordPolicy":${`+paramSetPasswordPolicy+`},"dryRun":${DryRun}}`, condHygieneScheduled)
}

func oneAtATime(h Handler) *int {
	if h.OneAtATime {
		return cloudformation.Int(1)
	}
	return nil
}

// auditRule writes an audit record whenever an execution of a keyflow state
// machine ends, into a private, versioned bucket kept when the stack goes.
// The function runs one invocation at a time (the records form one hash
// chain); EventBridge's asynchronous invocation queues the others.
func auditRule(t *cloudformation.Template) {
	t.Resources["AuditBucket"] = &s3.Bucket{
		BucketEncryption: &s3.Bucket_BucketEncryption{ServerSideEncryptionConfiguration: []s3.Bucket_ServerSideEncryptionRule{{
			ServerSideEncryptionByDefault: &s3.Bucket_ServerSideEncryptionByDefault{SSEAlgorithm: "AES256"},
		}}},
		PublicAccessBlockConfiguration: &s3.Bucket_PublicAccessBlockConfiguration{
			BlockPublicAcls: cloudformation.Bool(true), BlockPublicPolicy: cloudformation.Bool(true),
			IgnorePublicAcls: cloudformation.Bool(true), RestrictPublicBuckets: cloudformation.Bool(true),
		},
		OwnershipControls:                    &s3.Bucket_OwnershipControls{Rules: []s3.Bucket_OwnershipControlsRule{{ObjectOwnership: cloudformation.String("BucketOwnerEnforced")}}},
		VersioningConfiguration:              &s3.Bucket_VersioningConfiguration{Status: "Enabled"},
		AWSCloudFormationDeletionPolicy:      policies.DeletionPolicy("Retain"),
		AWSCloudFormationUpdateReplacePolicy: policies.UpdateReplacePolicy("Retain"),
	}
	t.Resources["AuditRule"] = &events.Rule{
		Description: cloudformation.String("keyflow: every keyflow execution that ends gets an audit record"),
		State:       cloudformation.String("ENABLED"),
		EventPattern: map[string]any{
			"source":      []string{"aws.states"},
			"detail-type": []string{"Step Functions Execution Status Change"},
			"detail": map[string]any{
				"status":          []string{"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"},
				"stateMachineArn": []any{map[string]any{"prefix": sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:keyflow-")}},
			},
		},
		Targets: []events.Rule_Target{{
			Id:        "AuditRecord",
			Arn:       cloudformation.GetAtt("AuditRecordFunction", "Arn"),
			InputPath: cloudformation.String("$.detail"),
		}},
	}
	t.Resources["AuditRulePermission"] = &lambda.Permission{
		Action:       "lambda:InvokeFunction",
		FunctionName: cloudformation.Ref("AuditRecordFunction"),
		Principal:    "events.amazonaws.com",
		SourceArn:    cloudformation.GetAttPtr("AuditRule", "Arn"),
	}
}

// quarantineRule starts a quarantine for every IAM write call that an IAM
// user (not a role, not keyflow itself) made, as CloudTrail reports it.
// IAM is a global service: its events reach EventBridge in us-east-1.
func quarantineRule(t *cloudformation.Template) {
	t.Resources["QuarantineRuleRole"] = &iam.Role{
		Description:              cloudformation.String("keyflow CloudTrail rule: starts the quarantine"),
		Path:                     cloudformation.String(rolePath),
		AssumeRolePolicyDocument: trust("events.amazonaws.com"),
		Policies: []iam.Role_Policy{{PolicyName: "start-quarantine", PolicyDocument: document(
			allow("StartQuarantine", []string{"states:StartExecution"}, ref("QuarantineStateMachine")))}},
	}
	t.Resources["QuarantineRule"] = &events.Rule{
		Description: cloudformation.String("keyflow: IAM write calls by IAM users start a quarantine (with approval)"),
		State:       cloudformation.String("ENABLED"),
		EventPattern: map[string]any{
			"source":      []string{"aws.iam"},
			"detail-type": []string{"AWS API Call via CloudTrail"},
			"detail": map[string]any{
				"eventSource":  []string{"iam.amazonaws.com"},
				"readOnly":     []bool{false},
				"userIdentity": map[string]any{"type": []string{"IAMUser"}},
			},
		},
		Targets: []events.Rule_Target{{
			Id:      "Quarantine",
			Arn:     cloudformation.Ref("QuarantineStateMachine"),
			RoleArn: cloudformation.GetAttPtr("QuarantineRuleRole", "Arn"),
		}},
	}
}

// trail is the optional multi-Region trail whose IAM events feed the
// quarantine rule, with its private, encrypted bucket.
func trail(t *cloudformation.Template) {
	t.Resources["TrailBucket"] = &s3.Bucket{
		BucketEncryption: &s3.Bucket_BucketEncryption{ServerSideEncryptionConfiguration: []s3.Bucket_ServerSideEncryptionRule{{
			ServerSideEncryptionByDefault: &s3.Bucket_ServerSideEncryptionByDefault{SSEAlgorithm: "AES256"},
		}}},
		PublicAccessBlockConfiguration: &s3.Bucket_PublicAccessBlockConfiguration{
			BlockPublicAcls: cloudformation.Bool(true), BlockPublicPolicy: cloudformation.Bool(true),
			IgnorePublicAcls: cloudformation.Bool(true), RestrictPublicBuckets: cloudformation.Bool(true),
		},
		OwnershipControls:                    &s3.Bucket_OwnershipControls{Rules: []s3.Bucket_OwnershipControlsRule{{ObjectOwnership: cloudformation.String("BucketOwnerEnforced")}}},
		VersioningConfiguration:              &s3.Bucket_VersioningConfiguration{Status: "Enabled"},
		AWSCloudFormationCondition:           condTrail,
		AWSCloudFormationDeletionPolicy:      policies.DeletionPolicy("Retain"),
		AWSCloudFormationUpdateReplacePolicy: policies.UpdateReplacePolicy("Retain"),
	}
	trailArn := sub("arn:${AWS::Partition}:cloudtrail:${AWS::Region}:${AWS::AccountId}:trail/keyflow-${AWS::StackName}")
	cloudtrailPrincipal := map[string]any{"Service": "cloudtrail.amazonaws.com"}
	t.Resources["TrailBucketPolicy"] = &s3.BucketPolicy{
		Bucket: cloudformation.Ref("TrailBucket"),
		PolicyDocument: document(
			statement{Sid: "CloudTrailAclCheck", Effect: "Allow", Principal: cloudtrailPrincipal,
				Action: []string{"s3:GetBucketAcl"}, Resource: getAtt("TrailBucket", "Arn"),
				Condition: map[string]any{"StringEquals": map[string]any{"aws:SourceArn": trailArn}}},
			statement{Sid: "CloudTrailWrite", Effect: "Allow", Principal: cloudtrailPrincipal,
				Action: []string{"s3:PutObject"}, Resource: sub("${TrailBucket.Arn}/AWSLogs/${AWS::AccountId}/*"),
				Condition: map[string]any{"StringEquals": map[string]any{"aws:SourceArn": trailArn}}},
			statement{Sid: "TLSOnly", Effect: "Deny", Principal: "*",
				Action:    []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"},
				Resource:  []any{getAtt("TrailBucket", "Arn"), sub("${TrailBucket.Arn}/*")},
				Condition: map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}},
		),
		AWSCloudFormationCondition: condTrail,
	}
	t.Resources["Trail"] = &cloudtrail.Trail{
		TrailName:                  cloudformation.SubPtr("keyflow-${AWS::StackName}"),
		S3BucketName:               cloudformation.Ref("TrailBucket"),
		IsLogging:                  true,
		IsMultiRegionTrail:         cloudformation.Bool(true),
		IncludeGlobalServiceEvents: cloudformation.Bool(true),
		EnableLogFileValidation:    cloudformation.Bool(true),
		// The CIS alarms (hygiene.go) read the trail from CloudWatch Logs.
		CloudWatchLogsLogGroupArn:  cloudformation.GetAttPtr("TrailLogGroup", "Arn"),
		CloudWatchLogsRoleArn:      cloudformation.GetAttPtr("TrailLogsRole", "Arn"),
		AWSCloudFormationCondition: condTrail,
		AWSCloudFormationDependsOn: []string{"TrailBucketPolicy"},
	}
}

// Member returns the template for every other account: the role the
// central stack's handlers assume there, with the IAM and Secrets Manager
// actions of rotation, inventory and quarantine, on users and their
// secrets only.
func Member() ([]byte, error) {
	t := cloudformation.NewTemplate()
	t.Description = "keyflow: the role the central keyflow stack assumes in this account (member account)"
	central := param("String", "Account id of the central keyflow stack.", nil)
	central.AllowedPattern = cloudformation.String(`^\d{12}$`)
	central.Default = nil
	t.Parameters = cloudformation.Parameters{
		"CentralAccountId": central,
		paramMemberRole:    param("String", "Name of this role; the central stack's MemberRoleName.", MemberRoleName),
		paramMFAPolicyName: policyNameParam("Name of this account's MFA-required policy; the central stack's MemberMFAPolicyName."),
	}
	by := map[string][]string{}
	for _, a := range memberActions() {
		by[service(a)] = append(by[service(a)], a)
	}
	assume := statement{
		Effect:    "Allow",
		Principal: map[string]any{"AWS": sub("arn:${AWS::Partition}:iam::${CentralAccountId}:root")},
		Action:    []string{"sts:AssumeRole"},
		// Only the central stack's roles (all under /keyflow/), not
		// every principal of the central account.
		Condition: map[string]any{"ArnLike": map[string]any{
			"aws:PrincipalArn": sub("arn:${AWS::Partition}:iam::${CentralAccountId}:role" + rolePath + "*"),
		}},
	}
	t.Resources["MemberRole"] = &iam.Role{
		RoleName:                 cloudformation.RefPtr(paramMemberRole),
		Description:              cloudformation.String("keyflow: assumed by the central keyflow stack to rotate keys and quarantine users"),
		AssumeRolePolicyDocument: document(assume),
		MaxSessionDuration:       cloudformation.Int(3600),
		Policies: []iam.Role_Policy{{PolicyName: "keyflow", PolicyDocument: document(
			append(iamStatements(by["iam"], memberMFAPolicyArn), allow("UserSecrets", by["secretsmanager"], userSecrets))...,
		)}},
	}
	// The MFA workflow attaches this account's copy of the policy, which
	// it finds by this name.
	mfa, err := mfaPolicy(cloudformation.RefPtr(paramMFAPolicyName), nil)
	if err != nil {
		return nil, err
	}
	t.Resources["MFARequiredPolicy"] = mfa
	t.Outputs = cloudformation.Outputs{"MemberRoleArn": cloudformation.Output{Value: cloudformation.GetAtt("MemberRole", "Arn")}}
	doc, err := render(t)
	if err != nil {
		return nil, err
	}
	return marshal(doc)
}

// render turns the template into a JSON object. goformation encodes an
// intrinsic in a string field as base64 text; the processor decodes those,
// and the identity handlers keep every intrinsic as written instead of
// resolving it (which is what goformation's own Template.JSON does to a Ref
// of a parameter).
func render(t *cloudformation.Template) (map[string]any, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("cfn: %w", err)
	}
	keep := map[string]intrinsics.IntrinsicHandler{}
	for _, name := range []string{"Fn::Base64", "Fn::And", "Fn::Equals", "Fn::If", "Fn::Not", "Fn::Or", "Fn::FindInMap",
		"Fn::GetAtt", "Fn::GetAZs", "Fn::ImportValue", "Fn::Join", "Fn::Select", "Fn::Split", "Fn::Sub", "Ref", "Fn::Cidr", "Fn::Transform"} {
		keep[name] = func(name string, input, _ any) any { return map[string]any{name: input} }
	}
	processed, err := intrinsics.ProcessJSON(raw, &intrinsics.ProcessorOptions{IntrinsicHandlerOverrides: keep})
	if err != nil {
		return nil, fmt.Errorf("cfn: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(processed, &doc); err != nil {
		return nil, fmt.Errorf("cfn: %w", err)
	}
	return doc, nil
}

func marshal(doc map[string]any) ([]byte, error) {
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cfn: %w", err)
	}
	return append(out, '\n'), nil
}

// mfaStateMachine is the MFA workflow's state machine, whose running
// executions the hygiene inventory lists.
var mfaStateMachine = logicalOf(statemachines.NameMFA) + "StateMachine"

// memberMFAPolicyArn is the member stack's MFA-required policy, by the name
// the central stack's handlers look for.
var memberMFAPolicyArn = sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${" + paramMFAPolicyName + "}")
