package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// Persistence: each object (a user with its keys, tags and policies; a group;
// a secret with its versions; ...) is one JSON row of sandbox_objects, keyed
// by account, kind and id. A mutation marks the objects it touched and the
// write lock's holder writes exactly those rows in one transaction, so a call
// costs a few row writes whatever the size of the account, and a seed of
// thousands of users is one transaction. Published messages are appended to
// sandbox_outbox. The SQLite file is the engine's: every table here is named
// sandbox_*.

const (
	kindUser       = "user"
	kindGroup      = "group"
	kindPolicy     = "policy"
	kindMFA        = "mfa"
	kindSecret     = "secret"
	kindTopic      = "topic"
	kindAccount    = "account" // password policy, assumable roles, caller
	kindOrg        = "org"
	kindOU         = "ou"
	kindOrgAccount = "orgaccount"
	kindBucket     = "s3bucket"
	kindObject     = "s3object" // id: bucket/key
	kindTemplate   = "sestemplate"
	kindIdentity   = "sesidentity"
	kindMail       = "sesmail" // id: the outbox position, zero-padded
)

type objKey struct{ account, kind, id string }

// touch marks an object to be written (or deleted, when it is gone by the
// time of the flush). Callers hold the write lock.
func (s *Sandbox) touch(account, kind, id string) {
	if s.db == nil {
		return
	}
	if kind == kindUser || kind == kindGroup {
		id = strings.ToLower(id) // IAM names are case-insensitive
	}
	s.dirty[objKey{account, kind, id}] = struct{}{}
}

// accountRow is what an account keeps outside its IAM entities.
type accountRow struct {
	PasswordPolicy *iamtypes.PasswordPolicy `json:",omitempty"`
	Roles          []string                 `json:",omitempty"`
	Caller         string                   `json:",omitempty"`
}

type orgRow struct{ ID, RootID, Mgmt string }

func (s *Sandbox) createTables() error {
	_, err := s.db.Exec(`
CREATE TABLE IF NOT EXISTS sandbox_objects (
	account TEXT NOT NULL,
	kind    TEXT NOT NULL,
	id      TEXT NOT NULL,
	body    TEXT NOT NULL,
	PRIMARY KEY (account, kind, id)
);
CREATE TABLE IF NOT EXISTS sandbox_outbox (
	seq        INTEGER PRIMARY KEY,
	account    TEXT NOT NULL,
	topic_arn  TEXT NOT NULL,
	message_id TEXT NOT NULL,
	subject    TEXT NOT NULL,
	body       TEXT NOT NULL,
	attributes TEXT NOT NULL,
	at         TEXT NOT NULL
);`)
	if err != nil {
		return fmt.Errorf("sandbox: create tables: %w", err)
	}
	return nil
}

// current returns the object's present value, or nil when it is gone.
func (s *Sandbox) current(k objKey) any {
	switch k.kind {
	case kindOrg:
		return orgRow{ID: s.org.ID, RootID: s.org.RootID, Mgmt: s.org.Mgmt}
	case kindOU:
		if ou := s.org.ous[k.id]; ou != nil {
			return ou
		}
		return nil
	case kindOrgAccount:
		if a := s.org.accounts[k.id]; a != nil {
			return a
		}
		return nil
	case kindBucket:
		if b := s.buckets[k.id]; b != nil && b.Owner == k.account {
			return b
		}
		return nil
	case kindObject:
		name, key, _ := strings.Cut(k.id, "/")
		if b := s.buckets[name]; b != nil {
			if o := b.objects[key]; o != nil {
				return o
			}
		}
		return nil
	case kindMail:
		if i, err := strconv.Atoi(k.id); err == nil && i >= 0 && i < len(s.mail) {
			return mailRow{Seq: i, Email: s.mail[i]}
		}
		return nil
	}
	a := s.accounts[k.account]
	if a == nil {
		return nil
	}
	var v any
	switch k.kind {
	case kindUser:
		if u := a.users[k.id]; u != nil {
			v = u
		}
	case kindGroup:
		if g := a.groups[k.id]; g != nil {
			v = g
		}
	case kindPolicy:
		if p := a.policies[k.id]; p != nil {
			v = p
		}
	case kindMFA:
		if d := a.mfa[k.id]; d != nil {
			v = d
		}
	case kindSecret:
		if x := a.secrets[k.id]; x != nil {
			v = x
		}
	case kindTopic:
		if t := a.topics[k.id]; t != nil {
			v = t
		}
	case kindTemplate:
		if t := a.templates[k.id]; t != nil {
			v = t
		}
	case kindIdentity:
		if x := a.identities[k.id]; x != nil {
			v = x
		}
	case kindAccount:
		row := accountRow{Caller: a.caller}
		if a.passwordPolicy != nil {
			pp := a.passwordPolicy.PasswordPolicy
			row.PasswordPolicy = &pp
		}
		for r := range a.roles {
			row.Roles = append(row.Roles, r)
		}
		sort.Strings(row.Roles)
		v = row
	}
	return v
}

// flush writes the touched objects and new messages in one transaction.
// Callers hold the write lock.
func (s *Sandbox) flush() error {
	if s.db == nil || (len(s.dirty) == 0 && len(s.newMsgs) == 0) {
		return nil
	}
	dirty, msgs := s.dirty, s.newMsgs
	s.dirty, s.newMsgs = map[objKey]struct{}{}, nil
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sandbox: save: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	upsert, err := tx.PrepareContext(ctx, `INSERT INTO sandbox_objects (account, kind, id, body) VALUES (?, ?, ?, ?)
		ON CONFLICT (account, kind, id) DO UPDATE SET body = excluded.body`)
	if err != nil {
		return fmt.Errorf("sandbox: save: %w", err)
	}
	defer upsert.Close()
	for k := range dirty {
		v := s.current(k)
		if v == nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sandbox_objects WHERE account = ? AND kind = ? AND id = ?`, k.account, k.kind, k.id); err != nil {
				return fmt.Errorf("sandbox: save %s %q: %w", k.kind, k.id, err)
			}
			continue
		}
		body, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("sandbox: save %s %q: %w", k.kind, k.id, err)
		}
		if _, err := upsert.ExecContext(ctx, k.account, k.kind, k.id, string(body)); err != nil {
			return fmt.Errorf("sandbox: save %s %q: %w", k.kind, k.id, err)
		}
	}
	for _, i := range msgs {
		m := s.outbox[i]
		attrs, err := json.Marshal(m.Attributes)
		if err != nil {
			return fmt.Errorf("sandbox: save message: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sandbox_outbox (seq, account, topic_arn, message_id, subject, body, attributes, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			i, m.Account, m.TopicArn, m.MessageID, m.Subject, m.Body, string(attrs), m.Time.Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("sandbox: save message: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sandbox: save: %w", err)
	}
	return nil
}

// load rebuilds the sandbox from its tables.
func (s *Sandbox) load() error {
	rows, err := s.db.Query(`SELECT account, kind, id, body FROM sandbox_objects ORDER BY kind = 'org' DESC`)
	if err != nil {
		return fmt.Errorf("sandbox: load: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k objKey
		var body string
		if err := rows.Scan(&k.account, &k.kind, &k.id, &body); err != nil {
			return fmt.Errorf("sandbox: load: %w", err)
		}
		if err := s.loadRow(k, []byte(body)); err != nil {
			return fmt.Errorf("sandbox: load %s %q: %w", k.kind, k.id, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sandbox: load: %w", err)
	}
	for id, a := range s.accounts {
		for _, u := range a.users {
			for _, k := range u.Keys {
				s.keys[k.ID] = &keyRef{account: id, user: u.Name}
			}
		}
	}
	return s.loadOutbox()
}

func (s *Sandbox) loadRow(k objKey, body []byte) error {
	switch k.kind {
	case kindOrg:
		var r orgRow
		if err := json.Unmarshal(body, &r); err != nil {
			return err
		}
		s.org = newOrganization(r.Mgmt)
		s.org.ID, s.org.RootID = r.ID, r.RootID
		s.mgmt = r.Mgmt
		return nil
	case kindOU, kindOrgAccount:
		if s.org == nil {
			return fmt.Errorf("organization row missing")
		}
		if k.kind == kindOU {
			var ou orgUnit
			if err := json.Unmarshal(body, &ou); err != nil {
				return err
			}
			s.org.ous[ou.ID] = &ou
			return nil
		}
		var a orgAccount
		if err := json.Unmarshal(body, &a); err != nil {
			return err
		}
		s.org.accounts[a.ID] = &a
		return nil
	case kindBucket:
		var row bucket
		if err := json.Unmarshal(body, &row); err != nil {
			return err
		}
		b := s.bucketFor(k.id)
		b.Name, b.Owner, b.Region, b.Created = k.id, row.Owner, row.Region, row.Created
		return nil
	case kindObject:
		var o s3Object
		if err := json.Unmarshal(body, &o); err != nil {
			return err
		}
		s.bucketFor(o.Bucket).objects[o.Key] = &o
		return nil
	case kindMail:
		var r mailRow
		if err := json.Unmarshal(body, &r); err != nil {
			return err
		}
		if r.Seq < 0 || r.Seq > 1<<24 {
			return fmt.Errorf("outbox position %d out of range", r.Seq)
		}
		for len(s.mail) <= r.Seq {
			s.mail = append(s.mail, Email{})
		}
		s.mail[r.Seq] = r.Email
		return nil
	}
	a := s.acct(k.account)
	var err error
	switch k.kind {
	case kindUser:
		var u user
		err = json.Unmarshal(body, &u)
		a.users[k.id] = &u
	case kindGroup:
		var g group
		err = json.Unmarshal(body, &g)
		a.groups[k.id] = &g
	case kindPolicy:
		var p policy
		err = json.Unmarshal(body, &p)
		a.policies[k.id] = &p
	case kindMFA:
		var d mfaDevice
		err = json.Unmarshal(body, &d)
		a.mfa[k.id] = &d
	case kindSecret:
		var x secret
		err = json.Unmarshal(body, &x)
		a.secrets[k.id] = &x
	case kindTopic:
		var t topic
		err = json.Unmarshal(body, &t)
		a.topics[k.id] = &t
	case kindTemplate:
		var t emailTemplate
		err = json.Unmarshal(body, &t)
		a.templates[k.id] = &t
	case kindIdentity:
		var x emailIdentity
		err = json.Unmarshal(body, &x)
		a.identities[k.id] = &x
	case kindAccount:
		var r accountRow
		err = json.Unmarshal(body, &r)
		a.caller = r.Caller
		if r.PasswordPolicy != nil {
			a.passwordPolicy = &passwordPolicy{*r.PasswordPolicy}
		}
		for _, role := range r.Roles {
			a.roles[role] = true
		}
	default:
		return fmt.Errorf("unknown kind")
	}
	return err
}

func (s *Sandbox) loadOutbox() error {
	rows, err := s.db.Query(`SELECT account, topic_arn, message_id, subject, body, attributes, at FROM sandbox_outbox ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("sandbox: load outbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m Message
		var attrs, at string
		if err := rows.Scan(&m.Account, &m.TopicArn, &m.MessageID, &m.Subject, &m.Body, &attrs, &at); err != nil {
			return fmt.Errorf("sandbox: load outbox: %w", err)
		}
		if err := json.Unmarshal([]byte(attrs), &m.Attributes); err != nil {
			return fmt.Errorf("sandbox: load outbox: %w", err)
		}
		if m.Time, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return fmt.Errorf("sandbox: load outbox: %w", err)
		}
		s.outbox = append(s.outbox, m)
	}
	return rows.Err()
}
