package sandbox

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const acct = "123456789012"

// fakeClock is a settable clock, as the engine's virtual clock is.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func newSandbox(t testing.TB) (*Sandbox, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: t0}
	s, err := New(Options{Now: clk.Now})
	require.NoError(t, err)
	return s, clk
}

// requireCode checks an error the way a caller of the real SDK would:
// through smithy.APIError's code.
func requireCode(t testing.TB, err error, code string) {
	t.Helper()
	if code == "" {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae), "not an API error: %v", err)
	assert.Equal(t, code, ae.ErrorCode(), "error: %v", err)
}

// TestSignaturesMatchSDK checks every exported method of each sandbox client
// against the method of the same name on the aws-sdk-go-v2 client: same
// parameters, same results. That is what lets package tasks declare one small
// interface that both satisfy.
func TestSignaturesMatchSDK(t *testing.T) {
	pairs := []struct {
		name    string
		sandbox any
		sdk     any
	}{
		{"IAM", (*IAM)(nil), (*iam.Client)(nil)},
		{"SecretsManager", (*SecretsManager)(nil), (*secretsmanager.Client)(nil)},
		{"SNS", (*SNS)(nil), (*sns.Client)(nil)},
		{"STS", (*STS)(nil), (*sts.Client)(nil)},
		{"Organizations", (*Organizations)(nil), (*organizations.Client)(nil)},
		{"S3", (*S3)(nil), (*s3.Client)(nil)},
		{"SESv2", (*SESv2)(nil), (*sesv2.Client)(nil)},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			st, ct := reflect.TypeOf(p.sandbox), reflect.TypeOf(p.sdk)
			require.Positive(t, st.NumMethod())
			for i := 0; i < st.NumMethod(); i++ {
				m := st.Method(i)
				cm, ok := ct.MethodByName(m.Name)
				if !assert.True(t, ok, "%s.%s: no such method on the SDK client", p.name, m.Name) {
					continue
				}
				// Drop the receiver, compare the rest.
				assert.Equal(t, signature(cm.Type), signature(m.Type), "%s.%s", p.name, m.Name)
			}
		})
	}
}

func signature(f reflect.Type) string {
	s := "("
	for i := 1; i < f.NumIn(); i++ {
		s += f.In(i).String() + ","
	}
	s += ")("
	for i := 0; i < f.NumOut(); i++ {
		s += f.Out(i).String() + ","
	}
	return s + ")"
}

func TestNewDefaults(t *testing.T) {
	s, err := New(Options{})
	require.NoError(t, err)
	assert.Equal(t, "us-east-1", s.Region())
	assert.Equal(t, "111111111111", s.ManagementAccount())
	_, err = New(Options{ManagementAccount: "12"})
	assert.Error(t, err)
}

func TestCanceledContext(t *testing.T) {
	s, _ := newSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.IAM(acct).ListUsers(ctx, &iam.ListUsersInput{})
	assert.ErrorIs(t, err, context.Canceled)
}

func timeSeconds(n int32) time.Duration { return time.Duration(n) * time.Second }
