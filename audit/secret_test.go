package audit_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/keyflow/keyflow/audit"
)

func TestLooksLikeSecret(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want bool
	}{
		{"aws example key", exampleSecret, true},
		{"in json", `{"SecretAccessKey":"` + exampleSecret + `"}`, true},
		{"in a sentence", "key: " + exampleSecret + ".", true},
		{"without slash", "je7MtGbClwBF2Zp9Utk7h3yCo8nvbEXAMPLEKEYa", true},
		{"escaped in json", `{"s":"wJalrXUtnFEMI\/K7MDENG\/bPxRfiCYEXAMPLEKEY"}`, false}, // raw text: the audit decodes JSON first (TestSecretEscapedInHistory)

		{"empty", "", false},
		{"access key id", "AKIAIOSFODNN7EXAMPLE", false},
		{"41 characters", exampleSecret + "A", false},
		{"39 characters", exampleSecret[:39], false},
		{"with padding", exampleSecret[:39] + "=", false},
		{"sha1 hex", "da39a3ee5e6b4b0d3255bfef95601890afd80709", false},
		{"sha1 hex upper", "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", false},
		{"sha256 base64", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", false},
		{"md5 execution name", "111122223333-AKIAOLDKEY0000000001-0cc175b9c0f1b6a831c399e269772661", false},
		{"role arn", "arn:aws:iam::111122223333:role/KeyflowMemberAccountRoleForAuditTeam", false},
		{"secret arn", secretArn, false},
		{"execution arn", "arn:aws:states:us-east-1:123456789012:execution:keyflow-lifecycle:111122223333-AKIAOLDKEY0000000001-0cc175b9", false},
		{"task token", "KF1" + strings.Repeat("0a1b2c3d4e5f", 8), false},
		{"aws task token", "AQCEAAAAKgAAAAMAAAAAAAAAAf2zMxXY5DwLZO/oPqLOvuZpFGDw3y3Ta5c3mUhqfJI+ZnmPfgMkLnJ4Rr1rBvlcG98XF1J4Odn", false},
		{"base64 of an id", base64.StdEncoding.EncodeToString([]byte("AKIAOLDKEY0000000001/alice/11112222")), false},
		{"base64 of a name", base64.StdEncoding.EncodeToString([]byte("Account_111122223333_User_alice_Key")), false},
		{"camel case words", "ArnAwsIamRoleKeyflowMemberAccountRoleXyz", false},
		{"uuid", "8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := audit.LooksLikeSecret(c.in); got != c.want {
				t.Errorf("LooksLikeSecret(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	in := "old " + exampleSecret + " and " + exampleSecret + "; id AKIAIOSFODNN7EXAMPLE"
	want := "old [REDACTED] and [REDACTED]; id AKIAIOSFODNN7EXAMPLE"
	if got := audit.Redact(in); got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if got := audit.Redact(secretArn); got != secretArn {
		t.Errorf("Redact changed an ARN: %q", got)
	}
}

// TestSecretEverywhere: a secret is found in any field of any event (an
// input, an error's cause, a state name) and never copied into the record.
func TestSecretEverywhere(t *testing.T) {
	base := `{"events":[
	 {"id":1,"previousEventId":0,"timestamp":1767258000,"type":"ExecutionStarted","executionStartedEventDetails":{"input":"{\"accountId\":\"111122223333\",\"userName\":\"alice\"}","roleArn":"arn:aws:iam::123456789012:role/x"}},
	 {"id":2,"previousEventId":1,"timestamp":1767258000,"type":"TaskStateEntered","stateEnteredEventDetails":{"name":"%s","input":"{}"}},
	 {"id":3,"previousEventId":2,"timestamp":1767258000,"type":"LambdaFunctionScheduled","lambdaFunctionScheduledEventDetails":{"resource":"arn:aws:lambda:us-east-1:123456789012:function:keyflow-notify","input":"%s"}},
	 {"id":4,"previousEventId":3,"timestamp":1767258000,"type":"LambdaFunctionStarted"},
	 {"id":5,"previousEventId":4,"timestamp":1767258001,"type":"LambdaFunctionFailed","lambdaFunctionFailedEventDetails":{"error":"ServiceError","cause":"%s"}},
	 {"id":6,"previousEventId":5,"timestamp":1767258001,"type":"ExecutionFailed","executionFailedEventDetails":{"error":"States.TaskFailed","cause":"%s"}}]}`
	clean := []any{"Notify", `{\"accountId\":\"111122223333\",\"userName\":\"alice\"}`, "{\\\"errorMessage\\\":\\\"boom\\\"}", "boom"}
	for i, field := range []string{"state name", "input", "task cause", "execution cause"} {
		t.Run(field, func(t *testing.T) {
			args := append([]any(nil), clean...)
			switch i {
			case 0:
				args[0] = "Notify " + exampleSecret
			case 1:
				args[1] = `{\"detail\":\"` + exampleSecret + `\"}`
			case 2:
				args[2] = `{\"errorMessage\":\"secret ` + strings.ReplaceAll(exampleSecret, "/", `\\/`) + `\"}`
			case 3:
				args[3] = "failed with " + exampleSecret
			}
			events, err := audit.DecodeHistory(strings.NewReader(sprintf(base, args...)))
			if err != nil {
				t.Fatal(err)
			}
			rec, err := audit.Build(audit.History{ExecutionArn: "arn:aws:states:us-east-1:123456789012:execution:keyflow-lifecycle:x", Events: events})
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Breaches) != 1 || rec.Breaches[0].Code != audit.CodeSecretInHistory {
				t.Fatalf("breaches %+v, want one %s", rec.Breaches, audit.CodeSecretInHistory)
			}
			b, _ := jsonOf(rec)
			if strings.Contains(b, "EXAMPLEKEY") {
				t.Errorf("the record copies the secret: %s", b)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		events, err := audit.DecodeHistory(strings.NewReader(sprintf(base, clean...)))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := audit.Build(audit.History{Events: events})
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Breaches) != 0 {
			t.Errorf("breaches %+v in a clean history", rec.Breaches)
		}
		if rec.Status != "FAILED" || rec.Error != "States.TaskFailed" || len(rec.Actions) != 1 || rec.Actions[0].Error != "ServiceError" {
			t.Errorf("record %+v", rec)
		}
	})
}
