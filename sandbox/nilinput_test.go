package sandbox_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/keyflow/keyflow/sandbox"
)

// TestNilInputNeverPanics: the SDK's clients take a nil input as an empty
// one, so the sandbox's must too: every API method of every service,
// called with nil, answers (a result or a typed error) and never panics.
func TestNilInputNeverPanics(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := sandbox.New(sandbox.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	acct := s.ManagementAccount()
	clients := map[string]any{
		"IAM": s.IAM(acct), "SecretsManager": s.SecretsManager(acct), "SNS": s.SNS(acct), "STS": s.STS(acct),
		"Organizations": s.Organizations(), "S3": s.S3(acct), "SESv2": s.SESv2(acct),
	}
	ctxType := reflect.TypeOf((*context.Context)(nil)).Elem()
	errType := reflect.TypeOf((*error)(nil)).Elem()
	calls := 0
	for svc, c := range clients {
		v := reflect.ValueOf(c)
		for i := 0; i < v.NumMethod(); i++ {
			m := v.Type().Method(i)
			ft := m.Type // receiver first
			if ft.NumIn() != 4 || !ft.IsVariadic() || ft.In(1) != ctxType || ft.In(2).Kind() != reflect.Pointer ||
				ft.NumOut() != 2 || ft.Out(1) != errType {
				continue
			}
			calls++
			t.Run(svc+"."+m.Name, func(t *testing.T) {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panicked on a nil input: %v", r)
					}
				}()
				v.Method(i).Call([]reflect.Value{reflect.ValueOf(context.Background()), reflect.Zero(ft.In(2))})
			})
		}
	}
	if calls < 40 {
		t.Fatalf("only %d API methods found: the walk no longer sees the clients", calls)
	}
}
