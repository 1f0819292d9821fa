package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/engine/api"
)

// rewrite replaces the target and body of a request after the client
// serialised it and before it is signed, so the request is validly signed
// but says what the test wants.
func rewrite(target, body string) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Serialize.Add(middleware.SerializeMiddlewareFunc("rewrite",
			func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					req.Header.Set("X-Amz-Target", target)
					var err error
					if in.Request, err = req.SetStream(strings.NewReader(body)); err != nil {
						return middleware.SerializeOutput{}, middleware.Metadata{}, err
					}
				}
				return next.HandleSerialize(ctx, in)
			}), middleware.After)
	}
}

// tamper changes the body after the request was signed.
func tamper(s *middleware.Stack) error {
	return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("tamper",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				r, err := req.SetStream(strings.NewReader(`{"maxResults":2}`))
				if err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, err
				}
				r.ContentLength = int64(len(`{"maxResults":2}`))
				in.Request = r
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func TestRequestsMustBeSignedWithTheLocalCredentials(t *testing.T) {
	rows := []struct {
		name  string
		creds aws.Credentials
		opt   func(*sfn.Options)
		now   func() time.Time
		code  string
	}{
		{name: "signed with the local credentials", creds: testCreds},
		{name: "unknown access key id", creds: aws.Credentials{AccessKeyID: "AKIAOTHER", SecretAccessKey: testCreds.SecretAccessKey}, code: "UnrecognizedClientException"},
		{name: "wrong secret", creds: aws.Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: "guess"}, code: "InvalidSignatureException"},
		{name: "a session token the server does not know", creds: aws.Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: testCreds.SecretAccessKey, SessionToken: "tok"}, code: "UnrecognizedClientException"},
		{name: "body changed after signing", creds: testCreds, opt: func(o *sfn.Options) { o.APIOptions = append(o.APIOptions, tamper) }, code: "InvalidSignatureException"},
		{name: "signed 20 minutes before the server's clock", creds: testCreds, now: func() time.Time { return time.Now().Add(20 * time.Minute) }, code: "InvalidSignatureException"},
		{name: "signed 20 minutes after the server's clock", creds: testCreds, now: func() time.Time { return time.Now().Add(-20 * time.Minute) }, code: "InvalidSignatureException"},
		{name: "other region is accepted", creds: testCreds, opt: func(o *sfn.Options) { o.Region = "eu-west-3" }},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			svc := newFake()
			h, err := api.New(api.Options{Service: svc, Credentials: testCreds, Now: r.now})
			require.NoError(t, err)
			srv := httptest.NewServer(h)
			defer srv.Close()
			var opts []func(*sfn.Options)
			if r.opt != nil {
				opts = append(opts, r.opt)
			}
			_, err = newClient(srv.URL, r.creds).ListStateMachines(context.Background(), &sfn.ListStateMachinesInput{MaxResults: 1}, opts...)
			if r.code == "" {
				require.NoError(t, err)
				assert.NotNil(t, svc.received("ListStateMachines"))
				return
			}
			var ae smithy.APIError
			require.True(t, errors.As(err, &ae), "%v", err)
			assert.Equal(t, r.code, ae.ErrorCode())
			assert.Nil(t, svc.received("ListStateMachines"), "a refused request never reaches the service")
			assert.NotContains(t, err.Error(), testCreds.SecretAccessKey)
		})
	}
}

// rawSigned builds a request signed by the SDK's signer with any service
// name and time, to reach the checks the client never trips.
func rawSigned(t *testing.T, url, service, authz string) *http.Request {
	t.Helper()
	body := `{}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "AWSStepFunctions.ListStateMachines")
	sum := sha256.Sum256([]byte(body))
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), testCreds, req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()))
	switch authz {
	case "":
	case "unsigned":
		req.Header.Del("Authorization")
	default:
		req.Header.Set("Authorization", authz)
	}
	return req
}

func TestMalformedSignatures(t *testing.T) {
	svc := newFake()
	h, err := api.New(api.Options{Service: svc, Credentials: testCreds})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	rows := []struct {
		name, service, authz, code string
	}{
		{"unsigned", "states", "unsigned", "MissingAuthenticationTokenException"},
		{"scoped to another service", "lambda", "", "InvalidSignatureException"},
		{"another algorithm", "states", "AWS4-HMAC-SHA512 Credential=x", "IncompleteSignatureException"},
		{"no signature", "states", "AWS4-HMAC-SHA256 Credential=" + testCreds.AccessKeyID + "/20260101/us-east-1/states/aws4_request, SignedHeaders=host", "IncompleteSignatureException"},
		{"short scope", "states", "AWS4-HMAC-SHA256 Credential=" + testCreds.AccessKeyID + "/20260101, SignedHeaders=host, Signature=00", "IncompleteSignatureException"},
		{"scope's date is not the request's", "states", "AWS4-HMAC-SHA256 Credential=" + testCreds.AccessKeyID + "/19990101/us-east-1/states/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "InvalidSignatureException"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(rawSigned(t, srv.URL, r.service, r.authz))
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Equal(t, r.code, resp.Header.Get("X-Amzn-ErrorType"))
		})
	}
	assert.Nil(t, svc.received("ListStateMachines"))
}
