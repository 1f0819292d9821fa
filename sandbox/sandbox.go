package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go"
)

// Options configures a Sandbox. The zero value is a memory-only sandbox on
// the wall clock.
type Options struct {
	// Now is the clock; nil means time.Now. The engine passes its virtual
	// clock here so that key ages and last-use dates follow the run.
	Now func() time.Time
	// DB, when set, receives every mutation in tables named sandbox_*; New
	// reloads what is there. nil keeps everything in memory.
	DB *sql.DB
	// Region is the region in ARNs and last-used records; default us-east-1.
	Region string
	// ManagementAccount is the Organization's management account; default
	// 111111111111.
	ManagementAccount string
}

// Message is one message published to an SNS topic, kept in the outbox.
type Message struct {
	Account    string
	TopicArn   string
	MessageID  string
	Subject    string
	Body       string
	Attributes map[string]string
	Time       time.Time
}

// Sandbox is the embedded AWS: any number of accounts (created on first use)
// and one Organization. All methods are safe for concurrent use; one lock
// serialises every call, which is plenty for an in-process fake and keeps
// each call atomic, as a single AWS API call is.
type Sandbox struct {
	mu       sync.RWMutex
	now      func() time.Time
	region   string
	mgmt     string
	accounts map[string]*account
	keys     map[string]*keyRef // access key id -> owner, across accounts
	org      *organization
	outbox   []Message
	buckets  map[string]*bucket // S3 bucket names are global, as on AWS
	mail     []Email            // SES v2 mail sent, the email outbox
	db       *sql.DB
	dirty    map[objKey]struct{}
	newMsgs  []int // outbox indexes not yet written
	// ids draws the random parts of identifiers; Seed swaps in a seeded
	// source so that a seeded account is the same every time.
	ids idSource
}

type keyRef struct {
	account string
	user    string
}

// account holds one AWS account's IAM, Secrets Manager and SNS state.
type account struct {
	id             string
	users          map[string]*user // lower-cased name -> user: IAM names are case-insensitive
	groups         map[string]*group
	policies       map[string]*policy    // ARN -> customer-managed policy
	mfa            map[string]*mfaDevice // serial -> device
	passwordPolicy *passwordPolicy
	secrets        map[string]*secret        // name -> secret
	topics         map[string]*topic         // ARN -> topic
	templates      map[string]*emailTemplate // SES v2 email templates by name
	identities     map[string]*emailIdentity // SES v2 identities: addresses and domains
	roles          map[string]bool           // role names STS may assume in this account
	caller         string                    // ARN GetCallerIdentity answers; "" = default
}

// New returns a sandbox; with opts.DB it creates the sandbox_* tables when
// missing and loads the state they hold.
func New(opts Options) (*Sandbox, error) {
	s := &Sandbox{
		now:      opts.Now,
		region:   opts.Region,
		mgmt:     opts.ManagementAccount,
		accounts: map[string]*account{},
		keys:     map[string]*keyRef{},
		db:       opts.DB,
		dirty:    map[objKey]struct{}{},
		ids:      cryptoIDs{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.mgmt == "" {
		s.mgmt = "111111111111"
	}
	if !isAccountID(s.mgmt) {
		return nil, fmt.Errorf("sandbox: management account %q is not 12 digits", s.mgmt)
	}
	if s.db != nil {
		if err := s.createTables(); err != nil {
			return nil, err
		}
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	if s.org == nil {
		s.org = newOrganization(s.mgmt)
		s.org.accounts[s.mgmt] = &orgAccount{
			ID: s.mgmt, Name: "management", Email: "aws+" + s.mgmt + "@example.com",
			Parent: s.org.RootID, Status: "ACTIVE", JoinedMethod: "INVITED", Joined: s.clock(),
		}
		s.touch("", kindOrg, "org")
		s.touch("", kindOrgAccount, s.mgmt)
		if err := s.flush(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// clock is the current time in UTC, to the second as AWS reports dates.
func (s *Sandbox) clock() time.Time { return s.now().UTC().Truncate(time.Second) }

// Region is the region the sandbox reports in ARNs.
func (s *Sandbox) Region() string { return s.region }

// ManagementAccount is the Organization's management account id.
func (s *Sandbox) ManagementAccount() string { return s.mgmt }

func isAccountID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// acct returns the account, creating it on first use: any 12-digit id is an
// account, as any id is on AWS. Callers hold the write lock.
func (s *Sandbox) acct(id string) *account {
	a := s.accounts[id]
	if a == nil {
		a = newAccount(id)
		s.accounts[id] = a
	}
	return a
}

// peek returns the account for reading, or an empty one that is not kept.
func (s *Sandbox) peek(id string) *account {
	if a := s.accounts[id]; a != nil {
		return a
	}
	return newAccount(id)
}

func newAccount(id string) *account {
	return &account{
		id:         id,
		users:      map[string]*user{},
		groups:     map[string]*group{},
		policies:   map[string]*policy{},
		mfa:        map[string]*mfaDevice{},
		secrets:    map[string]*secret{},
		topics:     map[string]*topic{},
		templates:  map[string]*emailTemplate{},
		identities: map[string]*emailIdentity{},
		roles:      map[string]bool{},
	}
}

// write runs fn under the write lock and then writes what fn touched to the
// database. An API error from fn is returned as is; a database error is
// returned when fn succeeded (the memory state then runs ahead of the file,
// which the next successful write of the same object repairs).
func (s *Sandbox) write(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := fn()
	if ferr := s.flush(); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// read runs fn under the read lock.
func (s *Sandbox) read(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn()
}

// Outbox returns every SNS message published so far, oldest first.
func (s *Sandbox) Outbox() []Message {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Message, len(s.outbox))
	for i, m := range s.outbox {
		m.Attributes = cloneMap(m.Attributes)
		out[i] = m
	}
	return out
}

// RecordKeyUse records that the access key was used to call service at the
// given time, as AWS does when a request signed with the key arrives; what
// GetAccessKeyLastUsed returns afterwards. Tests and the demo call it to
// make a key "in use".
func (s *Sandbox) RecordKeyUse(accessKeyID, service string, at time.Time) error {
	return s.write(context.Background(), func() error {
		ref := s.keys[accessKeyID]
		if ref == nil {
			return fmt.Errorf("sandbox: record key use: no access key %q", accessKeyID)
		}
		u := s.accounts[ref.account].users[strings.ToLower(ref.user)]
		k := u.key(accessKeyID)
		t := at.UTC().Truncate(time.Second)
		k.LastUsed = &t
		k.LastService = service
		k.LastRegion = s.region
		s.touch(ref.account, kindUser, u.Name)
		return nil
	})
}

// SetCallerIdentity sets the ARN that STS GetCallerIdentity reports for the
// account (default arn:aws:iam::<account>:user/keyflow-local).
func (s *Sandbox) SetCallerIdentity(accountID, arn string) error {
	return s.write(context.Background(), func() error {
		a := s.acct(accountID)
		a.caller = arn
		s.touch(accountID, kindAccount, accountID)
		return nil
	})
}

// RegisterRole makes roleName assumable through STS AssumeRole in the
// account. The sandbox does not model IAM roles and trust policies; this is
// its simple rule: a role may be assumed when the account is an ACTIVE
// member of the Organization and the role was registered.
func (s *Sandbox) RegisterRole(accountID, roleName string) error {
	return s.write(context.Background(), func() error {
		a := s.acct(accountID)
		a.roles[roleName] = true
		s.touch(accountID, kindAccount, accountID)
		return nil
	})
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// apiError is an error with an AWS error code for which the SDK has no
// typed error (STS's AccessDenied, IAM's ValidationError): the SDK returns a
// *smithy.GenericAPIError for those too.
func apiError(code, format string, args ...any) error {
	return &smithy.GenericAPIError{Code: code, Message: fmt.Sprintf(format, args...), Fault: smithy.FaultClient}
}

// page cuts a sorted list of names at marker and max, the way every IAM
// List* call paginates: the marker is the name of the first item of the
// next page, so a page stays correct when earlier items are deleted.
func page(names []string, marker *string, maxItems *int32, def int32) (from, to int, next *string, err error) {
	n := def
	if maxItems != nil {
		n = *maxItems
		if n < 1 || n > 1000 {
			return 0, 0, nil, apiError("ValidationError", "1 validation error detected: Value '%d' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", n)
		}
	}
	if marker != nil && *marker != "" {
		m, derr := decodeMarker(*marker)
		if derr != nil {
			return 0, 0, nil, derr
		}
		from = sort.SearchStrings(names, m)
	}
	to = from + int(n)
	if to >= len(names) {
		return from, len(names), nil, nil
	}
	mk := encodeMarker(names[to])
	return from, to, &mk, nil
}

// orEmpty is an API input as the SDK's clients take it: nil is empty.
func orEmpty[T any](in *T) *T {
	if in == nil {
		return new(T)
	}
	return in
}
