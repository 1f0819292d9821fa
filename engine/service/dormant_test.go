package service_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/engine/service"
)

// TestDormantExecutionsCarryOn: executions with nothing to do are let go
// from memory, in the Wait and in the approval wait, and each way back in
// works: the wake time (the Wait ends), an answer, a failure, a heartbeat,
// a stop. Every task runs once, and every history has each id once and in
// order.
func TestDormantExecutionsCarryOn(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, filepath.Join(t.TempDir(), "keyflow.db"))
	w := &world{}
	// The one-day Hold lasts 0.86 s at this scale: far longer than 20 ms.
	l := open(t, db, w, func(o *service.Options) { o.UnloadAfter = 20 * time.Millisecond })
	defer l.Close()
	sm, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Approval"), Definition: aws.String(approvalDef),
		RoleArn: aws.String("arn:aws:iam::123456789012:role/keyflow")})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	arns := make([]string, n)
	for i := range n {
		out, err := l.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String(fmt.Sprintf("x%d", i)),
			Input: aws.String(fmt.Sprintf(`{"user":"u%d"}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		arns[i] = *out.ExecutionArn
	}
	waitFor(t, "every execution to let go in its Hold", func() bool { return l.Loaded() == 0 })
	if w.creates.Load() != n {
		t.Fatalf("Create called %d times for %d executions", w.creates.Load(), n)
	}
	// The Hold ends: the wake loop resumes each, it asks for approval and
	// lets go again, waiting on its token only.
	tokens := map[string]bool{}
	waitFor(t, "every approval request", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, tok := range w.tokens {
			tokens[tok] = true
		}
		return len(tokens) == n
	})
	waitFor(t, "every execution to let go in its approval wait", func() bool { return l.Loaded() == 0 })
	var list []string
	for tok := range tokens {
		list = append(list, tok)
	}

	if _, err := l.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(list[0])}); err != nil {
		t.Fatalf("a heartbeat to a dormant execution: %v", err)
	}
	for _, tok := range list[:n/2] {
		if _, err := l.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(tok), Output: aws.String(`{"decision":"approve"}`)}); err != nil {
			t.Fatalf("an answer to a dormant execution: %v", err)
		}
	}
	for _, tok := range list[n/2 : n-1] {
		if _, err := l.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(tok), Error: aws.String("Rejected")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(list[0]), Output: aws.String(`{}`)}); err == nil {
		t.Fatal("a second answer to one token was taken")
	}
	// The last one is stopped while dormant.
	var last string
	waitFor(t, "every answered execution to end", func() bool {
		var running []string
		for _, arn := range arns {
			d, err := l.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
			if err != nil {
				t.Fatal(err)
			}
			if d.Status == types.ExecutionStatusRunning {
				running = append(running, arn)
			}
		}
		if len(running) == 1 {
			last = running[0]
		}
		return len(running) == 1
	})
	waitFor(t, "the last one to be dormant", func() bool { return l.Loaded() == 0 })
	if _, err := l.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(last), Error: aws.String("Ops.Cancelled")}); err != nil {
		t.Fatalf("stop of a dormant execution: %v", err)
	}

	count := map[types.ExecutionStatus]int{}
	waitFor(t, "every execution to end", func() bool {
		clear(count)
		for _, arn := range arns {
			d, err := l.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
			if err != nil {
				t.Fatal(err)
			}
			count[d.Status]++
		}
		return count[types.ExecutionStatusRunning] == 0
	})
	want := map[types.ExecutionStatus]int{types.ExecutionStatusSucceeded: n / 2, types.ExecutionStatusFailed: n/2 - 1, types.ExecutionStatusAborted: 1}
	for st, c := range want {
		if count[st] != c {
			t.Errorf("%d executions %s, want %d (all: %v)", count[st], st, c, count)
		}
	}
	if w.creates.Load() != n {
		t.Errorf("Create called %d times for %d executions: a resume called it again", w.creates.Load(), n)
	}
	for _, arn := range arns {
		h, err := l.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 1000})
		if err != nil {
			t.Fatal(err)
		}
		ends := 0
		for i, e := range h.Events {
			if e.Id != int64(i+1) || e.PreviousEventId >= e.Id {
				t.Fatalf("%s: event %d has id %d, previous %d", arn, i+1, e.Id, e.PreviousEventId)
			}
			if i > 0 && e.Timestamp.Before(*h.Events[i-1].Timestamp) {
				t.Fatalf("%s: event %d goes back in time", arn, e.Id)
			}
			switch e.Type {
			case types.HistoryEventTypeExecutionSucceeded, types.HistoryEventTypeExecutionFailed, types.HistoryEventTypeExecutionAborted:
				ends++
			}
		}
		if ends != 1 {
			t.Fatalf("%s ended %d times", arn, ends)
		}
	}
}

// TestSyncExecutionStaysLoaded: StartSyncExecution's caller waits for the
// end, so its execution is never let go, however long its Wait.
func TestSyncExecutionStaysLoaded(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, filepath.Join(t.TempDir(), "keyflow.db"))
	l := open(t, db, &world{}, func(o *service.Options) { o.UnloadAfter = time.Millisecond })
	defer l.Close()
	sm, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Express"), Type: types.StateMachineTypeExpress,
		Definition: aws.String(`{"StartAt":"Hold","States":{"Hold":{"Type":"Wait","Seconds":3600,"Next":"Done"},"Done":{"Type":"Succeed"}}}`),
		RoleArn:    aws.String("arn:aws:iam::123456789012:role/keyflow")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.StartSyncExecution(ctx, &sfn.StartSyncExecutionInput{StateMachineArn: sm.StateMachineArn, Input: aws.String(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != types.SyncExecutionStatusSucceeded || aws.ToString(out.Output) != `{"a":1}` {
		t.Fatalf("%s %s", out.Status, aws.ToString(out.Output))
	}
}

// TestAwaitedChildStaysLoaded: a child whose parent waits for it
// (startExecution.sync) is never let go: the parent waits in memory for
// its result.
func TestAwaitedChildStaysLoaded(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, filepath.Join(t.TempDir(), "keyflow.db"))
	l := open(t, db, &world{}, func(o *service.Options) { o.UnloadAfter = time.Millisecond })
	defer l.Close()
	role := aws.String("arn:aws:iam::123456789012:role/keyflow")
	child, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Child"), RoleArn: role,
		Definition: aws.String(`{"StartAt":"Hold","States":{"Hold":{"Type":"Wait","Seconds":3600,"Next":"Done"},"Done":{"Type":"Pass","Result":"held","End":true}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	parent, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Parent"), RoleArn: role,
		Definition: aws.String(`{"StartAt":"Run","States":{"Run":{"Type":"Task","Resource":"arn:aws:states:::states:startExecution.sync:2",
		  "Parameters":{"StateMachineArn":"` + *child.StateMachineArn + `"},"OutputPath":"$.Output","End":true}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: parent.StateMachineArn})
	if err != nil {
		t.Fatal(err)
	}
	var d *sfn.DescribeExecutionOutput
	waitFor(t, "the parent to end", func() bool {
		d, err = l.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: out.ExecutionArn})
		return err == nil && d.Status != types.ExecutionStatusRunning
	})
	if d.Status != types.ExecutionStatusSucceeded || aws.ToString(d.Output) != `"held"` {
		t.Fatalf("parent %s: output %s, error %s", d.Status, aws.ToString(d.Output), aws.ToString(d.Cause))
	}
}
