package states

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuilderBranchesAndPayloads(t *testing.T) {
	requireSubpackages(t)
	gather := NewMachine("").StartAt("Gather").
		Task("Gather", "arn:aws:lambda:us-east-1:123456789012:function:gather").
		Parameters(map[string]any{"user.$": "$.user", "limit": 10}).End()
	each := NewMachine("").StartAt("One").Pass("One").Result(map[string]int{"n": 1}).End()
	def, err := NewMachine("").StartAt("Fan").
		Parallel("Fan", gather).ResultSelector(map[string]any{"g.$": "$[0]"}).Next("Each").
		Map("Each", each).ItemsPath("$.items").MaxConcurrency(2).Assign("done", true).End().
		Build()
	require.NoError(t, err)
	out, err := json.Marshal(def)
	require.NoError(t, err)
	assert.JSONEq(t, `{"StartAt":"Fan","States":{
	  "Fan":{"Type":"Parallel","Branches":[{"StartAt":"Gather","States":{"Gather":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:123456789012:function:gather","Parameters":{"user.$":"$.user","limit":10},"End":true}}}],"ResultSelector":{"g.$":"$[0]"},"Next":"Each"},
	  "Each":{"Type":"Map","ItemsPath":"$.items","ItemProcessor":{"StartAt":"One","States":{"One":{"Type":"Pass","Result":{"n":1},"End":true}}},"MaxConcurrency":2,"Assign":{"done":true},"End":true}}}`, string(out))
	// Values are the engine's value tree: Go ints became int64.
	one := def.States.ByName["Each"].(*Map).ItemProcessor.States.ByName["One"].(*Pass)
	assert.Equal(t, map[string]any{"n": int64(1)}, one.Result)
}

func TestBuilderProblems(t *testing.T) {
	_, err := NewMachine("").StartAt("A").
		Pass("A").Next("B").
		Pass("A").End().
		Succeed("B").
		Choice("C").When(And(), "B").
		Build()
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, []string{
		`/States/A: duplicate state name "A"`,
		`/States/C: state is unreachable from StartAt "A"`,
		`/States/C/Choices/0/And: must have at least one rule`,
	}, problemStrings(verr.Problems))
}

func TestBuilderStateMarshal(t *testing.T) {
	def, err := NewMachine("").StartAt("W").Wait("W").Seconds(5).Comment("pause").End().Build()
	require.NoError(t, err)
	out, err := json.Marshal(def.States.ByName["W"])
	require.NoError(t, err)
	assert.Equal(t, `{"Type":"Wait","Comment":"pause","Seconds":5,"End":true}`, string(out))
}
