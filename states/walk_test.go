package states

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWalk(t *testing.T) {
	doc, err := os.ReadFile("testdata/valid/parallel.json")
	require.NoError(t, err)
	def, err := Decode(doc)
	require.NoError(t, err)
	var got []string
	Walk(def, func(ptr, name string, s State) { got = append(got, ptr+" "+string(s.Type())) })
	assert.Equal(t, []string{
		"/States/Fan Parallel",
		"/States/Fan/Branches/0/States/Gather Task",
		"/States/Fan/Branches/1/States/Inner Parallel",
		"/States/Fan/Branches/1/States/Inner/Branches/0/States/A Pass",
		"/States/Fan/Branches/1/States/Inner/Branches/1/States/B Wait",
		"/States/Fan/Branches/1/States/InnerDone Succeed",
		"/States/Recover Pass",
		"/States/Done Succeed",
	}, got)
}

func TestWalkMapAndEscapes(t *testing.T) {
	def, err := Decode([]byte(`{"StartAt":"M/1","States":{"M/1":{"Type":"Map","Iterator":{"StartAt":"a~b","States":{"a~b":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:1:function:f","End":true}}},"End":true}}}`))
	require.NoError(t, err)
	var got []string
	Walk(def, func(ptr, name string, _ State) { got = append(got, ptr+" "+name) })
	assert.Equal(t, []string{"/States/M~11 M/1", "/States/M~11/Iterator/States/a~0b a~b"}, got)
}

func TestResources(t *testing.T) {
	doc, err := os.ReadFile("testdata/valid/key_lifecycle.json")
	require.NoError(t, err)
	def, err := Decode(doc)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"arn:aws:lambda:us-east-1:123456789012:function:create-key",
		"arn:aws:states:::sns:publish",
		"arn:aws:lambda:us-east-1:123456789012:function:last-used",
		"arn:aws:lambda:us-east-1:123456789012:function:deactivate-key",
		"arn:aws:lambda:us-east-1:123456789012:function:delete-key",
	}, def.Resources())
	assert.Nil(t, (*Definition)(nil).Resources())
}

func TestTransitions(t *testing.T) {
	doc, err := os.ReadFile("testdata/valid/key_lifecycle.json")
	require.NoError(t, err)
	def, err := Decode(doc)
	require.NoError(t, err)
	assert.Equal(t, []string{"Notify", "NotifyFailure", "NotifyFailure"}, Transitions(def.States.ByName["CreateKey"]))
	assert.Equal(t, []string{"NotifyFailure", "Deactivate"}, Transitions(def.States.ByName["InUse?"]))
	assert.Empty(t, Transitions(def.States.ByName["Done"]))
}
