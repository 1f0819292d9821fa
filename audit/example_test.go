package audit_test

import (
	"fmt"
	"strings"

	"github.com/keyflow/keyflow/audit"
)

// A history in GetExecutionHistory's JSON becomes a record; records are
// chained, and an edited record is named by its index.
func ExampleBuild() {
	history := `{"events":[
	 {"id":1,"timestamp":1767258000,"type":"ExecutionStarted","executionStartedEventDetails":{"input":"{\"accountId\":\"111122223333\",\"userName\":\"alice\",\"accessKeyId\":\"AKIAOLDKEY0000000001\"}"}},
	 {"id":2,"previousEventId":1,"timestamp":1767258000,"type":"TaskStateEntered","stateEnteredEventDetails":{"name":"DeleteKey","input":"{}"}},
	 {"id":3,"previousEventId":2,"timestamp":1767258000,"type":"LambdaFunctionScheduled","lambdaFunctionScheduledEventDetails":{"resource":"arn:aws:lambda:us-east-1:123456789012:function:keyflow-delete-key","input":"{\"accountId\":\"111122223333\",\"userName\":\"alice\",\"accessKeyId\":\"AKIAOLDKEY0000000001\"}"}},
	 {"id":4,"previousEventId":3,"timestamp":1767258000,"type":"LambdaFunctionStarted"},
	 {"id":5,"previousEventId":4,"timestamp":1767258001,"type":"LambdaFunctionSucceeded","lambdaFunctionSucceededEventDetails":{"output":"{\"accessKeyId\":\"AKIAOLDKEY0000000001\",\"result\":\"Deleted\",\"notBefore\":\"2026-03-01T00:00:00Z\",\"deletedAt\":\"2026-01-01T09:00:01Z\"}"}},
	 {"id":6,"previousEventId":5,"timestamp":1767258001,"type":"ExecutionSucceeded","executionSucceededEventDetails":{"output":"{}"}}]}`
	events, err := audit.DecodeHistory(strings.NewReader(history))
	if err != nil {
		panic(err)
	}
	rec, err := audit.Build(audit.History{ExecutionArn: "arn:aws:states:us-east-1:123456789012:execution:keyflow-lifecycle:x", Events: events})
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Workflow, rec.Status, rec.Actions[0].Handler, rec.Actions[0].Result)
	for _, b := range rec.Breaches {
		fmt.Println(b.Code, b.Events)
	}

	other := *rec
	log := []*audit.Record{rec, &other}
	if _, err := audit.Chain("", log); err != nil {
		panic(err)
	}
	fmt.Println(audit.Verify(log))
	rec.Breaches = nil // hide the evidence
	fmt.Println(audit.Verify(log))
	// Output:
	// lifecycle SUCCEEDED delete-key Deleted
	// delete-before-buffer [3 5]
	// delete-before-deactivate [3 5]
	// <nil>
	// audit: chain broken in 1 place(s); record 0: edited: hash a642f6682b6f... is not the content's 1121857bc744...
}
