package engine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/states"
)

// A 90-day wait on the virtual clock ends at once; the history's
// timestamps advance exactly as they would on AWS.
func ExampleMachine_Run() {
	def, err := states.Parse([]byte(`{"StartAt":"Wait90Days","States":{
	  "Wait90Days":{"Type":"Wait","Seconds":7776000,"Next":"Done"},
	  "Done":{"Type":"Pass","Result":{"rotated":true},"End":true}}}`))
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := engine.New(engine.Options{Clock: engine.NewVirtualClock(start)})
	m, err := e.Compile(def, "Lifecycle")
	if err != nil {
		panic(err)
	}
	res := m.Run(context.Background(), "key-1", nil)
	fmt.Println(res.Status, res.Output, res.StopDate.Sub(res.StartDate))
	for _, ev := range res.History() {
		fmt.Println(ev.Id, ev.PreviousEventId, ev.Type, ev.Timestamp.Format(time.DateOnly))
	}
	// Output:
	// SUCCEEDED map[rotated:true] 2160h0m0s
	// 1 0 ExecutionStarted 2026-01-01
	// 2 1 WaitStateEntered 2026-01-01
	// 3 2 WaitStateExited 2026-04-01
	// 4 3 PassStateEntered 2026-04-01
	// 5 4 PassStateExited 2026-04-01
	// 6 5 ExecutionSucceeded 2026-04-01
}
