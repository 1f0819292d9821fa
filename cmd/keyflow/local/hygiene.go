package local

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/policy"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

// MFAPolicyArn is the MFA-required policy the local handlers attach in the
// home account. On AWS CloudFormation names the central stack's copy; the
// sandbox has no stack, so it uses the member name there too, and every
// account's copy is the one ensureMFAPolicy creates.
func (b *Backend) MFAPolicyArn() string {
	return fmt.Sprintf("arn:aws:iam::%s:policy/%s", b.opts.AccountID, policy.MFARequiredName)
}

// hygieneHandlers adds the account hygiene handlers (the MFA workflow and
// the password policy) to hs.
func (b *Backend) hygieneHandlers(hs map[string]engine.Handler) {
	o := b.opts
	n := statemachines.FunctionNames
	arn := b.MFAPolicyArn()
	hs[n.Hygiene] = wrap(b, func(now func() time.Time) handle[tasks.HygieneInput, tasks.HygieneOutput] {
		var executions tasks.ExecutionsAPI = b.running
		if o.Executions != nil {
			executions = o.Executions
		}
		return (&tasks.Hygiene{Accounts: o.Accounts, Now: now, Log: b.log, PolicyArn: arn,
			Executions: executions, MFAStateMachineArn: o.Workflows.Resources.MFAStateMachine}).Handle
	})
	hs[n.CheckMFA] = wrap(b, func(now func() time.Time) handle[tasks.CheckMFAInput, tasks.MFAState] {
		return (&tasks.CheckMFA{Accounts: o.Accounts, Now: now, Log: b.log, PolicyArn: arn}).Handle
	})
	hs[n.EnforceMFA] = wrap(b, func(now func() time.Time) handle[tasks.EnforceMFAInput, tasks.EnforceMFAOutput] {
		h := &tasks.EnforceMFA{Accounts: o.Accounts, Now: now, Log: b.log, PolicyArn: arn}
		return func(ctx context.Context, in tasks.EnforceMFAInput) (*tasks.EnforceMFAOutput, error) {
			if o.Sandbox != nil && in.Action == "attach" {
				// On AWS the member stack creates the policy in every
				// account; in the sandbox it appears when first needed.
				if err := ensureMFAPolicy(ctx, o.Sandbox.IAM(in.AccountID)); err != nil {
					return nil, err
				}
			}
			return h.Handle(ctx, in)
		}
	})
	hs[n.SetPasswordPolicy] = wrap(b, func(now func() time.Time) handle[tasks.SetPasswordPolicyInput, tasks.SetPasswordPolicyOutput] {
		return (&tasks.SetPasswordPolicy{Accounts: o.Accounts, Now: now, Log: b.log}).Handle
	})
}

type policyCreator interface {
	CreatePolicy(ctx context.Context, in *iam.CreatePolicyInput, optFns ...func(*iam.Options)) (*iam.CreatePolicyOutput, error)
}

// ensureMFAPolicy creates the MFA-required policy, from the same document
// the template ships, unless the account has it.
func ensureMFAPolicy(ctx context.Context, c policyCreator) error {
	doc, err := policy.MFARequired("").JSON()
	if err != nil {
		return err
	}
	_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{
		PolicyName: aws.String(policy.MFARequiredName), PolicyDocument: aws.String(string(doc)),
		Description: aws.String("keyflow: deny everything but MFA enrolment to a user without an MFA session"),
	})
	var exists *iamtypes.EntityAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("local: creating the MFA-required policy: %w", err)
	}
	return nil
}
