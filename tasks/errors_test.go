package tasks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// reportedType runs h the way the Lambda runtime does (lambda.Function, the
// RPC entry point) and returns the error type it would report to Step
// Functions.
func reportedType(t *testing.T, h any, payload string) string {
	t.Helper()
	var resp messages.InvokeResponse
	req := &messages.InvokeRequest{Payload: []byte(payload), Deadline: messages.InvokeRequest_Timestamp{Seconds: time.Now().Add(time.Minute).Unix()}}
	//lint:ignore SA1019 lambda.Function is the only public path through lambdaErrorResponse, the code that names errors for Step Functions.
	if err := lambda.NewFunction(lambda.NewHandler(h)).Invoke(req, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil {
		return ""
	}
	return resp.Error.Type
}

// The Go type name is the Step Functions error name: a rename breaks every
// workflow's Retry and Catch, so each name is pinned here.
func TestErrorNamesAsLambdaReportsThem(t *testing.T) {
	cause := errors.New("cause")
	for want, err := range map[string]error{
		"InvalidInput":       &InvalidInput{},
		"UserNotFound":       &UserNotFound{},
		"KeyNotFound":        &KeyNotFound{},
		"KeyLimitExceeded":   &KeyLimitExceeded{},
		"KeyStillInUse":      &KeyStillInUse{},
		"KeyNotInactive":     &KeyNotInactive{},
		"BufferNotPassed":    &BufferNotPassed{},
		"SecretStoreFailed":  &SecretStoreFailed{Err: cause},
		"NotQuarantinable":   &NotQuarantinable{},
		"SecretDetected":     &SecretDetected{},
		"AccountUnavailable": &AccountUnavailable{Err: cause},
		"Throttled":          &Throttled{Err: cause},
		"ServiceError":       &ServiceError{Err: cause},
	} {
		h := func(context.Context, struct{}) (*struct{}, error) { return nil, err }
		if got := reportedType(t, h, `{}`); got != want {
			t.Errorf("reported %q, want %q", got, want)
		}
		// lambda.NewHandler(h).Invoke hands back the error itself, typed.
		_, got := lambda.NewHandler(h).Invoke(t.Context(), []byte(`{}`))
		if lambdaErrorType(got) != want || !errors.Is(got, err) {
			t.Errorf("NewHandler.Invoke returned %T, want %s", got, want)
		}
	}
	// And from a real handler, end to end.
	f := newSandboxFx(t)
	ids := f.user("alice", userSpec{keys: 1})
	in := `{"accountId":"` + f.acct + `","userName":"alice","accessKeyId":"` + ids[0] + `"}`
	if got := reportedType(t, newDeleteKey(f), in); got != "KeyNotInactive" {
		t.Errorf("DeleteKey reported %q", got)
	}
}

// Throttling from the real SDK client, after its own retries, surfaces as
// Throttled: never swallowed, never a generic failure.
func TestSDKThrottlingSurfacesAsThrottled(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>`))
	}))
	defer srv.Close()
	c := iam.NewFromConfig(aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 2,
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	})
	h := &DeleteKey{Accounts: fixedIAM{c}, Now: func() time.Time { return t0 }}
	_, err := h.Handle(t.Context(), DeleteKeyInput{AccountID: "222233334444", UserName: "alice", AccessKeyID: "AKIAAAAAAAAAAAAAAAAA"})
	var th *Throttled
	if !errors.As(err, &th) || lambdaErrorType(err) != "Throttled" {
		t.Fatalf("got %T %v", err, err)
	}
	if calls.Load() != 2 {
		t.Errorf("the SDK made %d attempts, want its own 2 retries first", calls.Load())
	}
}

// fixedIAM serves one IAM client for every account.
type fixedIAM struct{ c IAMAPI }

func (f fixedIAM) IAM(context.Context, string) (IAMAPI, error) { return f.c, nil }
func (f fixedIAM) SecretsManager(context.Context, string) (SecretsManagerAPI, error) {
	return nil, errors.New("no secrets manager")
}
func (f fixedIAM) SNS(context.Context, string) (SNSAPI, error) { return nil, errors.New("no sns") }
func (f fixedIAM) Organizations(context.Context) (OrganizationsAPI, error) {
	return nil, errors.New("no organizations")
}

// A member account whose role cannot be assumed is AccountUnavailable.
func TestAccountUnavailable(t *testing.T) {
	f := newSandboxFx(t)
	mgmt := f.sb.ManagementAccount()
	a := &AWSAccounts{Config: aws.Config{Region: "us-east-1"}, Home: mgmt, STS: f.sb.STS(mgmt)}
	h := &CreateKey{Accounts: a, Now: f.now}
	_, err := invoke(t, h.Handle, CreateKeyInput{AccountID: "999988887777", UserName: "alice"})
	if lambdaErrorType(err) != "AccountUnavailable" {
		t.Fatalf("got %T %v", err, err)
	}
}
