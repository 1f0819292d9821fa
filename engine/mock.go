package engine

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/keyflow/keyflow/states/data"
)

// MockConfig is a mock file of AWS Step Functions Local:
//
//	{"StateMachines": {"SM": {"TestCases": {"Case": {"State": "ResponseName"}}}},
//	 "MockedResponses": {"ResponseName": {"0": {"Return": {...}},
//	                                      "1-2": {"Throw": {"Error": "E", "Cause": "c"}}}}}
type MockConfig struct {
	machines  map[string]map[string]map[string]string // machine -> case -> state -> response
	responses map[string]mockResponse
}

// MockCase is the mocked responses of one test case, by state name.
type MockCase struct {
	byState map[string]mockResponse
}

// mockResponse answers invocation n (0-based, counted per state over the
// whole execution, retries included) with the entry whose range holds n.
type mockResponse []mockEntry

type mockEntry struct {
	from, to int
	ret      any
	hasRet   bool
	errName  string
	cause    string
}

type mockFile struct {
	StateMachines map[string]struct {
		TestCases map[string]map[string]string
	}
	MockedResponses map[string]map[string]json.RawMessage
}

// ParseMockConfig reads a Step Functions Local mock file.
func ParseMockConfig(doc []byte) (*MockConfig, error) {
	var f mockFile
	if err := json.Unmarshal(doc, &f); err != nil {
		return nil, fmt.Errorf("engine: mock config: %w", err)
	}
	c := &MockConfig{machines: map[string]map[string]map[string]string{}, responses: map[string]mockResponse{}}
	for name, r := range f.MockedResponses {
		resp, err := parseMockResponse(r)
		if err != nil {
			return nil, fmt.Errorf("engine: mock config: MockedResponses %q: %w", name, err)
		}
		c.responses[name] = resp
	}
	for sm, def := range f.StateMachines {
		cases := map[string]map[string]string{}
		for tc, states := range def.TestCases {
			for state, resp := range states {
				if _, ok := c.responses[resp]; !ok {
					return nil, fmt.Errorf("engine: mock config: StateMachines %q test case %q state %q: no mocked response named %q", sm, tc, state, resp)
				}
			}
			cases[tc] = states
		}
		c.machines[sm] = cases
	}
	return c, nil
}

// StateMachines lists the machine names of the file, sorted.
func (c *MockConfig) StateMachines() []string {
	var names []string
	for n := range c.machines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Case returns the mocked responses of one test case of one machine. An
// empty stateMachine picks the file's only machine.
func (c *MockConfig) Case(stateMachine, testCase string) (*MockCase, error) {
	if stateMachine == "" {
		names := c.StateMachines()
		if len(names) != 1 {
			return nil, fmt.Errorf("engine: mock config names %d state machines %v: say which", len(names), names)
		}
		stateMachine = names[0]
	}
	cases, ok := c.machines[stateMachine]
	if !ok {
		return nil, fmt.Errorf("engine: mock config: no state machine %q", stateMachine)
	}
	tc, ok := cases[testCase]
	if !ok {
		return nil, fmt.Errorf("engine: mock config: state machine %q has no test case %q", stateMachine, testCase)
	}
	mc := &MockCase{byState: map[string]mockResponse{}}
	for state, resp := range tc {
		mc.byState[state] = c.responses[resp]
	}
	return mc, nil
}

// NewMockCase builds a case straight from responses by state name, each in
// the MockedResponses form ({"0": {"Return": ...}, "1-2": {"Throw": ...}}).
func NewMockCase(byState map[string]json.RawMessage) (*MockCase, error) {
	mc := &MockCase{byState: map[string]mockResponse{}}
	for state, raw := range byState {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("engine: mocked response of %q: %w", state, err)
		}
		r, err := parseMockResponse(m)
		if err != nil {
			return nil, fmt.Errorf("engine: mocked response of %q: %w", state, err)
		}
		mc.byState[state] = r
	}
	return mc, nil
}

func parseMockResponse(m map[string]json.RawMessage) (mockResponse, error) {
	var r mockResponse
	for key, raw := range m {
		from, to, err := parseRange(key)
		if err != nil {
			return nil, err
		}
		var body struct {
			Return json.RawMessage
			Throw  *struct{ Error, Cause string }
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			return nil, fmt.Errorf("invocation %q: %w", key, err)
		}
		ent := mockEntry{from: from, to: to}
		switch {
		case body.Throw != nil:
			ent.errName, ent.cause = body.Throw.Error, body.Throw.Cause
		case body.Return != nil:
			v, err := data.Parse(body.Return)
			if err != nil {
				return nil, fmt.Errorf("invocation %q: Return: %w", key, err)
			}
			ent.ret, ent.hasRet = v, true
		default:
			return nil, fmt.Errorf("invocation %q: neither Return nor Throw", key)
		}
		r = append(r, ent)
	}
	sort.Slice(r, func(i, j int) bool { return r[i].from < r[j].from })
	return r, nil
}

func parseRange(key string) (int, int, error) {
	a, b, ok := strings.Cut(key, "-")
	from, err := strconv.Atoi(a)
	if err != nil || from < 0 {
		return 0, 0, fmt.Errorf("invalid invocation key %q", key)
	}
	to := from
	if ok {
		to, err = strconv.Atoi(b)
		if err != nil || to < from {
			return 0, 0, fmt.Errorf("invalid invocation key %q", key)
		}
	}
	return from, to, nil
}

func (c *MockCase) has(state string) bool {
	if c == nil {
		return false
	}
	_, ok := c.byState[state]
	return ok
}

// answer returns the mocked response of invocation n of state.
func (r mockResponse) answer(n int) (mockEntry, bool) {
	for _, e := range r {
		if n >= e.from && n <= e.to {
			return e, true
		}
	}
	return mockEntry{}, false
}
