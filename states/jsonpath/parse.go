package jsonpath

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ohler55/ojg/jp"

	"github.com/keyflow/keyflow/states/data"
)

// MaxLength bounds the source text of a path. AWS limits a definition to
// 1 MiB; no path needs more than this.
const MaxLength = 16384

// SyntaxError is a path that does not parse.
type SyntaxError struct {
	Kind   string // "path" or "reference path"
	Path   string // the source text
	Offset int    // byte offset of the problem in Path
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "jsonpath: invalid " + e.Kind + " " + data.Quote(e.Path, 64) + ": " + e.Msg
}

type rootKind uint8

const (
	rootInput rootKind = iota
	rootContext
	rootVar
)

type stepKind uint8

const (
	stepKey     stepKind = iota // .name, ['name']
	stepIndex                   // [n]
	stepWild                    // .*, [*]
	stepSlice                   // [a:b:c]
	stepKeys                    // ['a','b']
	stepIndexes                 // [1,2]
	stepFilter                  // [?(...)]
	stepDescent                 // ..x: sub applied at every level
)

type step struct {
	kind    stepKind
	key     string
	index   int
	keys    []string
	indexes []int
	slice   [3]int // start, end, step; sliceUnset when absent
	filter  *jp.Filter
	rootRef bool  // the filter refers to "$"
	sub     *step // for stepDescent
}

const sliceUnset = int(^uint(0) >> 1) // max int

// parsed is the result of parsing a path's source.
type parsed struct {
	root     rootKind
	varName  string
	steps    []step
	length   bool // ends in .length()
	definite bool
	norm     string // Jayway's normalized form, for messages
}

type parser struct {
	src  string
	kind string
	pos  int
}

func (p *parser) fail(off int, msg string) *SyntaxError {
	return &SyntaxError{Kind: p.kind, Path: p.src, Offset: off, Msg: msg}
}

func parse(src, kind string) (*parsed, error) {
	p := &parser{src: src, kind: kind}
	if len(src) > MaxLength {
		return nil, p.fail(0, "longer than "+strconv.Itoa(MaxLength)+" bytes")
	}
	if !utf8.ValidString(src) {
		return nil, p.fail(0, "invalid UTF-8")
	}
	if src == "" {
		return nil, p.fail(0, "empty")
	}
	if src[0] != '$' {
		return nil, p.fail(0, "must start with '$'")
	}
	out := &parsed{definite: true}
	p.pos = 1
	switch {
	case strings.HasPrefix(src, "$$"):
		out.root = rootContext
		p.pos = 2
	case len(src) > 1 && isIdentStart(src[1:]):
		out.root = rootVar
		start := p.pos
		for p.pos < len(src) {
			r, size := utf8.DecodeRuneInString(src[p.pos:])
			if !isIdentRune(r) {
				break
			}
			p.pos += size
		}
		out.varName = src[start:p.pos]
	}
	for p.pos < len(src) {
		c := src[p.pos]
		switch c {
		case '.':
			if strings.HasPrefix(src[p.pos:], "..") {
				start := p.pos
				p.pos += 2
				var sub step
				var err error
				switch {
				case p.pos >= len(src):
					return nil, p.fail(start, "deep scan '..' needs a name, '*' or a bracket after it")
				case src[p.pos] == '[':
					sub, err = p.bracket()
				case src[p.pos] == '*':
					p.pos++
					sub = step{kind: stepWild}
				default:
					var name string
					name, err = p.name()
					sub = step{kind: stepKey, key: name}
				}
				if err != nil {
					return nil, err
				}
				if sub.kind == stepFilter {
					out.definite = false
				}
				out.steps = append(out.steps, step{kind: stepDescent, sub: &sub})
				out.definite = false
				continue
			}
			p.pos++
			if p.pos >= len(src) {
				return nil, p.fail(p.pos, "a name must follow '.'")
			}
			if src[p.pos] == '*' {
				p.pos++
				out.steps = append(out.steps, step{kind: stepWild})
				out.definite = false
				continue
			}
			if src[p.pos] == '[' {
				return nil, p.fail(p.pos, "unexpected '[' after '.'")
			}
			name, err := p.name()
			if err != nil {
				return nil, err
			}
			if p.pos < len(src) && src[p.pos] == '(' {
				if name != "length" || src[p.pos:] != "()" {
					if name == "length" && strings.HasPrefix(src[p.pos:], "()") {
						return nil, p.fail(p.pos-len(name), "length() must end the path")
					}
					if strings.HasPrefix(src[p.pos:], "()") {
						return nil, p.fail(p.pos-len(name), "unsupported function "+name+"()")
					}
					return nil, p.fail(p.pos, "unexpected '('")
				}
				p.pos += 2
				out.length = true
				continue
			}
			out.steps = append(out.steps, step{kind: stepKey, key: name})
		case '[':
			s, err := p.bracket()
			if err != nil {
				return nil, err
			}
			switch s.kind {
			case stepKey, stepIndex:
			default:
				out.definite = false
			}
			out.steps = append(out.steps, s)
		default:
			return nil, p.fail(p.pos, "unexpected "+strconv.QuoteRune(rune(c)))
		}
	}
	if out.length {
		// length() makes a number of whatever precedes it.
		out.definite = true
	}
	out.norm = normalize(out)
	return out, nil
}

func isIdentStart(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return r == '_' || unicode.IsLetter(r)
}

func isIdentRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// name reads a dot-notation property name: everything up to '.', '[', '(',
// ')', ']' or white space (as Jayway reads it, so "detail-type" is a name).
func (p *parser) name() (string, error) {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '.' || c == '[' || c == ']' || c == '(' || c == ')' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		p.pos++
	}
	if p.pos == start {
		if p.pos < len(p.src) {
			return "", p.fail(p.pos, "unexpected "+strconv.QuoteRune(rune(p.src[p.pos])))
		}
		return "", p.fail(p.pos, "a name must follow '.'")
	}
	return p.src[start:p.pos], nil
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

// bracket reads "[...]" at p.pos.
func (p *parser) bracket() (step, error) {
	open := p.pos
	p.pos++ // '['
	p.skipSpace()
	if p.pos >= len(p.src) {
		return step{}, p.fail(open, "unclosed bracket")
	}
	c := p.src[p.pos]
	switch {
	case c == '?':
		return p.filter(open)
	case c == '*':
		p.pos++
		if err := p.close(open); err != nil {
			return step{}, err
		}
		return step{kind: stepWild}, nil
	case c == '\'' || c == '"':
		var keys []string
		for {
			k, err := p.quoted()
			if err != nil {
				return step{}, err
			}
			keys = append(keys, k)
			p.skipSpace()
			if p.pos < len(p.src) && p.src[p.pos] == ',' {
				p.pos++
				p.skipSpace()
				if p.pos >= len(p.src) || (p.src[p.pos] != '\'' && p.src[p.pos] != '"') {
					return step{}, p.fail(p.pos, "a quoted name must follow ','")
				}
				continue
			}
			break
		}
		if err := p.close(open); err != nil {
			return step{}, err
		}
		if len(keys) == 1 {
			return step{kind: stepKey, key: keys[0]}, nil
		}
		return step{kind: stepKeys, keys: keys}, nil
	case c == '-' || c == ':' || (c >= '0' && c <= '9'):
		return p.indexes(open)
	}
	return step{}, p.fail(p.pos, "unexpected "+strconv.QuoteRune(rune(c))+" in brackets")
}

func (p *parser) close(open int) error {
	p.skipSpace()
	if p.pos >= len(p.src) {
		return p.fail(open, "unclosed bracket")
	}
	if p.src[p.pos] != ']' {
		return p.fail(p.pos, "expected ']', found "+strconv.QuoteRune(rune(p.src[p.pos])))
	}
	p.pos++
	return nil
}

// quoted reads a single- or double-quoted name with backslash escapes.
func (p *parser) quoted() (string, error) {
	q := p.src[p.pos]
	start := p.pos
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case q:
			p.pos++
			return b.String(), nil
		case '\\':
			p.pos++
			if p.pos >= len(p.src) {
				return "", p.fail(start, "unterminated string")
			}
			e := p.src[p.pos]
			switch e {
			case '\'', '"', '\\', '/':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				if p.pos+4 >= len(p.src) {
					return "", p.fail(p.pos-1, "bad \\u escape")
				}
				n, err := strconv.ParseUint(p.src[p.pos+1:p.pos+5], 16, 32)
				if err != nil {
					return "", p.fail(p.pos-1, "bad \\u escape")
				}
				b.WriteRune(rune(n))
				p.pos += 4
			default:
				return "", p.fail(p.pos-1, "unknown escape \\"+string(rune(e)))
			}
			p.pos++
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", p.fail(start, "unterminated string")
}

func (p *parser) int() (int, bool) {
	start := p.pos
	if p.pos < len(p.src) && p.src[p.pos] == '-' {
		p.pos++
	}
	digits := p.pos
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
	}
	if p.pos == digits {
		p.pos = start
		return 0, false
	}
	n, err := strconv.Atoi(p.src[start:p.pos])
	if err != nil || n > 1<<31-1 || n < -(1<<31) {
		p.pos = start
		return 0, false
	}
	return n, true
}

// indexes reads [n], [n,m,...] or a slice [a:b:c].
func (p *parser) indexes(open int) (step, error) {
	first, ok := p.int()
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ':' {
		s := [3]int{sliceUnset, sliceUnset, sliceUnset}
		if ok {
			s[0] = first
		}
		for i := 1; i < 3 && p.pos < len(p.src) && p.src[p.pos] == ':'; i++ {
			p.pos++
			p.skipSpace()
			if n, ok := p.int(); ok {
				s[i] = n
			}
			p.skipSpace()
		}
		if s[2] == 0 {
			return step{}, p.fail(open, "slice step cannot be zero")
		}
		if err := p.close(open); err != nil {
			return step{}, err
		}
		return step{kind: stepSlice, slice: s}, nil
	}
	if !ok {
		return step{}, p.fail(p.pos, "bad array index")
	}
	idx := []int{first}
	for p.pos < len(p.src) && p.src[p.pos] == ',' {
		p.pos++
		p.skipSpace()
		n, ok := p.int()
		if !ok {
			return step{}, p.fail(p.pos, "bad array index")
		}
		idx = append(idx, n)
		p.skipSpace()
	}
	if err := p.close(open); err != nil {
		return step{}, err
	}
	if len(idx) == 1 {
		return step{kind: stepIndex, index: first}, nil
	}
	return step{kind: stepIndexes, indexes: idx}, nil
}

// filter reads "[?(...)]" and compiles the expression with ojg's jp.
func (p *parser) filter(open int) (step, error) {
	// p.pos is at '?'
	if !strings.HasPrefix(p.src[p.pos:], "?(") {
		return step{}, p.fail(p.pos, "a filter is written [?(...)]")
	}
	p.pos++
	paren := p.pos
	p.pos++
	depth := 1
	rootRef := false
	prev := byte(0) // last non-space byte, to tell a regex from a division
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '\'', '"':
			if _, err := p.quoted(); err != nil {
				return step{}, err
			}
			prev = c
			continue
		case '/':
			if prev == '~' {
				// a regular expression literal after =~
				start := p.pos
				p.pos++
				for p.pos < len(p.src) && p.src[p.pos] != '/' {
					if p.src[p.pos] == '\\' {
						p.pos++
					}
					p.pos++
				}
				if p.pos >= len(p.src) {
					return step{}, p.fail(start, "unterminated regular expression")
				}
			}
		case '$':
			rootRef = true
		case '(', '[':
			depth++
		case ')', ']':
			depth--
			if depth == 0 {
				if c != ')' {
					return step{}, p.fail(p.pos, "unbalanced brackets in filter")
				}
				body := "[?" + p.src[paren:p.pos+1] + "]"
				p.pos++
				if err := p.close(open); err != nil {
					return step{}, err
				}
				f, err := jp.NewFilter(body)
				if err != nil {
					return step{}, p.fail(open, "bad filter: "+err.Error())
				}
				return step{kind: stepFilter, filter: f, rootRef: rootRef}, nil
			}
		}
		if c != ' ' && c != '\t' {
			prev = c
		}
		p.pos++
	}
	return step{}, p.fail(open, "unclosed filter")
}

// normalize writes the path as Jayway prints it in messages: $['a'][0].
func normalize(pp *parsed) string {
	var b strings.Builder
	switch pp.root {
	case rootInput:
		b.WriteByte('$')
	case rootContext:
		b.WriteString("$$")
	case rootVar:
		b.WriteString("$" + pp.varName)
	}
	for i := range pp.steps {
		writeStep(&b, &pp.steps[i])
	}
	if pp.length {
		b.WriteString(".length()")
	}
	return b.String()
}

func writeStep(b *strings.Builder, s *step) {
	switch s.kind {
	case stepKey:
		b.WriteString("['" + s.key + "']")
	case stepIndex:
		b.WriteString("[" + strconv.Itoa(s.index) + "]")
	case stepWild:
		b.WriteString("[*]")
	case stepKeys:
		b.WriteByte('[')
		for i, k := range s.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("'" + k + "'")
		}
		b.WriteByte(']')
	case stepIndexes:
		b.WriteByte('[')
		for i, n := range s.indexes {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(n))
		}
		b.WriteByte(']')
	case stepSlice:
		b.WriteByte('[')
		if s.slice[0] != sliceUnset {
			b.WriteString(strconv.Itoa(s.slice[0]))
		}
		b.WriteByte(':')
		if s.slice[1] != sliceUnset {
			b.WriteString(strconv.Itoa(s.slice[1]))
		}
		if s.slice[2] != sliceUnset {
			b.WriteString(":" + strconv.Itoa(s.slice[2]))
		}
		b.WriteByte(']')
	case stepFilter:
		b.WriteString(s.filter.String())
	case stepDescent:
		b.WriteString("..")
		writeStep(b, s.sub)
	}
}
