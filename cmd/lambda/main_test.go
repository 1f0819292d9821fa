package main

import (
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyflow/keyflow/tasks"
)

// Every name the template may put in KEYFLOW_HANDLER must give a handler
// that aws-lambda-go accepts (a bad signature only shows at Start).
func TestHandlerNames(t *testing.T) {
	env := func(k string) string {
		if k == "KEYFLOW_AUDIT_BUCKET" {
			return "keyflow-audit-test"
		}
		return ""
	}
	accounts := tasks.NewAWSAccounts(aws.Config{}, "")
	for _, name := range []string{"inventory", "create-key", "deactivate-key", "delete-key", "notify", "quarantine", "release", "hygiene", "check-mfa", "enforce-mfa", "set-password-policy", "audit-record"} {
		h, err := handler(name, accounts, env)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// An invalid handler answers every payload with a validation
		// error naming the signature; a valid one reaches our input check.
		_, err = lambda.NewHandler(h).Invoke(t.Context(), []byte(`{}`))
		if err == nil {
			t.Fatalf("%s: empty input accepted", name)
		}
		if _, ok := err.(*tasks.InvalidInput); !ok {
			t.Errorf("%s: got %T %v, want *tasks.InvalidInput", name, err, err)
		}
	}
	if _, err := handler("nope", accounts, env); err == nil {
		t.Error("unknown handler accepted")
	}
	if _, err := handler("audit-record", accounts, func(string) string { return "" }); err == nil {
		t.Error("audit-record without KEYFLOW_AUDIT_BUCKET accepted")
	}
	if _, err := handler("notify", accounts, func(k string) string {
		return map[string]string{"KEYFLOW_EMAIL_FROM": "keyflow@example.com"}[k]
	}); err == nil {
		t.Error("notify with a sender and no template accepted")
	}
	h, err := handler("notify", accounts, func(k string) string {
		return map[string]string{"KEYFLOW_EMAIL_FROM": "keyflow@example.com", "KEYFLOW_EMAIL_TEMPLATE": "keyflow-notify"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lambda.NewHandler(h).Invoke(t.Context(), []byte(`{}`)); err == nil {
		t.Error("notify with email: empty input accepted")
	}
}
