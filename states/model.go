// Package states is the Amazon States Language in Go: a type for every state
// and field, decoding by "Type" into a closed set of state types, encoding
// back to an equal document, a builder for writing state machines in code,
// and static validation that reports every problem with its JSON pointer.
//
// states imports nothing of keyflow outside its own subpackages (jsonpath,
// intrinsic, payload, data, failure), which it uses to check paths, intrinsic
// calls and payload templates at validation time.
//
// A Definition is a plain value: it never holds run state (retry counters,
// Map progress, timers); the engine keeps those in the execution.
package states

import "encoding/json"

// QueryLanguage is "JSONPath" (the default) or "JSONata".
type QueryLanguage string

const (
	JSONPath QueryLanguage = "JSONPath"
	JSONata  QueryLanguage = "JSONata"
)

// StateType is the value of a state's "Type" field.
type StateType string

const (
	TypePass     StateType = "Pass"
	TypeTask     StateType = "Task"
	TypeChoice   StateType = "Choice"
	TypeWait     StateType = "Wait"
	TypeSucceed  StateType = "Succeed"
	TypeFail     StateType = "Fail"
	TypeParallel StateType = "Parallel"
	TypeMap      StateType = "Map"
)

// Definition is a whole state machine.
type Definition struct {
	Comment        string
	StartAt        string
	States         States
	Version        string
	TimeoutSeconds *int64
	QueryLanguage  QueryLanguage // empty means not set (JSONPath)

	// positions numbers the JSON pointer of every field, array element
	// and state that Decode met, in document order, so that Validate can
	// report problems in the order a reader meets them. It is nil for a
	// built definition, which has no document; Validate then falls back
	// to state order and the usual order of fields.
	positions map[string]int
}

// Branch is a Parallel branch or a Map's ItemProcessor/Iterator: a state
// machine without top-level Version/TimeoutSeconds.
type Branch struct {
	Comment       string
	StartAt       string
	States        States
	QueryLanguage QueryLanguage
	// ProcessorConfig is set only on a Map's ItemProcessor.
	ProcessorConfig *ProcessorConfig
}

// States maps state names to states. Order is kept as written so that
// encoding reproduces the document and validation reports in a stable order.
type States struct {
	Names  []string
	ByName map[string]State
}

// State is one of the closed set of state types: *Pass, *Task, *Choice,
// *Wait, *Succeed, *Fail, *Parallel, *Map.
type State interface {
	Type() StateType
	Common() *CommonFields
	state() // seals the set
}

// PathField is a path-valued field (InputPath, OutputPath, ResultPath) that
// may also be JSON null, which AWS reads as "the empty object" for InputPath
// and OutputPath and "discard the result" for ResultPath. A nil *PathField
// means the field is absent (default "$").
type PathField struct {
	Path string
	Null bool
}

// IntExpr is an integer field that, under JSONata, may instead be a
// "{% expression %}" string (TimeoutSeconds, Seconds, MaxConcurrency, ...).
type IntExpr struct {
	Value int64
	Expr  string // non-empty for a JSONata expression
}

// FloatExpr is like IntExpr for fields that take decimals
// (ToleratedFailurePercentage).
type FloatExpr struct {
	Value float64
	Expr  string
}

// CommonFields are the fields several state types share. Which of them a
// state type admits is checked when decoding and validating; a field that is
// not admitted is a problem, never silently dropped.
type CommonFields struct {
	Comment       string
	QueryLanguage QueryLanguage
	Next          string
	End           bool
	InputPath     *PathField
	OutputPath    *PathField
	// Assign maps variable names to values; under JSONPath, keys ending in
	// ".$" are paths or intrinsic calls.
	Assign map[string]any
	// Output replaces InputPath/OutputPath under JSONata.
	Output any
}

// Common gives the engine and validator one view of the shared fields.
func (c *CommonFields) Common() *CommonFields { return c }

// Pass passes its input (or Result) to its output.
type Pass struct {
	CommonFields
	Parameters any // JSON value; object keys ending in ".$" are templates
	Result     any
	HasResult  bool // distinguishes "Result": null from no Result
	ResultPath *PathField
}

// Task runs one unit of work named by Resource.
type Task struct {
	CommonFields
	Resource             string
	Parameters           any
	Arguments            any // JSONata
	ResultSelector       any
	ResultPath           *PathField
	Retry                []Retrier
	Catch                []Catcher
	TimeoutSeconds       *IntExpr
	TimeoutSecondsPath   string
	HeartbeatSeconds     *IntExpr
	HeartbeatSecondsPath string
	Credentials          any // {"RoleArn": "..."} or {"RoleArn.$": "..."}
}

// Choice picks the first rule that matches, else Default.
type Choice struct {
	CommonFields
	Choices []ChoiceRule
	Default string
}

// ChoiceRule is a top-level rule (with Next) or a nested one inside And, Or
// or Not (without Next). Exactly one comparison, or one of And/Or/Not, or
// (under JSONata) Condition is set.
type ChoiceRule struct {
	Comment  string
	Variable string
	// Operator is the comparison's field name, e.g. "StringEquals",
	// "NumericGreaterThanEqualsPath", "IsPresent". Value is its operand as
	// decoded JSON (a string for *Path operators and timestamps).
	Operator string
	Value    any
	And      []ChoiceRule
	Or       []ChoiceRule
	Not      *ChoiceRule
	// Condition is the JSONata form: a "{% ... %}" string or a boolean.
	Condition any
	Next      string
	Assign    map[string]any
	Output    any
}

// Wait delays for a time or until a timestamp; exactly one of the four
// forms is set.
type Wait struct {
	CommonFields
	Seconds       *IntExpr
	SecondsPath   string
	Timestamp     string // RFC 3339, or a JSONata expression
	TimestampPath string
}

// Succeed ends the execution (or branch) successfully.
type Succeed struct {
	CommonFields
}

// Fail ends the execution (or branch) with an error and a cause.
type Fail struct {
	CommonFields
	Error     string
	ErrorPath string
	Cause     string
	CausePath string
}

// Parallel runs its branches at once and outputs their results in order.
type Parallel struct {
	CommonFields
	Branches       []Branch
	Parameters     any
	Arguments      any
	ResultSelector any
	ResultPath     *PathField
	Retry          []Retrier
	Catch          []Catcher
}

// Map runs its ItemProcessor once per item.
type Map struct {
	CommonFields
	// ItemProcessor is the processor; when the definition used the legacy
	// "Iterator" field, LegacyIterator is true and encoding writes Iterator.
	ItemProcessor  *Branch
	LegacyIterator bool
	ItemsPath      *PathField
	Items          any // JSONata: an array or an expression
	ItemSelector   any
	// Parameters is the legacy name of ItemSelector.
	Parameters                     any
	ItemReader                     *ItemReader
	ItemBatcher                    *ItemBatcher
	ResultWriter                   *ResultWriter
	MaxConcurrency                 *IntExpr
	MaxConcurrencyPath             string
	ToleratedFailurePercentage     *FloatExpr
	ToleratedFailurePercentagePath string
	ToleratedFailureCount          *IntExpr
	ToleratedFailureCountPath      string
	Label                          string
	ResultSelector                 any
	ResultPath                     *PathField
	Retry                          []Retrier
	Catch                          []Catcher
}

// ProcessorConfig selects inline or distributed processing of a Map.
type ProcessorConfig struct {
	Mode          string // "INLINE" (default) or "DISTRIBUTED"
	ExecutionType string // "STANDARD" or "EXPRESS", distributed only
}

// ItemReader reads a distributed Map's items from S3 (or another resource).
type ItemReader struct {
	Resource     string
	Parameters   any
	Arguments    any
	ReaderConfig map[string]any // InputType, CSVHeaderLocation, MaxItems, ...
}

// ItemBatcher groups a distributed Map's items into batches.
type ItemBatcher struct {
	MaxItemsPerBatch          *IntExpr
	MaxItemsPerBatchPath      string
	MaxInputBytesPerBatch     *IntExpr
	MaxInputBytesPerBatchPath string
	BatchInput                any
}

// ResultWriter writes a distributed Map's results to S3.
type ResultWriter struct {
	Resource     string
	Parameters   any
	Arguments    any
	WriterConfig map[string]any
}

// Retrier retries a failed state whose error matches ErrorEquals.
type Retrier struct {
	Comment         string
	ErrorEquals     []string
	IntervalSeconds *int64   // default 1
	MaxAttempts     *int64   // default 3; 0 means never retry
	BackoffRate     *float64 // default 2.0
	MaxDelaySeconds *int64
	JitterStrategy  string // "FULL" or "NONE" (default)
}

// Catcher moves to Next when a state's error matches ErrorEquals (after
// retries are exhausted).
type Catcher struct {
	Comment     string
	ErrorEquals []string
	Next        string
	ResultPath  *PathField
	Assign      map[string]any
	Output      any
}

func (*Pass) Type() StateType     { return TypePass }
func (*Task) Type() StateType     { return TypeTask }
func (*Choice) Type() StateType   { return TypeChoice }
func (*Wait) Type() StateType     { return TypeWait }
func (*Succeed) Type() StateType  { return TypeSucceed }
func (*Fail) Type() StateType     { return TypeFail }
func (*Parallel) Type() StateType { return TypeParallel }
func (*Map) Type() StateType      { return TypeMap }

func (*Pass) state()     {}
func (*Task) state()     {}
func (*Choice) state()   {}
func (*Wait) state()     {}
func (*Succeed) state()  {}
func (*Fail) state()     {}
func (*Parallel) state() {}
func (*Map) state()      {}

// The decoder, encoder and validator live in decode.go, encode.go and
// validate.go; these assertions keep the closed set honest.
var (
	_ State = (*Pass)(nil)
	_ State = (*Task)(nil)
	_ State = (*Choice)(nil)
	_ State = (*Wait)(nil)
	_ State = (*Succeed)(nil)
	_ State = (*Fail)(nil)
	_ State = (*Parallel)(nil)
	_ State = (*Map)(nil)

	_ json.Marshaler = (*Definition)(nil)
)

// Parse decodes a definition and validates it. The error, when not nil, is
// a *ValidationError that lists every problem found, decoding and semantic
// alike, each with its JSON pointer.
func Parse(doc []byte) (*Definition, error) {
	def, err := Decode(doc)
	if err != nil {
		return def, err
	}
	return def, Validate(def)
}

// Problem is one thing wrong with a definition.
type Problem struct {
	Pointer string // JSON pointer, e.g. "/States/Rotate/Next"
	Message string // plain, lower case, e.g. `no state named "Notfy"`
}

func (p Problem) String() string {
	if p.Pointer == "" {
		return p.Message // the whole document, e.g. not valid JSON
	}
	return p.Pointer + ": " + p.Message
}

// ValidationError lists every problem of a definition, sorted by pointer
// order in the document, capped at a few hundred.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	msg := "states: invalid definition"
	for i, p := range e.Problems {
		if i == 0 {
			msg += ": "
		} else {
			msg += "; "
		}
		msg += p.String()
	}
	return msg
}
