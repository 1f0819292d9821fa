package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

// Decision is the outcome of evaluating a request.
type Decision int

// Decisions, in the order IAM ranks them: ExplicitDeny beats Allow beats
// ImplicitDeny.
const (
	ImplicitDeny Decision = iota
	Allowed
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// Request is one API call as the policies see it.
type Request struct {
	// Action is "service:Action", e.g. "iam:EnableMFADevice".
	Action string
	// Resource is the ARN acted on, or "*" for actions without resources.
	Resource string
	// Context holds the request's condition keys ("aws:MultiFactorAuthPresent",
	// "aws:SourceIp", "aws:username"); names are case-insensitive, as in IAM.
	// A key that is absent is absent: that is what ...IfExists tests.
	Context map[string][]string
}

// Result says what decided: the policy (its index in the arguments) and
// the statement (its index and Sid). Policy is -1 for an implicit deny.
type Result struct {
	Decision  Decision
	Policy    int
	Statement int
	Sid       string
}

// Evaluate decides req against docs, the identity-based policies that
// apply to the caller. It refuses a document Validate refuses, rather than
// guess what an unknown operator means.
func Evaluate(req Request, docs ...*Document) (Result, error) {
	for i, d := range docs {
		if d == nil {
			return Result{}, &Error{Pointer: fmt.Sprintf("policy %d", i), Reason: "is nil"}
		}
		if err := d.Validate(); err != nil {
			return Result{}, err
		}
	}
	ctx := make(map[string][]string, len(req.Context))
	for k, v := range req.Context {
		ctx[strings.ToLower(k)] = v
	}
	res := Result{Decision: ImplicitDeny, Policy: -1, Statement: -1}
	for i, d := range docs {
		for j, s := range d.Statement {
			if !s.applies(req, ctx) {
				continue
			}
			if s.Effect == Deny {
				return Result{Decision: ExplicitDeny, Policy: i, Statement: j, Sid: s.Sid}, nil
			}
			if res.Decision == ImplicitDeny {
				res = Result{Decision: Allowed, Policy: i, Statement: j, Sid: s.Sid}
			}
		}
	}
	return res, nil
}

func (s *Statement) applies(req Request, ctx map[string][]string) bool {
	if len(s.Action) > 0 && !anyAction(s.Action, req.Action) {
		return false
	}
	if len(s.NotAction) > 0 && anyAction(s.NotAction, req.Action) {
		return false
	}
	if len(s.Resource) > 0 && !anyResource(s.Resource, req.Resource, ctx) {
		return false
	}
	if len(s.NotResource) > 0 && anyResource(s.NotResource, req.Resource, ctx) {
		return false
	}
	for op, keys := range s.Condition {
		for k, vs := range keys {
			if !condition(op, vs, ctx[strings.ToLower(k)], hasKey(ctx, k), ctx) {
				return false
			}
		}
	}
	return true
}

func hasKey(ctx map[string][]string, k string) bool {
	v, ok := ctx[strings.ToLower(k)]
	return ok && len(v) > 0
}

// Action names are case-insensitive in IAM; resources are not.
func anyAction(patterns Values, action string) bool {
	for _, p := range patterns {
		if glob(strings.ToLower(p), strings.ToLower(action)) {
			return true
		}
	}
	return false
}

func anyResource(patterns Values, resource string, ctx map[string][]string) bool {
	for _, p := range patterns {
		if p, ok := substitute(p, ctx); ok && glob(p, resource) {
			return true
		}
	}
	return false
}

// substitute replaces ${key} with the request's value of key, and the
// escapes ${*}, ${?} and ${$} with the literal characters. A variable the
// request lacks makes the pattern match nothing, as in IAM (we do not
// implement default values).
func substitute(p string, ctx map[string][]string) (string, bool) {
	if !strings.Contains(p, "${") {
		return p, true
	}
	var b strings.Builder
	for {
		i := strings.Index(p, "${")
		if i < 0 {
			b.WriteString(p)
			return b.String(), true
		}
		j := strings.IndexByte(p[i:], '}')
		if j < 0 {
			b.WriteString(p)
			return b.String(), true
		}
		b.WriteString(p[:i])
		name := p[i+2 : i+j]
		switch name {
		case "*", "?", "$":
			// A literal wildcard character: escaped so glob reads it as text.
			b.WriteString("\x00" + name)
		default:
			v := ctx[strings.ToLower(name)]
			if len(v) != 1 {
				return "", false
			}
			b.WriteString(escape(v[0]))
		}
		p = p[i+j+1:]
	}
}

// escape protects wildcard characters in substituted values: a user named
// "*" must not match every user's resource.
func escape(s string) string {
	if !strings.ContainsAny(s, "*?\x00") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '*' || r == '?' || r == 0 {
			b.WriteByte(0)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// glob matches s against a pattern of * (any run) and ? (one character),
// where a NUL byte makes the next character literal. It backtracks only to
// the last star, so it is linear in practice and O(len(p)*len(s)) at worst.
func glob(p, s string) bool {
	pr, sr := []rune(p), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(sr) {
		if pi < len(pr) {
			c, lit := pr[pi], false
			step := 1
			if c == 0 && pi+1 < len(pr) {
				c, lit, step = pr[pi+1], true, 2
			}
			switch {
			case !lit && c == '*':
				star, mark = pi, si
				pi++
				continue
			case (!lit && c == '?') || c == sr[si]:
				pi += step
				si++
				continue
			}
		}
		if star < 0 {
			return false
		}
		pi = star + 1
		mark++
		si = mark
	}
	for pi < len(pr) && pr[pi] == '*' {
		pi++
	}
	return pi == len(pr)
}

type opKind int

const (
	opString opKind = iota
	opStringIgnoreCase
	opLike
	opBool
	opIP
	opNull
)

type operator struct {
	kind    opKind
	negated bool
}

var operators = map[string]operator{
	"StringEquals":              {opString, false},
	"StringNotEquals":           {opString, true},
	"StringEqualsIgnoreCase":    {opStringIgnoreCase, false},
	"StringNotEqualsIgnoreCase": {opStringIgnoreCase, true},
	"StringLike":                {opLike, false},
	"StringNotLike":             {opLike, true},
	"ArnEquals":                 {opLike, false},
	"ArnLike":                   {opLike, false},
	"ArnNotEquals":              {opLike, true},
	"ArnNotLike":                {opLike, true},
	"Bool":                      {opBool, false},
	"IpAddress":                 {opIP, false},
	"NotIpAddress":              {opIP, true},
	"Null":                      {opNull, false},
}

// condition evaluates one operator on one key. IAM's rule for an absent
// key: ...IfExists is true; Null "true" is true; a negated operator is
// true; every other operator is false.
func condition(op string, want Values, got []string, present bool, ctx map[string][]string) bool {
	base, ifExists := strings.CutSuffix(op, "IfExists")
	o := operators[base]
	if o.kind == opNull {
		return strings.EqualFold(want[0], "true") != present
	}
	if !present {
		return ifExists || o.negated
	}
	match := false
	for _, g := range got {
		for _, w := range want {
			if matches(o.kind, w, g, ctx) {
				match = true
			}
		}
	}
	return match != o.negated
}

func matches(kind opKind, want, got string, ctx map[string][]string) bool {
	switch kind {
	case opString:
		w, ok := substitute(want, ctx)
		return ok && strings.ReplaceAll(w, "\x00", "") == got
	case opStringIgnoreCase:
		w, ok := substitute(want, ctx)
		return ok && strings.EqualFold(strings.ReplaceAll(w, "\x00", ""), got)
	case opLike:
		w, ok := substitute(want, ctx)
		return ok && glob(w, got)
	case opBool:
		return strings.EqualFold(want, got)
	case opIP:
		p, err := parsePrefix(want)
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(got)
		return err == nil && p.Contains(a.Unmap())
	}
	return false
}
