package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/states"
)

func TestHandlersSeeTheExecutionsVirtualTime(t *testing.T) {
	def, err := states.Parse([]byte(`{"StartAt":"W","States":{
		"W":{"Type":"Wait","Seconds":7776000,"Next":"T"},
		"T":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:123456789012:function:clock","End":true}}}`))
	require.NoError(t, err)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var seen time.Time
	e := New(Options{Clock: NewVirtualClock(start), Handlers: map[string]Handler{
		"clock": HandlerFunc(func(ctx context.Context, _ []byte) ([]byte, error) {
			seen, _ = TaskTime(ctx)
			return []byte(`{}`), nil
		}),
	}})
	m, err := e.Compile(def, "clock")
	require.NoError(t, err)
	res := m.Run(context.Background(), "", map[string]any{})
	require.Equal(t, "SUCCEEDED", res.Status, res.Cause)
	assert.Equal(t, start.Add(90*24*time.Hour), seen, "the handler runs 90 virtual days after the start")
}
