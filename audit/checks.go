package audit

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// Breach codes: stable strings that reports, filters and tests match on.
const (
	// A key deleted with no deactivation of it earlier in the history.
	CodeDeleteBeforeDeactivate = "delete-before-deactivate"
	// A key deleted before its buffer point: the delete's notBefore (or the
	// execution's deleteAt), or the deactivation plus Policy.MinInactive.
	CodeDeleteBeforeBuffer = "delete-before-buffer"
	// A user who needed a third key: a create refused with
	// KeyLimitExceeded, or a create that left the user three keys.
	CodeThirdKey = "third-key"
	// A key deactivated (result Deactivated, without force) although it was
	// used at or after its cut-off (the new key's creation, or the
	// handler's inUseSince).
	CodeDeactivateInUse = "deactivate-in-use"
	// A user quarantined without an earlier approve decision, by a person
	// or by the timeout policy.
	CodeQuarantineWithoutApproval = "quarantine-without-approval"
	// A member of the admins group quarantined.
	CodeAdminQuarantined = "admin-quarantined"
	// A string shaped like a secret access key anywhere in the history.
	CodeSecretInHistory = "secret-in-history"
)

// Breach is one broken invariant and the events that show it.
type Breach struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Events  []int64 `json:"events"`
}

func (b *builder) breach(code string, events []int64, format string, args ...any) {
	ids := slices.Clone(events)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	b.rec.Breaches = append(b.rec.Breaches, Breach{Code: code, Message: Redact(fmt.Sprintf(format, args...)), Events: ids})
}

// evs is the scheduling and ending events of a call.
func (c *call) evs() []int64 {
	if c.action != nil {
		return c.action.Events
	}
	return nil
}

func (b *builder) check() {
	for _, c := range b.calls {
		if !c.token {
			c.action = &b.rec.Actions[c.idx]
		}
	}
	// Effects happen when a call ends: judge the calls in that order.
	done := make([]*call, 0, len(b.calls))
	for _, c := range b.calls {
		if c.endID > 0 {
			done = append(done, c)
		}
	}
	sort.SliceStable(done, func(i, j int) bool { return done[i].endID < done[j].endID })

	type deact struct {
		at time.Time
		id int64
	}
	deactivated := map[string]deact{} // key -> when
	created := map[string]*call{}     // old key -> the create that replaces it
	live := map[string][]string{}     // account/user -> keys the history shows
	admins := map[string]int64{}      // account/user -> event showing admin membership
	deleteAt := getTime(b.input, "deleteAt")

	for _, c := range done {
		a := c.action
		if a == nil {
			continue
		}
		user := a.Account + "/" + a.User
		if c.failed {
			switch {
			case c.handler == "create-key" && a.Error == "KeyLimitExceeded":
				b.breach(CodeThirdKey, a.Events, "user %s in account %s needed a third key: the create was refused with KeyLimitExceeded", a.User, a.Account)
			case c.handler == "quarantine" && a.Error == "NotQuarantinable":
				admins[user] = c.endID
			}
			continue
		}
		if a.DryRun {
			// A dry run changes nothing, but its evidence still counts.
			if c.handler == "quarantine" && b.isAdmin(c.out) {
				admins[user] = c.endID
			}
			continue
		}
		switch c.handler {
		case "create-key":
			if a.Result != "created" && a.Result != "alreadyStored" {
				continue
			}
			if a.Replaces != "" {
				created[a.Replaces] = c
			}
			keys := live[user]
			for _, k := range append(getStrs(c.out, "orphanAccessKeyIds"), getStr(c.out, "removedAccessKeyId")) {
				keys = remove(keys, k)
			}
			for _, k := range []string{a.Replaces, a.Key} {
				if k != "" && !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
			live[user] = keys
			if len(keys) > 2 {
				b.breach(CodeThirdKey, a.Events, "user %s in account %s has three keys after a create: %s", a.User, a.Account, strings.Join(keys, ", "))
			}

		case "deactivate-key":
			if a.Result != "Deactivated" && a.Result != "AlreadyInactive" {
				continue
			}
			if _, ok := deactivated[a.Key]; !ok {
				deactivated[a.Key] = deact{at: a.Time, id: c.endID}
			}
			if a.Result != "Deactivated" || c.in["force"] == true {
				continue
			}
			lastUsed := getTime(c.out, "lastUsedDate")
			cutoff := getTime(c.out, "inUseSince")
			evs := a.Events
			if cr, ok := created[a.Key]; ok && cutoff.IsZero() {
				cutoff = getTime(cr.out, "createDate")
				evs = append(slices.Clone(evs), cr.endID)
			}
			// IAM records last use late and coarsely, so a use at the
			// cut-off counts, as the handler counts it.
			inUse := c.out["inUse"] == true || (!lastUsed.IsZero() && !cutoff.IsZero() && !lastUsed.Before(cutoff))
			if inUse {
				b.breach(CodeDeactivateInUse, evs, "key %s was deactivated although it was last used at %s, after its cut-off %s",
					a.Key, stamp(lastUsed), stamp(cutoff))
			}

		case "delete-key":
			if a.Result != "Deleted" {
				if a.Result == "AlreadyDeleted" {
					live[user] = remove(live[user], a.Key)
				}
				continue
			}
			live[user] = remove(live[user], a.Key)
			at := getTime(c.out, "deletedAt")
			if at.IsZero() {
				at = a.Time
			}
			d, ok := deactivated[a.Key]
			if !ok {
				b.breach(CodeDeleteBeforeDeactivate, a.Events, "key %s was deleted at %s with no deactivation before it", a.Key, stamp(at))
			}
			notBefore := getTime(c.out, "notBefore")
			if notBefore.IsZero() {
				notBefore = getTime(c.in, "notBefore")
			}
			if notBefore.IsZero() && a.Key == b.rec.Subject.Key {
				notBefore = deleteAt
			}
			switch {
			case !notBefore.IsZero() && at.Before(notBefore):
				b.breach(CodeDeleteBeforeBuffer, a.Events, "key %s was deleted at %s, before its buffer point %s", a.Key, stamp(at), stamp(notBefore))
			case ok && b.policy.MinInactive > 0 && at.Before(d.at.Add(b.policy.MinInactive)):
				b.breach(CodeDeleteBeforeBuffer, append(slices.Clone(a.Events), d.id),
					"key %s was deleted at %s, %s after its deactivation; the policy keeps a key inactive for %s",
					a.Key, stamp(at), days(at.Sub(d.at)), days(b.policy.MinInactive))
			}

		case "quarantine":
			if b.isAdmin(c.out) {
				admins[user] = c.endID
			}
			for _, k := range getStrs(c.out, "deactivatedAccessKeyIds") {
				if _, ok := deactivated[k]; !ok {
					deactivated[k] = deact{at: a.Time, id: c.endID}
				}
			}
			if a.Result != "Quarantined" {
				continue
			}
			if id, ok := admins[user]; ok {
				b.breach(CodeAdminQuarantined, append(slices.Clone(a.Events), id),
					"user %s in account %s was quarantined although a member of the %q group", a.User, a.Account, b.policy.adminsGroup())
			}
			b.checkApproval(c)
		}
	}
	b.checkMFA(done)
	b.checkSecrets()
	sort.SliceStable(b.rec.Breaches, func(i, j int) bool {
		x, y := b.rec.Breaches[i], b.rec.Breaches[j]
		if fx, fy := first(x.Events), first(y.Events); fx != fy {
			return fx < fy
		}
		return x.Code < y.Code
	})
}

func first(ids []int64) int64 {
	if len(ids) == 0 {
		return 0
	}
	return ids[0]
}

func (b *builder) isAdmin(out map[string]any) bool {
	snap, _ := out["snapshot"].(map[string]any)
	return slices.Contains(getStrs(snap, "groups"), b.policy.adminsGroup())
}

// checkApproval: the latest approval that ended before the quarantine was
// scheduled decides it. An approval given after the fact does not count.
func (b *builder) checkApproval(c *call) {
	start := c.action.Events[0]
	var last *Approval
	for i := range b.rec.Approvals {
		ap := &b.rec.Approvals[i]
		if n := len(ap.Events); n > 1 && ap.Events[n-1] < start {
			last = ap
		}
	}
	switch {
	case last == nil:
		b.breach(CodeQuarantineWithoutApproval, c.evs(), "user %s in account %s was quarantined with no approval before it", c.action.User, c.action.Account)
	case !approves(last.Decision):
		why := fmt.Sprintf("the decision was %q", last.Decision)
		if last.TimedOut && last.Decision == "" {
			why = "the approval timed out and no timeout policy was applied"
		}
		b.breach(CodeQuarantineWithoutApproval, append(slices.Clone(c.evs()), last.Events...),
			"user %s in account %s was quarantined although %s", c.action.User, c.action.Account, why)
	}
}

func approves(decision string) bool {
	d := strings.ToLower(strings.TrimSpace(decision))
	return d == "approve" || d == "approved"
}

// checkSecrets scans every string of every event, and the names the caller
// gave: inputs, outputs, parameters, errors, causes, state names.
func (b *builder) checkSecrets() {
	for i := range b.events {
		ev := &b.events[i]
		var fields []string
		walkStrings(reflect.ValueOf(ev).Elem(), "", 0, func(path, s string) {
			if scanText(s) {
				fields = append(fields, path)
			}
		})
		if len(fields) > 0 {
			// Map order is random: sort, so the record is deterministic.
			slices.Sort(fields)
			fields = slices.Compact(fields)
			b.breach(CodeSecretInHistory, []int64{ev.Id}, "event %d (%s) holds a string shaped like a secret access key in %s",
				ev.Id, ev.Type, strings.Join(fields, ", "))
		}
	}
	if LooksLikeSecret(b.rawArn) || LooksLikeSecret(b.rawWorkflow) {
		b.breach(CodeSecretInHistory, nil, "the execution's ARN or workflow name holds a string shaped like a secret access key")
	}
}

// walkStrings calls fn with every string in v, a value of the SDK's event
// types, named by its Go field path. The SDK types are plain trees of
// structs, pointers, slices and string maps; reflection keeps the scan
// complete when the SDK adds a field.
func walkStrings(v reflect.Value, path string, depth int, fn func(path, s string)) {
	if depth > 16 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		fn(path, v.String())
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkStrings(v.Elem(), path, depth+1, fn)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			return
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); f.IsExported() {
				p := f.Name
				if path != "" {
					p = path + "." + f.Name
				}
				walkStrings(v.Field(i), p, depth+1, fn)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkStrings(v.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1, fn)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			if k.Kind() == reflect.String {
				fn(path+"{key}", k.String())
				walkStrings(iter.Value(), path+"."+k.String(), depth+1, fn)
			}
		}
	}
}

func remove(keys []string, k string) []string {
	if k == "" {
		return keys
	}
	return slices.DeleteFunc(slices.Clone(keys), func(s string) bool { return s == k })
}

// days writes a duration as an auditor reads a policy: in days.
func days(d time.Duration) string {
	return fmt.Sprintf("%.2f days", d.Hours()/24)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "(unknown)"
	}
	return t.UTC().Format(time.RFC3339)
}
