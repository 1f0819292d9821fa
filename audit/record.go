package audit

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// Schema names the record format; it is inside the hashed JSON, so a
// reader can tell which fields a hash covers.
const Schema = "keyflow.audit/v1"

// Record is the audit of one execution. Its JSON is the export format and,
// without Hash, the canonical form that Hash covers.
type Record struct {
	Schema       string    `json:"schema"`
	ExecutionArn string    `json:"executionArn"`
	Workflow     string    `json:"workflow"`
	Status       string    `json:"status"` // RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED
	Start        time.Time `json:"start,omitzero"`
	End          time.Time `json:"end,omitzero"`
	// Error and Cause are the execution's failure (redacted).
	Error     string     `json:"error,omitempty"`
	Cause     string     `json:"cause,omitempty"`
	Events    int        `json:"events"`
	Subject   Subject    `json:"subject"`
	Actions   []Action   `json:"actions"`
	Approvals []Approval `json:"approvals"`
	Waits     []Wait     `json:"waits"`
	Breaches  []Breach   `json:"breaches"`
	// Prev is the Hash of the record before this one in its log ("" for
	// the first); Hash is the SHA-256 of this record's canonical JSON.
	// Both are set by Chain.
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// Subject is who and what the execution is about.
type Subject struct {
	Account string `json:"account,omitempty"`
	User    string `json:"user,omitempty"`
	Key     string `json:"key,omitempty"`
}

// Action is one handler call: what it did to which account, user and key.
type Action struct {
	// Handler is the handler's name: the Lambda function name without
	// "keyflow-" ("create-key", "deactivate-key", ...), or the service
	// integration ("states:startExecution.sync") for other tasks.
	Handler   string    `json:"handler"`
	State     string    `json:"state,omitempty"`
	Scheduled time.Time `json:"scheduled,omitzero"`
	Time      time.Time `json:"time,omitzero"` // when the call ended
	Account   string    `json:"account,omitempty"`
	User      string    `json:"user,omitempty"`
	// Key is the key acted on: the new key of a create, the old key of a
	// deactivation or deletion. Replaces is the key a create rotates out;
	// Keys are the keys a quarantine deactivated.
	Key      string   `json:"key,omitempty"`
	Replaces string   `json:"replaces,omitempty"`
	Keys     []string `json:"keys,omitempty"`
	// Result is the handler's own word for what happened ("created",
	// "Deactivated", "KeyStillInUse", "Deleted", "Quarantined", ...).
	Result string `json:"result,omitempty"`
	// Error is the error name when the call failed, timed out or never
	// started.
	Error  string  `json:"error,omitempty"`
	DryRun bool    `json:"dryRun,omitempty"`
	Events []int64 `json:"events"`
}

// Approval is one answer to a task token, or the policy applied when no
// answer came in time.
type Approval struct {
	State     string    `json:"state,omitempty"`
	Requested time.Time `json:"requested,omitzero"`
	Decision  string    `json:"decision,omitempty"`
	Approver  string    `json:"approver,omitempty"`
	// ApproverArn is the approver's identity as sts:GetCallerIdentity
	// gave it to `keyflow approve`; Approver may then be a display name.
	ApproverArn string    `json:"approverArn,omitempty"`
	At          time.Time `json:"at,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	// TimedOut is an approval nobody gave: Decision and Approver then are
	// the configured default, when the workflow applied one.
	TimedOut bool `json:"timedOut,omitempty"`
	// Error is how the token task failed, when it did.
	Error  string  `json:"error,omitempty"`
	Events []int64 `json:"events"`
}

// Wait is a stretch of the timeline where the execution waited: a Wait
// state, or a task token waiting for an approver.
type Wait struct {
	Kind    string    `json:"kind"` // "wait" or "approval"
	State   string    `json:"state,omitempty"`
	Start   time.Time `json:"start,omitzero"`
	End     time.Time `json:"end,omitzero"` // zero while still waiting
	Seconds int64     `json:"seconds"`
	Events  []int64   `json:"events"`
}

// Build audits one execution history. It fails only on a history that is
// not one execution (no events); odd events are skipped, never guessed at.
func Build(h History) (*Record, error) {
	if len(h.Events) == 0 {
		return nil, fmt.Errorf("audit: execution %q: empty history", truncate(h.ExecutionArn, 200))
	}
	events := h.Events
	if len(events) > 1 && events[0].Id > events[len(events)-1].Id {
		// reverseOrder=true pages: audit in the order things happened.
		events = append([]types.HistoryEvent(nil), events...)
		sort.SliceStable(events, func(i, j int) bool { return events[i].Id < events[j].Id })
	}
	b := &builder{
		rec: &Record{
			Schema:       Schema,
			ExecutionArn: Redact(h.ExecutionArn),
			Workflow:     Redact(h.Workflow),
			Status:       "RUNNING",
			Events:       len(events),
			Actions:      []Action{},
			Approvals:    []Approval{},
			Waits:        []Wait{},
			Breaches:     []Breach{},
		},
		policy:      h.Policy,
		rawArn:      h.ExecutionArn,
		rawWorkflow: h.Workflow,
		events:      events,
		byID:        make(map[int64]int, len(events)),
		pending:     map[int64]*call{},
	}
	if b.rec.Workflow == "" {
		b.rec.Workflow = workflowFromArn(b.rec.ExecutionArn)
	}
	for i := range events {
		if _, dup := b.byID[events[i].Id]; !dup {
			b.byID[events[i].Id] = i
		}
	}
	for i := range events {
		b.event(i)
	}
	b.finish()
	b.check()
	return b.rec, nil
}

// workflowFromArn is the state machine's name in an execution ARN
// (arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME), without keyflow's
// prefix.
func workflowFromArn(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) < 8 || (parts[5] != "execution" && parts[5] != "express") {
		return ""
	}
	return strings.TrimPrefix(parts[6], "keyflow-")
}

// call is a handler call or token task in progress while Build reads the
// history; the checks read its decoded input and output.
type call struct {
	action  *Action // nil for a token task
	wait    *Wait
	handler string
	state   string
	token   bool
	in, out map[string]any
	failed  bool
	endID   int64
	idx     int // position in actions or approvals
}

type builder struct {
	rec     *Record
	policy  Policy
	events  []types.HistoryEvent
	byID    map[int64]int
	pending map[int64]*call // by the id of the scheduling event
	calls   []*call         // every call, in the order scheduled
	input   map[string]any  // the execution's input
	exits   []exit          // state outputs, for the timeout policy
	open    []*Wait         // Wait states entered and not exited
	// rawArn and rawWorkflow are the caller's names before redaction, for
	// the secret scan.
	rawArn, rawWorkflow string
}

type exit struct {
	id  int64
	out map[string]any
}

func ts(ev *types.HistoryEvent) time.Time {
	if ev.Timestamp == nil {
		return time.Time{}
	}
	return ev.Timestamp.UTC()
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// object decodes a JSON payload; anything but an object is nil, because the
// handlers' payloads are objects and a guess about anything else would be
// evidence made up.
func object(s string) map[string]any {
	var m map[string]any
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil
	}
	return m
}

func (b *builder) event(i int) {
	ev := &b.events[i]
	switch ev.Type {
	case types.HistoryEventTypeExecutionStarted:
		b.rec.Start = ts(ev)
		if d := ev.ExecutionStartedEventDetails; d != nil {
			b.input = object(str(d.Input))
		}
	case types.HistoryEventTypeExecutionSucceeded:
		b.end(ev, "SUCCEEDED", "", "")
	case types.HistoryEventTypeExecutionFailed:
		if d := ev.ExecutionFailedEventDetails; d != nil {
			b.end(ev, "FAILED", str(d.Error), str(d.Cause))
		} else {
			b.end(ev, "FAILED", "", "")
		}
	case types.HistoryEventTypeExecutionTimedOut:
		if d := ev.ExecutionTimedOutEventDetails; d != nil {
			b.end(ev, "TIMED_OUT", str(d.Error), str(d.Cause))
		} else {
			b.end(ev, "TIMED_OUT", "", "")
		}
	case types.HistoryEventTypeExecutionAborted:
		if d := ev.ExecutionAbortedEventDetails; d != nil {
			b.end(ev, "ABORTED", str(d.Error), str(d.Cause))
		} else {
			b.end(ev, "ABORTED", "", "")
		}

	case types.HistoryEventTypeLambdaFunctionScheduled:
		if d := ev.LambdaFunctionScheduledEventDetails; d != nil {
			b.schedule(ev, handlerName(str(d.Resource)), object(str(d.Input)), false)
		}
	case types.HistoryEventTypeTaskScheduled:
		if d := ev.TaskScheduledEventDetails; d != nil {
			b.scheduleTask(ev, d)
		}
	case types.HistoryEventTypeLambdaFunctionSucceeded:
		if d := ev.LambdaFunctionSucceededEventDetails; d != nil {
			b.succeed(ev, object(str(d.Output)))
		}
	case types.HistoryEventTypeTaskSucceeded:
		if d := ev.TaskSucceededEventDetails; d != nil {
			b.succeed(ev, object(str(d.Output)))
		}
	case types.HistoryEventTypeLambdaFunctionFailed:
		if d := ev.LambdaFunctionFailedEventDetails; d != nil {
			b.fail(ev, str(d.Error))
		}
	case types.HistoryEventTypeLambdaFunctionTimedOut:
		if d := ev.LambdaFunctionTimedOutEventDetails; d != nil {
			b.fail(ev, str(d.Error))
		}
	case types.HistoryEventTypeLambdaFunctionStartFailed:
		if d := ev.LambdaFunctionStartFailedEventDetails; d != nil {
			b.fail(ev, str(d.Error))
		}
	case types.HistoryEventTypeTaskFailed:
		if d := ev.TaskFailedEventDetails; d != nil {
			b.fail(ev, str(d.Error))
		}
	case types.HistoryEventTypeTaskTimedOut:
		if d := ev.TaskTimedOutEventDetails; d != nil {
			b.fail(ev, str(d.Error))
		}
	case types.HistoryEventTypeTaskStartFailed:
		if d := ev.TaskStartFailedEventDetails; d != nil {
			b.fail(ev, str(d.Error))
		}
	case types.HistoryEventTypeTaskSubmitFailed:
		if d := ev.TaskSubmitFailedEventDetails; d != nil {
			b.fail(ev, str(d.Error))
		}

	case types.HistoryEventTypeWaitStateEntered:
		if d := ev.StateEnteredEventDetails; d != nil {
			w := &Wait{Kind: "wait", State: Redact(str(d.Name)), Start: ts(ev), Events: []int64{ev.Id}}
			b.open = append(b.open, w)
		}
	case types.HistoryEventTypeWaitStateExited, types.HistoryEventTypeWaitStateAborted:
		name := ""
		if d := ev.StateExitedEventDetails; d != nil {
			name = Redact(str(d.Name))
		}
		// The latest open wait of that name: a Wait in a loop is entered
		// again only after it exited.
		for k := len(b.open) - 1; k >= 0; k-- {
			if w := b.open[k]; name == "" || w.State == name {
				w.End = ts(ev)
				w.Events = append(w.Events, ev.Id)
				b.rec.Waits = append(b.rec.Waits, *w)
				b.open = append(b.open[:k], b.open[k+1:]...)
				break
			}
		}
	}
	if d := ev.StateExitedEventDetails; d != nil && d.Output != nil {
		if out := object(str(d.Output)); out != nil {
			b.exits = append(b.exits, exit{id: ev.Id, out: out})
		}
	}
}

func (b *builder) end(ev *types.HistoryEvent, status, errName, cause string) {
	b.rec.Status = status
	b.rec.End = ts(ev)
	b.rec.Error = Redact(errName)
	b.rec.Cause = Redact(cause)
}

// handlerName is a Lambda function's keyflow name: the function name of a
// name, a partial or a full ARN, without a version or alias, without
// "keyflow-".
func handlerName(resource string) string {
	name := resource
	if i := strings.Index(name, ":function:"); i >= 0 {
		name = name[i+len(":function:"):]
	} else {
		name = strings.TrimPrefix(name, "function:")
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	return Redact(strings.TrimPrefix(name, "keyflow-"))
}

// scheduleTask reads a service integration. For Lambda (lambda:invoke, with
// or without a token) the function and payload are in the parameters, so
// the handler is named as for a plain Lambda task.
func (b *builder) scheduleTask(ev *types.HistoryEvent, d *types.TaskScheduledEventDetails) {
	resource, rtype := str(d.Resource), str(d.ResourceType)
	params := object(str(d.Parameters))
	token := strings.HasSuffix(resource, ".waitForTaskToken")
	name := Redact(rtype + ":" + resource)
	in := params
	if rtype == "lambda" && strings.HasPrefix(resource, "invoke") {
		fn, _ := params["FunctionName"].(string)
		name = handlerName(fn)
		in, _ = params["Payload"].(map[string]any)
	}
	b.schedule(ev, name, in, token)
}

func (b *builder) schedule(ev *types.HistoryEvent, handler string, in map[string]any, token bool) {
	c := &call{handler: handler, state: b.stateOf(ev), token: token, in: in}
	if token {
		c.idx = len(b.rec.Approvals)
		b.rec.Approvals = append(b.rec.Approvals, Approval{State: c.state, Requested: ts(ev), Events: []int64{ev.Id}})
		c.wait = &Wait{Kind: "approval", State: c.state, Start: ts(ev), Events: []int64{ev.Id}}
	} else {
		c.idx = len(b.rec.Actions)
		a := Action{Handler: handler, State: c.state, Scheduled: ts(ev), Events: []int64{ev.Id}}
		a.Account, a.User = getStr(in, "accountId"), getStr(in, "userName")
		a.Key = getStr(in, "accessKeyId")
		a.Replaces = getStr(in, "oldAccessKeyId")
		a.DryRun, _ = in["dryRun"].(bool)
		b.rec.Actions = append(b.rec.Actions, a)
	}
	b.pending[ev.Id] = c
	b.calls = append(b.calls, c)
}

// stateOf is the name of the Task state that scheduled ev: the
// TaskStateEntered a few links up its chain of previous events.
func (b *builder) stateOf(ev *types.HistoryEvent) string {
	id := ev.PreviousEventId
	for range 4 {
		i, ok := b.byID[id]
		if !ok {
			return ""
		}
		p := &b.events[i]
		if p.StateEnteredEventDetails != nil {
			return Redact(str(p.StateEnteredEventDetails.Name))
		}
		if p.Id <= p.PreviousEventId {
			return ""
		}
		id = p.PreviousEventId
	}
	return ""
}

// callOf finds the call an ending event belongs to by following previous
// event ids (ended -> started -> scheduled; a Map or Parallel interleaves
// branches, so "the last one scheduled" would be wrong there). Ids must
// decrease, so a malformed history cannot loop.
func (b *builder) callOf(ev *types.HistoryEvent) *call {
	id, last := ev.PreviousEventId, ev.Id
	for range 8 {
		if c, ok := b.pending[id]; ok {
			delete(b.pending, id)
			return c
		}
		i, ok := b.byID[id]
		if !ok || id >= last {
			return nil
		}
		last, id = id, b.events[i].PreviousEventId
	}
	return nil
}

func (b *builder) succeed(ev *types.HistoryEvent, out map[string]any) {
	c := b.callOf(ev)
	if c == nil {
		return
	}
	c.endID = ev.Id
	if c.token {
		c.out = out
		a := &b.rec.Approvals[c.idx]
		a.Decision = Redact(getStr(out, "decision"))
		a.Approver = Redact(getStr(out, "approver"))
		a.ApproverArn = Redact(getStr(out, "approverArn"))
		a.At = getTime(out, "decidedAt")
		if a.At.IsZero() {
			a.At = ts(ev)
		}
		a.Reason = Redact(firstStr(out, "reason", "comment"))
		a.Events = append(a.Events, ev.Id)
		b.endWait(c, ev)
		return
	}
	// lambda:invoke without a token wraps the function's output.
	if p, ok := out["Payload"].(map[string]any); ok && out["ExecutedVersion"] != nil {
		out = p
	}
	c.out = out
	a := &b.rec.Actions[c.idx]
	a.Time = ts(ev)
	a.Events = append(a.Events, ev.Id)
	if v := getStr(out, "accountId"); v != "" {
		a.Account = v
	}
	if v := getStr(out, "userName"); v != "" {
		a.User = v
	}
	if v := getStr(out, "accessKeyId"); v != "" {
		a.Key = v
	}
	if v := getStr(out, "oldAccessKeyId"); v != "" {
		a.Replaces = v
	}
	if ids := getStrs(out, "deactivatedAccessKeyIds"); len(ids) > 0 {
		a.Keys = ids
	}
	a.Result = Redact(firstStr(out, "result", "action", "event"))
	if v, ok := out["dryRun"].(bool); ok {
		a.DryRun = v
	}
}

func (b *builder) fail(ev *types.HistoryEvent, errName string) {
	c := b.callOf(ev)
	if c == nil {
		return
	}
	c.endID, c.failed = ev.Id, true
	if errName == "" {
		errName = string(ev.Type)
	}
	if c.token {
		a := &b.rec.Approvals[c.idx]
		a.Error = Redact(errName)
		a.TimedOut = errName == "States.Timeout" || errName == "States.HeartbeatTimeout" || ev.Type == types.HistoryEventTypeTaskTimedOut
		a.Events = append(a.Events, ev.Id)
		b.endWait(c, ev)
		return
	}
	a := &b.rec.Actions[c.idx]
	a.Time = ts(ev)
	a.Error = Redact(errName)
	a.Events = append(a.Events, ev.Id)
}

func (b *builder) endWait(c *call, ev *types.HistoryEvent) {
	c.wait.End = ts(ev)
	c.wait.Events = append(c.wait.Events, ev.Id)
}

// finish closes what the history left open and fills what the events only
// imply: the timeout policy's decision, the subject, the wait durations.
func (b *builder) finish() {
	for _, w := range b.open {
		b.rec.Waits = append(b.rec.Waits, *w)
	}
	for _, c := range b.calls {
		if c.token {
			b.rec.Waits = append(b.rec.Waits, *c.wait)
		}
	}
	for i := range b.rec.Approvals {
		a := &b.rec.Approvals[i]
		if !a.TimedOut {
			continue
		}
		// The workflow records the policy it applied as an "approval"
		// object with timedOut in a later state's output (the quarantine's
		// ApplyDefaultDecision); take the first one after the timeout.
		last := a.Events[len(a.Events)-1]
		for _, x := range b.exits {
			if x.id <= last {
				continue
			}
			if p, ok := x.out["approval"].(map[string]any); ok && p["timedOut"] == true {
				a.Decision = Redact(getStr(p, "decision"))
				a.Approver = Redact(getStr(p, "approver"))
				a.At = getTime(p, "decidedAt")
				a.Events = append(a.Events, x.id)
				break
			}
		}
	}
	for i := range b.rec.Waits {
		w := &b.rec.Waits[i]
		if !w.End.IsZero() && !w.Start.IsZero() {
			w.Seconds = int64(w.End.Sub(w.Start) / time.Second)
		}
	}
	// Waits in the order they began; the two kinds were gathered apart.
	sort.SliceStable(b.rec.Waits, func(i, j int) bool { return b.rec.Waits[i].Events[0] < b.rec.Waits[j].Events[0] })

	s := &b.rec.Subject
	s.Account, s.User, s.Key = getStr(b.input, "accountId"), getStr(b.input, "userName"), getStr(b.input, "accessKeyId")
	if s.Account == "" && s.User == "" {
		// A quarantine starts from the CloudTrail event.
		if d, ok := b.input["detail"].(map[string]any); ok {
			if u, ok := d["userIdentity"].(map[string]any); ok {
				s.Account, s.User = getStr(u, "accountId"), getStr(u, "userName")
			}
		}
	}
	for _, a := range b.rec.Actions {
		if s.Account == "" {
			s.Account = a.Account
		}
		if s.User == "" {
			s.User = a.User
		}
	}
	s.Account, s.User, s.Key = Redact(s.Account), Redact(s.User), Redact(s.Key)
	for i := range b.rec.Actions {
		a := &b.rec.Actions[i]
		a.Account, a.User, a.Key, a.Replaces = Redact(a.Account), Redact(a.User), Redact(a.Key), Redact(a.Replaces)
		for k := range a.Keys {
			a.Keys[k] = Redact(a.Keys[k])
		}
	}
}

func getStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func firstStr(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s := getStr(m, k); s != "" {
			return s
		}
	}
	return ""
}

func getStrs(m map[string]any, k string) []string {
	l, _ := m[k].([]any)
	var out []string
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// getTime reads an RFC 3339 field; a missing or malformed one is zero, and
// a check that needs it says so rather than guess.
func getTime(m map[string]any, k string) time.Time {
	s := getStr(m, k)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
