package states_test

import (
	"encoding/json"
	"fmt"

	"github.com/keyflow/keyflow/states"
)

func ExampleNewMachine() {
	const fn = "arn:aws:lambda:us-east-1:123456789012:function:"
	def, err := states.NewMachine("Rotate one key").
		StartAt("CreateKey").
		Task("CreateKey", fn+"create-key").
		ResultPath("$.created").
		Retry(states.Retrier{ErrorEquals: []string{"Lambda.TooManyRequestsException"}, MaxAttempts: states.Int(6), JitterStrategy: "FULL"}).
		Catch([]string{"States.ALL"}, "NotifyFailure", "$.error").
		Next("WaitInactive").
		Wait("WaitInactive").TimestampPath("$.inactiveAt").Next("InUse?").
		Choice("InUse?").
		When(states.Compare("$.lastUsedDays", "NumericLessThan", 7), "NotifyFailure").
		Default("Deactivate").
		Task("Deactivate", fn+"deactivate-key").ResultPath("").End().
		Fail("NotifyFailure", "KeyRotationFailed", "").
		Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := json.MarshalIndent(def, "", "  ")
	fmt.Println(string(out))
	// Output:
	// {
	//   "Comment": "Rotate one key",
	//   "StartAt": "CreateKey",
	//   "States": {
	//     "CreateKey": {
	//       "Type": "Task",
	//       "Resource": "arn:aws:lambda:us-east-1:123456789012:function:create-key",
	//       "ResultPath": "$.created",
	//       "Retry": [
	//         {
	//           "ErrorEquals": [
	//             "Lambda.TooManyRequestsException"
	//           ],
	//           "MaxAttempts": 6,
	//           "JitterStrategy": "FULL"
	//         }
	//       ],
	//       "Catch": [
	//         {
	//           "ErrorEquals": [
	//             "States.ALL"
	//           ],
	//           "ResultPath": "$.error",
	//           "Next": "NotifyFailure"
	//         }
	//       ],
	//       "Next": "WaitInactive"
	//     },
	//     "WaitInactive": {
	//       "Type": "Wait",
	//       "TimestampPath": "$.inactiveAt",
	//       "Next": "InUse?"
	//     },
	//     "InUse?": {
	//       "Type": "Choice",
	//       "Choices": [
	//         {
	//           "Variable": "$.lastUsedDays",
	//           "NumericLessThan": 7,
	//           "Next": "NotifyFailure"
	//         }
	//       ],
	//       "Default": "Deactivate"
	//     },
	//     "Deactivate": {
	//       "Type": "Task",
	//       "Resource": "arn:aws:lambda:us-east-1:123456789012:function:deactivate-key",
	//       "ResultPath": null,
	//       "End": true
	//     },
	//     "NotifyFailure": {
	//       "Type": "Fail",
	//       "Error": "KeyRotationFailed"
	//     }
	//   }
	// }
}

func ExampleValidate() {
	_, err := states.Parse([]byte(`{
	  "StartAt": "Rotate",
	  "States": {
	    "Rotate": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:rotate", "Next": "Notfy"},
	    "Notify": {"Type": "Succeed"}
	  }
	}`))
	for _, p := range err.(*states.ValidationError).Problems {
		fmt.Println(p)
	}
	// Output:
	// /States/Rotate/Next: no state named "Notfy"
	// /States/Notify: state is unreachable from StartAt "Rotate"
}

func ExampleWalk() {
	def, err := states.Parse([]byte(`{
	  "StartAt": "Fan",
	  "States": {
	    "Fan": {"Type": "Parallel", "End": true, "Branches": [
	      {"StartAt": "Notify", "States": {"Notify": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": true}}},
	      {"StartAt": "Each", "States": {"Each": {"Type": "Map", "End": true, "ItemProcessor": {
	        "StartAt": "Check", "States": {"Check": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:check", "End": true}}}}}}
	    ]}
	  }
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	states.Walk(def, func(pointer, name string, s states.State) {
		fmt.Println(pointer, s.Type())
	})
	fmt.Println(def.Resources())
	// Output:
	// /States/Fan Parallel
	// /States/Fan/Branches/0/States/Notify Task
	// /States/Fan/Branches/1/States/Each Map
	// /States/Fan/Branches/1/States/Each/ItemProcessor/States/Check Task
	// [arn:aws:states:::sns:publish arn:aws:lambda:us-east-1:123456789012:function:check]
}
