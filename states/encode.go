package states

import (
	"encoding/json"

	"github.com/keyflow/keyflow/states/data"
)

// MarshalJSON writes the definition back as the document it was decoded
// from (same fields, same values; state order kept). Fields that hold their
// zero value and have no meaning when absent (an empty Comment, End false)
// are left out.
func (d *Definition) MarshalJSON() ([]byte, error) {
	if d == nil {
		return []byte("null"), nil
	}
	var o object
	o.str("Comment", d.Comment)
	o.str("QueryLanguage", string(d.QueryLanguage))
	o.add("StartAt", d.StartAt) // required: written even when empty
	if d.TimeoutSeconds != nil {
		o.add("TimeoutSeconds", *d.TimeoutSeconds)
	}
	o.str("Version", d.Version)
	o.add("States", encodeStates(d.States))
	return o.MarshalJSON()
}

// MarshalJSON writes a branch (a Parallel branch or a Map's processor).
func (b *Branch) MarshalJSON() ([]byte, error) { return encodeBranch(b).MarshalJSON() }

// The states marshal themselves too, so that the engine and the CLI can
// print one state (in an error, a history event) as it was written.

func (s *Pass) MarshalJSON() ([]byte, error)     { return encodeState(s).MarshalJSON() }
func (s *Task) MarshalJSON() ([]byte, error)     { return encodeState(s).MarshalJSON() }
func (s *Choice) MarshalJSON() ([]byte, error)   { return encodeState(s).MarshalJSON() }
func (s *Wait) MarshalJSON() ([]byte, error)     { return encodeState(s).MarshalJSON() }
func (s *Succeed) MarshalJSON() ([]byte, error)  { return encodeState(s).MarshalJSON() }
func (s *Fail) MarshalJSON() ([]byte, error)     { return encodeState(s).MarshalJSON() }
func (s *Parallel) MarshalJSON() ([]byte, error) { return encodeState(s).MarshalJSON() }
func (s *Map) MarshalJSON() ([]byte, error)      { return encodeState(s).MarshalJSON() }

func encodeStates(ss States) object {
	o := make(object, 0, len(ss.Names))
	for _, name := range ss.Names {
		s := ss.ByName[name]
		if s == nil {
			continue
		}
		o.add(name, encodeState(s))
	}
	return o
}

func encodeBranch(b *Branch) object {
	var o object
	o.str("Comment", b.Comment)
	o.str("QueryLanguage", string(b.QueryLanguage))
	if b.ProcessorConfig != nil {
		o.add("ProcessorConfig", encodeProcessorConfig(b.ProcessorConfig))
	}
	o.add("StartAt", b.StartAt)
	o.add("States", encodeStates(b.States))
	return o
}

func encodeState(s State) object {
	var o object
	o.add("Type", string(s.Type()))
	c := s.Common()
	o.str("Comment", c.Comment)
	o.str("QueryLanguage", string(c.QueryLanguage))
	switch s := s.(type) {
	case *Pass:
		encodePass(&o, s)
	case *Task:
		encodeTask(&o, s)
	case *Choice:
		encodeChoice(&o, s)
	case *Wait:
		encodeWait(&o, s)
	case *Succeed:
	case *Fail:
		encodeFail(&o, s)
	case *Parallel:
		encodeParallel(&o, s)
	case *Map:
		encodeMap(&o, s)
	}
	o.path("InputPath", c.InputPath)
	o.path("OutputPath", c.OutputPath)
	o.value("Output", c.Output)
	o.assign(c.Assign)
	o.str("Next", c.Next)
	if c.End {
		o.add("End", true)
	}
	return o
}

// object is a JSON object whose members keep the order they were added in,
// so that encoded definitions read naturally (Type first, Next last).
type object []outField

type outField struct {
	key string
	val any
}

func (o *object) add(key string, val any) { *o = append(*o, outField{key, val}) }

// str adds a string field unless it is empty (absent).
func (o *object) str(key, val string) {
	if val != "" {
		o.add(key, val)
	}
}

// value adds a payload field unless it is absent (nil).
func (o *object) value(key string, val any) {
	if val != nil {
		o.add(key, val)
	}
}

func (o *object) assign(m map[string]any) {
	if m != nil {
		o.add("Assign", m)
	}
}

// path adds a path field: absent when nil, JSON null when Null.
func (o *object) path(key string, p *PathField) {
	switch {
	case p == nil:
	case p.Null:
		o.add(key, nil)
	default:
		o.add(key, p.Path)
	}
}

func (o *object) intExpr(key string, e *IntExpr) {
	switch {
	case e == nil:
	case e.Expr != "":
		o.add(key, e.Expr)
	default:
		o.add(key, e.Value)
	}
}

func (o *object) floatExpr(key string, e *FloatExpr) {
	switch {
	case e == nil:
	case e.Expr != "":
		o.add(key, e.Expr)
	default:
		o.add(key, e.Value)
	}
}

func (o object) MarshalJSON() ([]byte, error) {
	return o.append(nil)
}

func (o object) append(b []byte) ([]byte, error) {
	b = append(b, '{')
	for i, m := range o {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		b = append(b, k...)
		b = append(b, ':')
		if b, err = appendValue(b, m.val); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendValue writes one member's value: our own ordered objects and
// lists of them as such, and everything else (payloads, numbers, strings)
// with states/data, which keeps 2.0 a float and 2 an integer.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case object:
		return x.append(b)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string:
		s, err := json.Marshal(x)
		return append(b, s...), err
	}
	return data.Append(b, v)
}
