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

func TestBuilderChoiceAndJSONata(t *testing.T) {
	requireSubpackages(t)
	def, err := NewMachine("").WithQueryLanguage(JSONata).WithVersion("1.0").WithTimeout(3600).StartAt("C").
		Choice("C").When(Condition("{% $states.input.ok %}"), "Yes").Default("No").Output("{% $states.input %}").
		Task("Yes", "arn:aws:states:::lambda:invoke").Arguments(map[string]any{"FunctionName": "f", "Payload": "{% $states.input %}"}).
		TimeoutSeconds(30).HeartbeatSeconds(10).Credentials("arn:aws:iam::123456789012:role/r").Assign("done", true).Next("No").
		Succeed("No").
		Build()
	require.NoError(t, err)
	out, err := json.Marshal(def)
	require.NoError(t, err)
	assert.JSONEq(t, `{"QueryLanguage":"JSONata","Version":"1.0","TimeoutSeconds":3600,"StartAt":"C","States":{
	  "C":{"Type":"Choice","Choices":[{"Condition":"{% $states.input.ok %}","Next":"Yes"}],"Default":"No","Output":"{% $states.input %}"},
	  "Yes":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Arguments":{"FunctionName":"f","Payload":"{% $states.input %}"},
	         "TimeoutSeconds":30,"HeartbeatSeconds":10,"Credentials":{"RoleArn":"arn:aws:iam::123456789012:role/r"},"Assign":{"done":true},"Next":"No"},
	  "No":{"Type":"Succeed"}}}`, string(out))

	_, err = NewMachine("").StartAt("C").
		Choice("C").When(Or(Compare("$.a", "NumericEquals", 1), Not(Compare("$.b", "IsNull", true)), And(Compare("$.c", "StringEquals", 5))), "Done").
		When(Compare("$.d", "NoSuchOperator", 1), "Done").Default("Done").
		Wait("W").SecondsPath("$.s").Timestamp("soon").End().
		Fail("Done", "", "").ErrorPath("$.e").CausePath("States.Format('{}', $.c)").
		Build()
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, []string{
		`/States/C/Choices/0/Or/2/And/0/StringEquals: expected a string, got number`,
		`/States/C/Choices/1/NoSuchOperator: unknown comparison operator "NoSuchOperator"`,
		`/States/W: state is unreachable from StartAt "C"`,
		`/States/W: must have exactly one of Seconds, SecondsPath, Timestamp or TimestampPath`,
		`/States/W/Timestamp: not an RFC 3339 timestamp: "soon"`,
	}, problemStrings(verr.Problems))
}
