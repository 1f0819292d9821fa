// Command lambda is keyflow's Lambda bootstrap (runtime provided.al2023):
// one binary for every task handler, chosen by KEYFLOW_HANDLER, so the
// template deploys one artifact. It only wires real SDK clients to the
// handlers in package tasks; all behaviour lives there.
//
// The SDK configuration comes from config.LoadDefaultConfig, which honours
// AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>), so the same binary runs
// against any AWS-compatible endpoint.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyflow/keyflow/tasks"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "lambda: loading AWS config:", err)
		os.Exit(1)
	}
	h, err := handler(os.Getenv("KEYFLOW_HANDLER"), tasks.NewAWSAccounts(cfg, os.Getenv("KEYFLOW_MEMBER_ROLE")), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lambda:", err)
		os.Exit(1)
	}
	lambda.Start(h)
}

// handler returns the Handle method named by name. Lambda's clock is the
// real one; only the local engine passes a virtual clock.
func handler(name string, accounts tasks.Accounts, env func(string) string) (any, error) {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	now := func() time.Time { return time.Now().UTC() }
	switch name {
	case "inventory":
		return (&tasks.Inventory{Accounts: accounts, Now: now, Log: log}).Handle, nil
	case "create-key":
		return (&tasks.CreateKey{Accounts: accounts, Now: now, Log: log}).Handle, nil
	case "deactivate-key":
		return (&tasks.DeactivateKey{Accounts: accounts, Now: now, Log: log}).Handle, nil
	case "delete-key":
		return (&tasks.DeleteKey{Accounts: accounts, Now: now, Log: log}).Handle, nil
	case "notify":
		h := &tasks.Notify{Accounts: accounts, Now: now, Log: log,
			TopicArn: env("KEYFLOW_TOPIC_ARN"), SecurityTeam: env("KEYFLOW_SECURITY_TEAM"), OwnerTag: env("KEYFLOW_OWNER_TAG")}
		// Email is on when the stack names a sender (an SES identity of
		// the deployment's account) and a template; it is sent from the
		// deployment's own account.
		if from, tpl := env("KEYFLOW_EMAIL_FROM"), env("KEYFLOW_EMAIL_TEMPLATE"); from != "" {
			if tpl == "" {
				return nil, fmt.Errorf("KEYFLOW_EMAIL_FROM=%q needs KEYFLOW_EMAIL_TEMPLATE", from)
			}
			var cfg aws.Config
			if a, ok := accounts.(*tasks.AWSAccounts); ok {
				cfg = a.Config
			}
			h.SES, h.EmailFrom, h.EmailTemplate = sesv2.NewFromConfig(cfg), from, tpl
		}
		return h.Handle, nil
	case "quarantine":
		return (&tasks.Quarantine{Accounts: accounts, Now: now, Log: log, AdminsGroup: env("KEYFLOW_ADMINS_GROUP")}).Handle, nil
	case "release":
		return (&tasks.Release{Accounts: accounts, Now: now, Log: log}).Handle, nil
	case "hygiene":
		// The MFA executions run in the deployment's own account: its
		// configuration, no member role.
		var cfg aws.Config
		if a, ok := accounts.(*tasks.AWSAccounts); ok {
			cfg = a.Config
		}
		return (&tasks.Hygiene{Accounts: accounts, Now: now, Log: log, PolicyArn: env("KEYFLOW_MFA_POLICY_ARN"), MemberPolicyName: env("KEYFLOW_MFA_MEMBER_POLICY_NAME"),
			Executions: sfn.NewFromConfig(cfg), MFAStateMachineArn: env("KEYFLOW_MFA_STATE_MACHINE_ARN")}).Handle, nil
	case "check-mfa":
		return (&tasks.CheckMFA{Accounts: accounts, Now: now, Log: log, PolicyArn: env("KEYFLOW_MFA_POLICY_ARN"), MemberPolicyName: env("KEYFLOW_MFA_MEMBER_POLICY_NAME")}).Handle, nil
	case "enforce-mfa":
		return (&tasks.EnforceMFA{Accounts: accounts, Now: now, Log: log, PolicyArn: env("KEYFLOW_MFA_POLICY_ARN"), MemberPolicyName: env("KEYFLOW_MFA_MEMBER_POLICY_NAME")}).Handle, nil
	case "set-password-policy":
		return (&tasks.SetPasswordPolicy{Accounts: accounts, Now: now, Log: log}).Handle, nil
	case "audit-record":
		// Histories and records live in the deployment's own account:
		// its configuration, no member role.
		var cfg aws.Config
		if a, ok := accounts.(*tasks.AWSAccounts); ok {
			cfg = a.Config
		}
		bucket := env("KEYFLOW_AUDIT_BUCKET")
		if bucket == "" {
			return nil, fmt.Errorf("KEYFLOW_HANDLER=audit-record needs KEYFLOW_AUDIT_BUCKET")
		}
		return (&tasks.AuditRecord{SFN: sfn.NewFromConfig(cfg), Log: log,
			Store: &tasks.S3RecordStore{S3: s3.NewFromConfig(cfg), Bucket: bucket}}).Handle, nil
	}
	return nil, fmt.Errorf("KEYFLOW_HANDLER=%q: want one of inventory, create-key, deactivate-key, delete-key, notify, quarantine, release, hygiene, check-mfa, enforce-mfa, set-password-policy, audit-record", name)
}
