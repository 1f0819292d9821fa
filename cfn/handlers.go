package cfn

import (
	"github.com/keyflow/keyflow/statemachines"
)

// Handler is one Lambda function of the template: a task handler of package
// tasks, run by the cmd/lambda bootstrap.
type Handler struct {
	// Name is the bootstrap's KEYFLOW_HANDLER value.
	Name string
	// Logical prefixes the handler's resources' logical ids
	// ("CreateKey" -> CreateKeyFunction, CreateKeyRole, ...).
	Logical string
	// FunctionName is the Lambda function's name, the same as on the local
	// engine, so a definition reads the same in both places.
	FunctionName string
	// Substitution is the DefinitionSubstitutions key that names the
	// function's published version in the definitions.
	Substitution string
	// Actions are the AWS API actions the handler calls, each as IAM
	// names it. The role grants exactly these (plus the Lambda runtime's own
	// logging); TestRolesGrantWhatHandlersCall derives them again from the
	// handler's source and fails when the two differ.
	Actions []string
	// TimeoutSeconds bounds one invocation: the inventory walks a whole
	// Organization, the others touch one user.
	TimeoutSeconds int
	// OneAtATime caps the function at one concurrent invocation: the audit
	// log is a hash chain, and two writers would fork it.
	OneAtATime bool
}

// Actions by what they reach; the resource each is scoped to follows from
// its service (see resourcesFor).
var (
	// sts:AssumeRole is how a handler reaches a member account
	// (tasks.AWSAccounts); sts:GetCallerIdentity, which it also calls,
	// needs no permission, so no role names it.
	assumeMember = "sts:AssumeRole"
)

// Handlers are the template's functions, in the bootstrap's order.
var Handlers = []Handler{
	{
		Name: "inventory", Logical: "Inventory", FunctionName: statemachines.FunctionNames.Inventory,
		Substitution: statemachines.SubInventoryFunction, TimeoutSeconds: 900,
		Actions: []string{
			"iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:ListGroupsForUser", "iam:ListUserTags", "iam:ListUsers",
			"organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent", "organizations:ListRoots",
			assumeMember,
		},
	},
	{
		Name: "create-key", Logical: "CreateKey", FunctionName: statemachines.FunctionNames.CreateKey,
		Substitution: statemachines.SubCreateKeyFunction, TimeoutSeconds: 60,
		Actions: []string{
			"iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:GetUser", "iam:ListAccessKeys", "iam:ListUserTags", "iam:TagUser", "iam:UntagUser",
			"secretsmanager:CreateSecret", "secretsmanager:DescribeSecret", "secretsmanager:PutResourcePolicy", "secretsmanager:PutSecretValue",
			assumeMember,
		},
	},
	{
		Name: "deactivate-key", Logical: "DeactivateKey", FunctionName: statemachines.FunctionNames.DeactivateKey,
		Substitution: statemachines.SubDeactivateKeyFunction, TimeoutSeconds: 60,
		Actions: []string{"iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey", assumeMember},
	},
	{
		Name: "delete-key", Logical: "DeleteKey", FunctionName: statemachines.FunctionNames.DeleteKey,
		Substitution: statemachines.SubDeleteKeyFunction, TimeoutSeconds: 60,
		Actions: []string{"iam:DeleteAccessKey", "iam:ListAccessKeys", assumeMember},
	},
	{
		Name: "notify", Logical: "Notify", FunctionName: statemachines.FunctionNames.Notify,
		Substitution: statemachines.SubNotifyFunction, TimeoutSeconds: 60,
		Actions: []string{"iam:ListUserTags", "ses:SendEmail", "sns:Publish", assumeMember},
	},
	{
		Name: "quarantine", Logical: "Quarantine", FunctionName: statemachines.FunctionNames.Quarantine,
		Substitution: statemachines.SubQuarantineFunction, TimeoutSeconds: 60,
		Actions: []string{
			"iam:GetUser", "iam:ListAccessKeys", "iam:ListAttachedUserPolicies", "iam:ListGroupsForUser", "iam:ListUserPolicies",
			"iam:ListUserTags", "iam:PutUserPolicy", "iam:TagUser", "iam:UpdateAccessKey",
			assumeMember,
		},
	},
	{
		Name: "release", Logical: "Release", FunctionName: statemachines.FunctionNames.Release,
		Substitution: statemachines.SubReleaseFunction, TimeoutSeconds: 60,
		Actions: []string{
			"iam:DeleteUserPolicy", "iam:GetUser", "iam:ListAccessKeys", "iam:ListAttachedUserPolicies", "iam:ListGroupsForUser",
			"iam:ListUserPolicies", "iam:ListUserTags", "iam:UntagUser", "iam:UpdateAccessKey",
			assumeMember,
		},
	},
	{
		Name: "hygiene", Logical: "Hygiene", FunctionName: statemachines.FunctionNames.Hygiene,
		Substitution: statemachines.SubHygieneFunction, TimeoutSeconds: 900,
		Actions: []string{
			"iam:GetAccountPasswordPolicy", "iam:GetLoginProfile", "iam:ListAttachedUserPolicies", "iam:ListGroupsForUser",
			"iam:ListMFADevices", "iam:ListUserTags", "iam:ListUsers",
			"organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent", "organizations:ListRoots",
			// The MFA workflow's running executions: a user in grace
			// is not started again.
			"states:ListExecutions",
			assumeMember,
		},
	},
	{
		Name: "check-mfa", Logical: "CheckMFA", FunctionName: statemachines.FunctionNames.CheckMFA,
		Substitution: statemachines.SubCheckMFAFunction, TimeoutSeconds: 60,
		Actions: []string{"iam:GetLoginProfile", "iam:ListAttachedUserPolicies", "iam:ListMFADevices", assumeMember},
	},
	{
		Name: "enforce-mfa", Logical: "EnforceMFA", FunctionName: statemachines.FunctionNames.EnforceMFA,
		Substitution: statemachines.SubEnforceMFAFunction, TimeoutSeconds: 60,
		Actions: []string{
			"iam:AttachUserPolicy", "iam:DetachUserPolicy", "iam:GetLoginProfile", "iam:ListAttachedUserPolicies", "iam:ListMFADevices",
			assumeMember,
		},
	},
	{
		Name: "set-password-policy", Logical: "SetPasswordPolicy", FunctionName: statemachines.FunctionNames.SetPasswordPolicy,
		Substitution: statemachines.SubSetPasswordPolicy, TimeoutSeconds: 60,
		Actions: []string{"iam:GetAccountPasswordPolicy", "iam:UpdateAccountPasswordPolicy", assumeMember},
	},
	{
		// Not a task of any workflow: the AuditRule invokes it when any
		// keyflow execution ends, so it has no definition substitution.
		Name: "audit-record", Logical: "AuditRecord", FunctionName: "keyflow-audit-record",
		TimeoutSeconds: 120, OneAtATime: true,
		// s3:GetObject also authorizes the HeadObject the handler makes.
		Actions: []string{"states:GetExecutionHistory", "s3:GetObject", "s3:PutObject"},
	},
}

// handlerBySubstitution finds the handler a DefinitionSubstitutions key
// names.
func handlerBySubstitution(key string) (Handler, bool) {
	for _, h := range Handlers {
		if h.Substitution == key {
			return h, true
		}
	}
	return Handler{}, false
}

// memberActions are what the central stack's handlers do inside a member
// account through the member role: every IAM and Secrets Manager action of
// any handler. Organizations and SNS calls stay in the central account.
func memberActions() []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range Handlers {
		for _, a := range h.Actions {
			if seen[a] || a == assumeMember {
				continue
			}
			if service(a) == "iam" || service(a) == "secretsmanager" {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return sortedCopy(out)
}
