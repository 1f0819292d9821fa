package states

import "fmt"

// Walk calls fn for every state of the definition in document order,
// depth first: a Parallel's branches and a Map's item processor are
// visited right after the state that holds them. pointer is the state's
// JSON pointer ("/States/Fan/Branches/0/States/Gather") and name its name,
// which is unique across the whole machine once the definition is valid.
func Walk(d *Definition, fn func(pointer, name string, s State)) {
	if d == nil {
		return
	}
	walkStates("", &d.States, fn)
}

func walkStates(ptr string, ss *States, fn func(pointer, name string, s State)) {
	for _, name := range ss.Names {
		s := ss.ByName[name]
		if s == nil {
			continue
		}
		p := ptr + "/States/" + escape(name)
		fn(p, name, s)
		switch s := s.(type) {
		case *Parallel:
			for i := range s.Branches {
				walkStates(fmt.Sprintf("%s/Branches/%d", p, i), &s.Branches[i].States, fn)
			}
		case *Map:
			if s.ItemProcessor != nil {
				key := "/ItemProcessor"
				if s.LegacyIterator {
					key = "/Iterator"
				}
				walkStates(p+key, &s.ItemProcessor.States, fn)
			}
		}
	}
}

// Resources lists the Task resources the definition calls, each once, in
// document order: what the engine must serve and the template must grant.
// (A distributed Map's ItemReader and ResultWriter resources are not
// Tasks and are not listed.)
func (d *Definition) Resources() []string {
	seen := map[string]bool{}
	var out []string
	Walk(d, func(_, _ string, s State) {
		if t, ok := s.(*Task); ok && t.Resource != "" && !seen[t.Resource] {
			seen[t.Resource] = true
			out = append(out, t.Resource)
		}
	})
	return out
}

// Language is the definition's QueryLanguage, JSONPath when not set.
func (d *Definition) Language() QueryLanguage {
	if d.QueryLanguage == "" {
		return JSONPath
	}
	return d.QueryLanguage
}
