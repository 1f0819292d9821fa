package intrinsic

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keyflow/keyflow/states/data"
	"github.com/keyflow/keyflow/states/jsonpath"
)

// MaxNesting is how deep calls may nest in one field, as on AWS ("up to
// 10 nested intrinsic functions").
const MaxNesting = 10

// MaxLength bounds the source text of a call.
const MaxLength = 65536

// SyntaxError is a call that does not compile.
type SyntaxError struct {
	Call   string // the source text
	Offset int    // byte offset of the problem
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "intrinsic: invalid call " + data.Quote(e.Call, 64) + ": " + e.Msg
}

type argKind uint8

const (
	argLiteral argKind = iota
	argPath
	argCall
)

// arg is one compiled argument.
type arg struct {
	kind  argKind
	value any            // argLiteral
	path  *jsonpath.Path // argPath
	call  *node          // argCall
	// format is a literal string split at its "{}" placeholders, escaped
	// braces kept as text, for States.Format.
	format []string
}

type node struct {
	fn   *function
	args []arg
	// constant is set when every argument is a literal and the function
	// is pure: the call is evaluated once, at compile time.
	constant   bool
	constValue any
}

type parser struct {
	src string
	pos int
}

func (p *parser) fail(off int, msg string) *SyntaxError {
	return &SyntaxError{Call: p.src, Offset: off, Msg: msg}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

// call parses "States.Name(args)" at p.pos.
func (p *parser) call(depth int) (*node, error) {
	if depth > MaxNesting {
		return nil, p.fail(p.pos, "more than "+strconv.Itoa(MaxNesting)+" nested calls")
	}
	start := p.pos
	if !strings.HasPrefix(p.src[p.pos:], "States.") {
		return nil, p.fail(p.pos, "expected a call to a States. function")
	}
	p.pos += len("States.")
	nameStart := p.pos
	for p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
		p.pos++
	}
	name := p.src[start:p.pos]
	if p.pos == nameStart {
		return nil, p.fail(nameStart, "missing function name")
	}
	fn, ok := functions[name]
	if !ok {
		return nil, p.fail(start, "unknown function "+name)
	}
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] != '(' {
		return nil, p.fail(p.pos, "expected '(' after "+name)
	}
	p.pos++
	n := &node{fn: fn}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ')' {
		p.pos++
	} else {
		for {
			p.skipSpace()
			a, err := p.arg(depth)
			if err != nil {
				return nil, err
			}
			n.args = append(n.args, a)
			p.skipSpace()
			if p.pos >= len(p.src) {
				return nil, p.fail(start, "unclosed call to "+name)
			}
			if p.src[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.src[p.pos] == ')' {
				p.pos++
				break
			}
			return nil, p.fail(p.pos, "expected ',' or ')', found "+strconv.QuoteRune(rune(p.src[p.pos])))
		}
	}
	if len(n.args) < fn.minArgs || (fn.maxArgs >= 0 && len(n.args) > fn.maxArgs) {
		return nil, p.fail(start, name+" takes "+fn.arity()+", not "+strconv.Itoa(len(n.args)))
	}
	if msg := fn.check(n.args); msg != "" {
		return nil, p.fail(start, msg)
	}
	return n, nil
}

func isNameByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func (p *parser) arg(depth int) (arg, error) {
	if p.pos >= len(p.src) {
		return arg{}, p.fail(p.pos, "missing argument")
	}
	c := p.src[p.pos]
	switch {
	case c == '\'':
		s, format, err := p.literal()
		if err != nil {
			return arg{}, err
		}
		return arg{kind: argLiteral, value: s, format: format}, nil
	case c == '$':
		start := p.pos
		p.pathEnd()
		src := p.src[start:p.pos]
		path, err := jsonpath.Compile(src)
		if err != nil {
			return arg{}, p.fail(start, err.Error())
		}
		return arg{kind: argPath, path: path}, nil
	case strings.HasPrefix(p.src[p.pos:], "States."):
		n, err := p.call(depth + 1)
		if err != nil {
			return arg{}, err
		}
		return arg{kind: argCall, call: n}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		p.pos++
		for p.pos < len(p.src) && strings.IndexByte("0123456789.eE+-", p.src[p.pos]) >= 0 {
			p.pos++
		}
		v, err := data.Parse([]byte(p.src[start:p.pos]))
		if err != nil {
			return arg{}, p.fail(start, "bad number "+data.Quote(p.src[start:p.pos], 32))
		}
		return arg{kind: argLiteral, value: v}, nil
	default:
		for _, w := range [...]struct {
			word  string
			value any
		}{{"true", true}, {"false", false}, {"null", nil}} {
			if strings.HasPrefix(p.src[p.pos:], w.word) && (p.pos+len(w.word) == len(p.src) || !isNameByte(p.src[p.pos+len(w.word)])) {
				p.pos += len(w.word)
				return arg{kind: argLiteral, value: w.value}, nil
			}
		}
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
	return arg{}, p.fail(p.pos, "unexpected "+strconv.QuoteRune(r)+": an argument is a 'string', a number, true, false, null, a path or a call")
}

// pathEnd moves p.pos to the end of the path that starts there: the next
// ',' or ')' or space outside brackets and quotes.
func (p *parser) pathEnd() {
	depth := 0
	var quote byte
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if quote != 0 {
			if c == '\\' {
				p.pos += 2
				continue
			}
			if c == quote {
				quote = 0
			}
			p.pos++
			continue
		}
		switch c {
		case '\'', '"':
			if depth > 0 {
				quote = c
			}
		case '[', '(':
			if c == '(' && depth == 0 && !strings.HasPrefix(p.src[p.pos:], "()") {
				return
			}
			depth++
		case ']':
			depth--
		case ')':
			if depth == 0 {
				return
			}
			depth--
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return
			}
		}
		p.pos++
	}
	if p.pos > len(p.src) {
		p.pos = len(p.src)
	}
}

// literal reads a single-quoted string. The escapes \' \{ \} \\ stand for
// the character; format keeps "{}" placeholders apart from escaped braces.
func (p *parser) literal() (string, []string, error) {
	start := p.pos
	p.pos++
	var b, seg strings.Builder
	format := []string{}
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '\'':
			p.pos++
			format = append(format, seg.String())
			return b.String(), format, nil
		case '\\':
			if p.pos+1 >= len(p.src) {
				return "", nil, p.fail(start, "unterminated string")
			}
			e := p.src[p.pos+1]
			switch e {
			case '\'', '{', '}', '\\':
				b.WriteByte(e)
				seg.WriteByte(e)
				p.pos += 2
				continue
			}
			return "", nil, p.fail(p.pos, "unknown escape \\"+string(rune(e))+" (use \\' \\{ \\} or \\\\)")
		case '{':
			if p.pos+1 < len(p.src) && p.src[p.pos+1] == '}' {
				b.WriteString("{}")
				format = append(format, seg.String())
				seg.Reset()
				p.pos += 2
				continue
			}
		}
		b.WriteByte(c)
		seg.WriteByte(c)
		p.pos++
	}
	return "", nil, p.fail(start, "unterminated string")
}
