package cfn

import (
	"slices"
	"strings"
)

// Intrinsic functions as JSON objects, for the fields goformation types as
// interface{} (policy documents, definitions' substitutions, event
// patterns). Fields it types as string take goformation's own encoded
// helpers; render turns both into the same JSON.
func ref(name string) map[string]any { return map[string]any{"Ref": name} }
func sub(s string) map[string]any    { return map[string]any{"Fn::Sub": s} }
func getAtt(resource, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{resource, attr}}
}
func ifCond(cond string, yes, no any) map[string]any {
	return map[string]any{"Fn::If": []any{cond, yes, no}}
}

var noValue = ref("AWS::NoValue")

// statement is one IAM policy statement. Action is always a list of exact
// action names: a wildcard action is what this package exists to avoid.
type statement struct {
	Sid       string         `json:"Sid,omitempty"`
	Effect    string         `json:"Effect"`
	Principal any            `json:"Principal,omitempty"`
	Action    []string       `json:"Action"`
	Resource  any            `json:"Resource,omitempty"`
	Condition map[string]any `json:"Condition,omitempty"`
}

func allow(sid string, actions []string, resources ...any) statement {
	var r any = resources
	if len(resources) == 1 {
		r = resources[0]
	}
	return statement{Sid: sid, Effect: "Allow", Action: sortedCopy(actions), Resource: r}
}

func document(statements ...any) map[string]any {
	return map[string]any{"Version": "2012-10-17", "Statement": statements}
}

// trust lets one AWS service assume a role, only on behalf of this account
// (the confused-deputy guard AWS recommends for service roles).
func trust(service string) map[string]any {
	return document(statement{
		Effect:    "Allow",
		Principal: map[string]any{"Service": service},
		Action:    []string{"sts:AssumeRole"},
		Condition: map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": ref("AWS::AccountId")}},
	})
}

func service(action string) string {
	s, _, _ := strings.Cut(action, ":")
	return s
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

// Resource patterns the handlers' actions are scoped to.
var (
	// usersInAccount: every IAM action of a handler acts on (or lists) IAM
	// users, and only users: iam:CreateAccessKey on a role is impossible
	// with this resource.
	usersInAccount = sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*")
	// userSecrets are the secrets tasks.DefaultSecretName names
	// (Account_<id>_User_<name>_AccessKey); the trailing "*" covers both the
	// name a DescribeSecret asks for before the secret exists and the ARN's
	// random suffix after.
	userSecrets = sub("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:Account_*_User_*_AccessKey*")
	// keyflowExecutions are the executions of keyflow's own state machines,
	// whose histories the audit reads.
	keyflowExecutions = sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:keyflow-*:*")
	// The SES identities Notify may send from and its template.
	sesSenderIdentity = sub("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${EmailSender}")
	sesSenderDomain   = map[string]any{"Fn::Join": []any{"", []any{
		sub("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"),
		map[string]any{"Fn::Select": []any{1, map[string]any{"Fn::Split": []any{"@", ref("EmailSender")}}}},
	}}}
	sesTemplate = sub("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:template/" + NotifyEmailTemplateName)
	// auditObjects are the audit records and the chain's head.
	auditObjects = sub("${AuditBucket.Arn}/audit/*")
	// memberRoles is the member role in any account: which accounts the
	// inventory reaches is the Organization's business, and the member
	// role's trust policy admits only this account's keyflow roles.
	memberRoles = sub("arn:${AWS::Partition}:iam::*:role/${MemberRoleName}")
)

// handlerStatements groups a handler's actions by the resource they are
// scoped to; useKey adds the stack's KMS key for the secrets.
func handlerStatements(h Handler, useKey bool) []any {
	by := map[string][]string{}
	for _, a := range h.Actions {
		by[service(a)] = append(by[service(a)], a)
	}
	var out []any
	// The central roles act in this account with their own rights (the
	// member role's govern the others), so this stack's MFA policy is the
	// only one they may attach.
	out = append(out, iamStatements(by["iam"], ref("MFARequiredPolicy"))...)
	if a := by["secretsmanager"]; len(a) > 0 {
		out = append(out, allow("UserSecrets", a, userSecrets))
	}
	if len(by["secretsmanager"]) > 0 && useKey {
		// Secrets Manager encrypts with the stack's key on the caller's
		// behalf: CreateSecret and PutSecretValue need GenerateDataKey,
		// and Decrypt to check the data key, on that key only.
		out = append(out, allow("SecretsKey", []string{"kms:Decrypt", "kms:GenerateDataKey"}, getAtt("SecretsKey", "Arn")))
	}
	if a := by["sns"]; len(a) > 0 {
		out = append(out, allow("Topic", a, ref("Topic")))
	}
	if a := by["ses"]; len(a) > 0 {
		// Only when email is on: the sender's identity (the address, or
		// the domain it is verified through) and the stack's template.
		out = append(out, ifCond(condSESEmail, allow("Email", a, sesSenderIdentity, sesSenderDomain, sesTemplate), noValue))
	}
	if a := by["organizations"]; len(a) > 0 {
		// The Organizations list calls take no resource of this
		// account's: IAM authorizes them against "*".
		out = append(out, allow("Organization", a, "*"))
	}
	// ListExecutions is authorized against the state machine, the others
	// against executions.
	if a := slices.DeleteFunc(slices.Clone(by["states"]), func(a string) bool { return a == "states:ListExecutions" }); len(a) > 0 {
		out = append(out, allow("KeyflowExecutions", a, keyflowExecutions))
	}
	if slices.Contains(by["states"], "states:ListExecutions") {
		// Only the hygiene inventory lists, and only the MFA workflow's.
		out = append(out, allow("MFAExecutions", []string{"states:ListExecutions"}, ref(mfaStateMachine)))
	}
	if a := by["s3"]; len(a) > 0 {
		out = append(out, allow("AuditRecords", a, auditObjects))
	}
	if a := by["sts"]; len(a) > 0 {
		out = append(out, allow("MemberRole", a, memberRoles))
	}
	// The Lambda runtime writes the function's logs to the log group the
	// template creates; it never creates its own.
	out = append(out, allow("Logs", []string{"logs:CreateLogStream", "logs:PutLogEvents"}, getAtt(h.Logical+"LogGroup", "Arn")))
	return out
}
