package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/states"
)

// A child started by states:startExecution is held by no caller: the
// OnExecutionEnd hook is the only way to learn it ended.
func TestOnExecutionEndSeesChildExecutions(t *testing.T) {
	child, err := states.Parse([]byte(`{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`))
	require.NoError(t, err)
	parent, err := states.Parse([]byte(`{"StartAt":"Start","States":{"Start":{"Type":"Task",
		"Resource":"arn:aws:states:::states:startExecution",
		"Parameters":{"StateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:child","Name":"kid","Input":{}},
		"End":true}}}`))
	require.NoError(t, err)

	var mu sync.Mutex
	ended := map[string]string{}
	e := New(Options{OnExecutionEnd: func(r *Result) {
		mu.Lock()
		ended[r.ExecutionArn] = r.Status
		mu.Unlock()
	}})
	_, err = e.Compile(child, "child")
	require.NoError(t, err)
	m, err := e.Compile(parent, "parent")
	require.NoError(t, err)
	res := m.Run(context.Background(), "mum", map[string]any{})
	require.Equal(t, StatusSucceeded, res.Status, res.Cause)

	x, ok := e.Machine("child")
	require.True(t, ok)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ended) == 2
	}, 10*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, StatusSucceeded, ended[res.ExecutionArn])
	assert.Equal(t, StatusSucceeded, ended[x.execArnPrefix+"kid"], "the child's end is reported too")
}
