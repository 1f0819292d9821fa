package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Version is the only policy language version that supports policy
// variables; the MFA policy needs ${aws:username}.
const Version = "2012-10-17"

// maxDocument bounds what Parse reads. IAM's own limit for a managed policy
// is 6,144 characters without whitespace; anything far larger is not a
// policy and must not cost the evaluator unbounded work.
const maxDocument = 64 << 10

// Effect is Allow or Deny.
type Effect string

// The two effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Document is an IAM identity-based policy document.
type Document struct {
	Version   string      `json:"Version"`
	ID        string      `json:"Id,omitempty"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement. Exactly one of Action and NotAction, and one
// of Resource and NotResource, is set.
type Statement struct {
	Sid         string    `json:"Sid,omitempty"`
	Effect      Effect    `json:"Effect"`
	Action      Values    `json:"Action,omitempty"`
	NotAction   Values    `json:"NotAction,omitempty"`
	Resource    Values    `json:"Resource,omitempty"`
	NotResource Values    `json:"NotResource,omitempty"`
	Condition   Condition `json:"Condition,omitempty"`
}

// Condition maps an operator ("BoolIfExists") to context keys and the
// values they are compared with. Keys under one operator, and operators,
// are ANDed; the values of one key are ORed.
type Condition map[string]map[string]Values

// Values is a list that IAM writes as a bare string when it has one
// element. Condition values that IAM accepts as JSON booleans or numbers
// are kept as their text.
type Values []string

// MarshalJSON writes one value as a string, as IAM's console does, so that
// generated documents read like the ones in AWS's documentation.
func (v Values) MarshalJSON() ([]byte, error) {
	if len(v) == 1 {
		return json.Marshal(v[0])
	}
	return json.Marshal([]string(v))
}

// UnmarshalJSON accepts a string, a boolean, a number or a list of them.
func (v *Values) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		out := make(Values, 0, len(raw))
		for _, r := range raw {
			s, err := scalar(r)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		*v = out
		return nil
	}
	s, err := scalar(b)
	if err != nil {
		return err
	}
	*v = Values{s}
	return nil
}

func scalar(b []byte) (string, error) {
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return "", err
	}
	switch x := x.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return string(bytes.TrimSpace(b)), nil
	}
	return "", fmt.Errorf("want a string, boolean or number, got %s", preview(string(b)))
}

// Error is a document Parse or Validate refuses, at a JSON pointer.
type Error struct {
	Pointer string
	Reason  string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("policy: %s: %s: %v", e.Pointer, e.Reason, e.Err)
	}
	return fmt.Sprintf("policy: %s: %s", e.Pointer, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// Parse reads and validates one policy document.
func Parse(data []byte) (*Document, error) {
	if len(data) > maxDocument {
		return nil, &Error{Pointer: "/", Reason: fmt.Sprintf("document of %d bytes is larger than %d", len(data), maxDocument)}
	}
	var top struct {
		Version   string          `json:"Version"`
		ID        string          `json:"Id"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := strict(data, &top, "Version", "Id", "Statement"); err != nil {
		return nil, &Error{Pointer: "/", Reason: "not a policy document", Err: err}
	}
	doc := &Document{Version: top.Version, ID: top.ID}
	raw := bytes.TrimSpace(top.Statement)
	var items []json.RawMessage
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		return nil, &Error{Pointer: "/Statement", Reason: "is missing"}
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, &Error{Pointer: "/Statement", Reason: "not a list of statements", Err: err}
		}
	default:
		items = []json.RawMessage{raw}
	}
	for i, it := range items {
		var s Statement
		if err := strict(it, &s, "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"); err != nil {
			return nil, &Error{Pointer: fmt.Sprintf("/Statement/%d", i), Reason: "not a statement", Err: err}
		}
		// An empty list or block says nothing; kept, it would make two
		// equal documents differ.
		for _, v := range []*Values{&s.Action, &s.NotAction, &s.Resource, &s.NotResource} {
			if len(*v) == 0 {
				*v = nil
			}
		}
		if len(s.Condition) == 0 {
			s.Condition = nil
		}
		doc.Statement = append(doc.Statement, s)
	}
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	return doc, nil
}

// strict decodes refusing unknown fields: a Principal or a misspelt
// "NotResouce" silently dropped would change what the policy means. IAM's
// element names are case-sensitive, encoding/json's are not, so the names
// are checked first.
func strict(data []byte, v any, fields ...string) error {
	var names map[string]json.RawMessage
	if err := json.Unmarshal(data, &names); err != nil {
		return err
	}
	for k := range names {
		if !slices.Contains(fields, k) {
			return fmt.Errorf("unknown field %q", preview(k))
		}
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after the document")
	}
	return nil
}

// Validate checks what IAM checks for an identity-based policy, and that
// every condition is one Evaluate understands.
func (d *Document) Validate() error {
	if d.Version != Version {
		return &Error{Pointer: "/Version", Reason: fmt.Sprintf("%q is not %q, the version that supports policy variables", preview(d.Version), Version)}
	}
	if len(d.Statement) == 0 {
		return &Error{Pointer: "/Statement", Reason: "is empty"}
	}
	sids := map[string]bool{}
	for i, s := range d.Statement {
		at := fmt.Sprintf("/Statement/%d", i)
		if s.Sid != "" {
			if sids[s.Sid] {
				return &Error{Pointer: at + "/Sid", Reason: fmt.Sprintf("duplicate Sid %q", preview(s.Sid))}
			}
			sids[s.Sid] = true
		}
		if s.Effect != Allow && s.Effect != Deny {
			return &Error{Pointer: at + "/Effect", Reason: fmt.Sprintf("%q is neither Allow nor Deny", preview(string(s.Effect)))}
		}
		if (len(s.Action) == 0) == (len(s.NotAction) == 0) {
			return &Error{Pointer: at, Reason: "needs exactly one of Action and NotAction"}
		}
		if (len(s.Resource) == 0) == (len(s.NotResource) == 0) {
			return &Error{Pointer: at, Reason: "needs exactly one of Resource and NotResource"}
		}
		for j, a := range slices.Concat(s.Action, s.NotAction) {
			if a != "*" && !validAction(a) {
				return &Error{Pointer: fmt.Sprintf("%s/Action/%d", at, j), Reason: fmt.Sprintf("%q is not service:action", preview(a))}
			}
		}
		for op, keys := range s.Condition {
			if err := validCondition(op, keys); err != nil {
				err.Pointer = at + "/Condition/" + op + err.Pointer
				return err
			}
		}
	}
	return nil
}

func validAction(a string) bool {
	svc, name, ok := strings.Cut(a, ":")
	return ok && svc != "" && name != "" && !strings.ContainsAny(svc, "*?:") && !strings.Contains(name, ":")
}

func validCondition(op string, keys map[string]Values) *Error {
	base, _ := strings.CutSuffix(op, "IfExists")
	kind, ok := operators[base]
	if !ok || (base == "Null" && base != op) {
		return &Error{Reason: fmt.Sprintf("unsupported condition operator %q", preview(op))}
	}
	if len(keys) == 0 {
		return &Error{Reason: "has no condition keys"}
	}
	for k, vs := range keys {
		if len(vs) == 0 {
			return &Error{Pointer: "/" + k, Reason: "has no values"}
		}
		for _, v := range vs {
			switch kind.kind {
			case opBool, opNull:
				if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
					return &Error{Pointer: "/" + k, Reason: fmt.Sprintf("%q is not true or false", preview(v))}
				}
			case opIP:
				if _, err := parsePrefix(v); err != nil {
					return &Error{Pointer: "/" + k, Reason: fmt.Sprintf("%q is not an IP address or CIDR range", preview(v))}
				}
			}
		}
	}
	return nil
}

// parsePrefix reads a CIDR range or a single address, which IAM treats as
// the range of that one address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// JSON is the document as IAM takes it, indented for people and golden
// files.
func (d *Document) JSON() ([]byte, error) {
	return json.MarshalIndent(d, "", "  ")
}

func preview(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
