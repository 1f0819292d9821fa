// Package statemachines holds keyflow's workflows, written in Go with the
// states builder: the key lifecycle, the inventory that fans out to it, the
// quarantine with a manual approval, and the release that undoes it. Each
// workflow is a function of Options returning a validated
// *states.Definition, so the same definition is emitted into the
// CloudFormation template (cfn) and run on the local engine (cmd/keyflow).
//
// The only thing that differs between AWS and a laptop is what a Task's
// Resource names: on AWS the template fills "${CreateKeyFunctionArn}" and
// friends through DefinitionSubstitutions (Substitutions), locally they are
// Lambda ARNs of functions registered with the engine under the names in
// FunctionNames (Local).
//
// The input and output JSON of every Task is exactly that of the tasks
// package's handlers; the tests run every workflow on the engine with the
// real handlers to keep it so.
//
// This package imports only states (and the standard library): never the
// engine, tasks, sandbox or anything under cmd, so that cfn can import it
// without pulling in a runtime.
package statemachines

import (
	"fmt"
	"time"

	"github.com/keyflow/keyflow/states"
)

// Names of the workflows, as `keyflow start NAME` and `keyflow graph NAME`
// take them.
const (
	NameLifecycle  = "lifecycle"
	NameInventory  = "inventory"
	NameQuarantine = "quarantine"
	NameRelease    = "release"
	// NameHygiene finds console users without MFA (and reports the
	// password policy) and starts one NameMFA execution per user.
	NameHygiene = "hygiene"
	NameMFA     = "mfa"
)

// Names returns the workflows' names in a stable order.
func Names() []string {
	return []string{NameLifecycle, NameInventory, NameQuarantine, NameRelease, NameMFA, NameHygiene}
}

// StateMachineName is the state machine's name for a workflow, both in the
// template and on the local engine ("keyflow-lifecycle").
func StateMachineName(workflow string) string { return "keyflow-" + workflow }

// Build returns the named workflow's definition.
func Build(workflow string, o Options) (*states.Definition, error) {
	switch workflow {
	case NameLifecycle:
		return Lifecycle(o)
	case NameInventory:
		return Inventory(o)
	case NameQuarantine:
		return Quarantine(o)
	case NameRelease:
		return Release(o)
	case NameMFA:
		return MFA(o)
	case NameHygiene:
		return Hygiene(o)
	}
	return nil, fmt.Errorf("statemachines: no workflow %q (want one of %v)", workflow, Names())
}

// Resources names what the Tasks call: one Lambda function per handler
// (anything a Task's Resource accepts: a function ARN, or a
// "${...}" placeholder that DefinitionSubstitutions fills) and the lifecycle
// state machine that the inventory starts.
type Resources struct {
	Inventory, CreateKey, DeactivateKey, DeleteKey, Notify, Quarantine, Release string
	// The account hygiene handlers: the MFA and password-policy inventory,
	// the MFA check and the policy's attach/detach.
	Hygiene, CheckMFA, EnforceMFA, SetPasswordPolicy string
	// LifecycleStateMachine is the ARN (or placeholder) of the lifecycle
	// state machine; the local engine also finds a machine by its name.
	LifecycleStateMachine string
	// MFAStateMachine is the per-user MFA workflow that hygiene starts.
	MFAStateMachine string
}

// Keys of DefinitionSubstitutions that Substitutions uses: the template
// maps each to the function's (or the lifecycle machine's) ARN.
const (
	SubInventoryFunction      = "InventoryFunctionArn"
	SubCreateKeyFunction      = "CreateKeyFunctionArn"
	SubDeactivateKeyFunction  = "DeactivateKeyFunctionArn"
	SubDeleteKeyFunction      = "DeleteKeyFunctionArn"
	SubNotifyFunction         = "NotifyFunctionArn"
	SubQuarantineFunction     = "QuarantineFunctionArn"
	SubReleaseFunction        = "ReleaseFunctionArn"
	SubLifecycleStateMachine  = "LifecycleStateMachineArn"
	SubHygieneFunction        = "HygieneFunctionArn"
	SubCheckMFAFunction       = "CheckMFAFunctionArn"
	SubEnforceMFAFunction     = "EnforceMFAFunctionArn"
	SubSetPasswordPolicy      = "SetPasswordPolicyFunctionArn"
	SubMFAStateMachine        = "MFAStateMachineArn"
	substitutionPlaceholderFm = "${%s}"
)

// SubstitutionKeys lists every DefinitionSubstitutions key a definition
// built with Substitutions may use.
func SubstitutionKeys() []string {
	return []string{SubInventoryFunction, SubCreateKeyFunction, SubDeactivateKeyFunction, SubDeleteKeyFunction,
		SubNotifyFunction, SubQuarantineFunction, SubReleaseFunction, SubLifecycleStateMachine,
		SubHygieneFunction, SubCheckMFAFunction, SubEnforceMFAFunction, SubSetPasswordPolicy, SubMFAStateMachine}
}

// Substitutions are the resources as DefinitionSubstitutions placeholders:
// the template's view, and the default when Options.Resources is zero.
func Substitutions() Resources {
	p := func(k string) string { return fmt.Sprintf(substitutionPlaceholderFm, k) }
	return Resources{
		Inventory: p(SubInventoryFunction), CreateKey: p(SubCreateKeyFunction),
		DeactivateKey: p(SubDeactivateKeyFunction), DeleteKey: p(SubDeleteKeyFunction),
		Notify: p(SubNotifyFunction), Quarantine: p(SubQuarantineFunction), Release: p(SubReleaseFunction),
		LifecycleStateMachine: p(SubLifecycleStateMachine),
		Hygiene:               p(SubHygieneFunction), CheckMFA: p(SubCheckMFAFunction), EnforceMFA: p(SubEnforceMFAFunction),
		SetPasswordPolicy: p(SubSetPasswordPolicy), MFAStateMachine: p(SubMFAStateMachine),
	}
}

// FunctionNames are the handlers' Lambda function names on the local engine
// (and the suffix of their names in the template).
var FunctionNames = Resources{
	Inventory: "keyflow-inventory", CreateKey: "keyflow-create-key", DeactivateKey: "keyflow-deactivate-key",
	DeleteKey: "keyflow-delete-key", Notify: "keyflow-notify", Quarantine: "keyflow-quarantine", Release: "keyflow-release",
	LifecycleStateMachine: StateMachineName(NameLifecycle),
	Hygiene:               "keyflow-hygiene", CheckMFA: "keyflow-check-mfa", EnforceMFA: "keyflow-enforce-mfa",
	SetPasswordPolicy: "keyflow-set-password-policy", MFAStateMachine: StateMachineName(NameMFA),
}

// Local are the resources as full ARNs in region and account, for the local
// engine: it serves a Lambda ARN with the handler registered under the
// function's name, and starts the lifecycle machine compiled under
// StateMachineName(NameLifecycle). Full ARNs rather than bare names keep the
// local definition one that AWS would accept as written.
func Local(region, accountID string) Resources {
	fn := func(name string) string {
		return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, accountID, name)
	}
	n := FunctionNames
	return Resources{
		Inventory: fn(n.Inventory), CreateKey: fn(n.CreateKey), DeactivateKey: fn(n.DeactivateKey),
		DeleteKey: fn(n.DeleteKey), Notify: fn(n.Notify), Quarantine: fn(n.Quarantine), Release: fn(n.Release),
		LifecycleStateMachine: fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", region, accountID, n.LifecycleStateMachine),
		Hygiene:               fn(n.Hygiene), CheckMFA: fn(n.CheckMFA), EnforceMFA: fn(n.EnforceMFA), SetPasswordPolicy: fn(n.SetPasswordPolicy),
		MFAStateMachine: fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", region, accountID, n.MFAStateMachine),
	}
}

// Decision is an approver's answer, or the policy applied on timeout.
type Decision string

// Decisions.
const (
	Approve Decision = "approve"
	Reject  Decision = "reject"
)

// Options are the workflows' parameters. The zero value is the documented
// default policy with Substitutions resources.
type Options struct {
	// Resources names the functions and the lifecycle machine; zero means
	// Substitutions().
	Resources Resources

	// RotationDays (45), InactiveDays (60) and BufferDays (90) are days from
	// a key's creation: when it is due, deactivated and deleted. The
	// inventory passes them to its handler, which computes each key's
	// deactivateAt and deleteAt for the lifecycle's Waits. An execution's
	// input may override them.
	RotationDays, InactiveDays, BufferDays int
	// MaxDuePerAccount (400) caps the due keys one page of an account's
	// inventory returns, which keeps its output under the 256 KiB payload
	// quota; the account's child pages on until every due key is started.
	MaxDuePerAccount int
	// AccountConcurrency (10) is how many accounts the inventory's
	// distributed Map handles at once; StartConcurrency (10) how many
	// lifecycle executions one account starts at once.
	AccountConcurrency, StartConcurrency int

	// StillInUseWait (7 days) is how long the lifecycle waits again when the
	// old key is still in use at the inactive point, at most
	// StillInUseChecks (3) times; then it escalates: the security team is
	// told and the execution fails with the old key still Active, unless
	// ForceDeactivate says the key goes anyway.
	StillInUseWait   time.Duration
	StillInUseChecks int
	ForceDeactivate  bool

	// AdminsGroup ("admins"): IAM calls by its members start no quarantine.
	AdminsGroup string
	// SecretsKMSKeyID, when set, is the customer-managed KMS key (id, ARN or
	// alias) that CreateKey encrypts a user's new secret with; empty leaves
	// Secrets Manager's aws/secretsmanager key.
	SecretsKMSKeyID string
	// ApprovalTimeout (24h) is how long a quarantine or release waits for an
	// approver; ApprovalHeartbeat (ApprovalTimeout minus one minute) how long
	// it waits between heartbeats (`keyflow approve --ack` keeps a request
	// alive while someone looks at it). Either expiring applies
	// DefaultDecision (Reject for quarantine: keyflow never locks a user
	// out on nobody's word unless told to).
	ApprovalTimeout, ApprovalHeartbeat time.Duration
	DefaultDecision                    Decision
	// KeepKeysActive quarantines with the deny policy only, leaving the
	// user's access keys Active (by default they are deactivated too).
	KeepKeysActive bool

	// MFAGracePeriod (7 days) is the default time a console user without
	// MFA has to enrol; the hygiene input's graceDays overrides it. Whole
	// days: the handler computes each user's deadline in days.
	MFAGracePeriod time.Duration

	// DryRun makes every handler report what it would do and change nothing;
	// a dry-run inventory starts no lifecycle (it would use up the
	// executions' names).
	DryRun bool
}

// withDefaults fills the zero fields.
func (o Options) withDefaults() (Options, error) {
	if o.Resources == (Resources{}) {
		o.Resources = Substitutions()
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.RotationDays, 45)
	def(&o.InactiveDays, 60)
	def(&o.BufferDays, 90)
	def(&o.MaxDuePerAccount, 400)
	def(&o.AccountConcurrency, 10)
	def(&o.StartConcurrency, 10)
	def(&o.StillInUseChecks, 3)
	if o.StillInUseWait == 0 {
		o.StillInUseWait = 7 * 24 * time.Hour
	}
	if o.MFAGracePeriod == 0 {
		o.MFAGracePeriod = 7 * 24 * time.Hour
	}
	if o.AdminsGroup == "" {
		o.AdminsGroup = "admins"
	}
	if o.ApprovalTimeout == 0 {
		o.ApprovalTimeout = 24 * time.Hour
	}
	if o.ApprovalHeartbeat == 0 {
		o.ApprovalHeartbeat = o.ApprovalTimeout - time.Minute
	}
	if o.DefaultDecision == "" {
		o.DefaultDecision = Reject
	}
	switch {
	case o.RotationDays < 0 || o.InactiveDays < 0 || o.BufferDays < 0:
		return o, fmt.Errorf("statemachines: periods must not be negative")
	case !(o.RotationDays <= o.InactiveDays && o.InactiveDays < o.BufferDays):
		return o, fmt.Errorf("statemachines: want rotation (%d) <= inactive (%d) < buffer (%d) days", o.RotationDays, o.InactiveDays, o.BufferDays)
	case o.DefaultDecision != Approve && o.DefaultDecision != Reject:
		return o, fmt.Errorf("statemachines: default decision %q: want %q or %q", o.DefaultDecision, Approve, Reject)
	case o.ApprovalTimeout < 2*time.Second || o.ApprovalHeartbeat < time.Second || o.ApprovalHeartbeat >= o.ApprovalTimeout:
		return o, fmt.Errorf("statemachines: want 1s <= approval heartbeat (%s) < approval timeout (%s)", o.ApprovalHeartbeat, o.ApprovalTimeout)
	case o.MFAGracePeriod < 24*time.Hour || o.MFAGracePeriod%(24*time.Hour) != 0:
		return o, fmt.Errorf("statemachines: MFA grace period %s: want whole days, at least one", o.MFAGracePeriod)
	case o.StillInUseWait < time.Second || o.StillInUseChecks < 0:
		return o, fmt.Errorf("statemachines: still-in-use wait %s and checks %d", o.StillInUseWait, o.StillInUseChecks)
	}
	return o, nil
}

// throttled retries a handler's Throttled error (the SDK's throttling,
// surfaced by name) and Lambda's own transient failures, with jittered
// exponential back-off capped at a minute, as AWS recommends.
func throttled() []states.Retrier {
	return []states.Retrier{
		{
			ErrorEquals:     []string{"Throttled"},
			IntervalSeconds: states.Int(2), MaxAttempts: states.Int(6), BackoffRate: states.Float(2),
			MaxDelaySeconds: states.Int(60), JitterStrategy: "FULL",
		},
		{
			ErrorEquals:     []string{"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"},
			IntervalSeconds: states.Int(2), MaxAttempts: states.Int(3), BackoffRate: states.Float(2),
			MaxDelaySeconds: states.Int(60), JitterStrategy: "FULL",
		},
	}
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }
