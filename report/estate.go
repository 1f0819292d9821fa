package report

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// IAM is what Gather reads of one account, with the SDK client's
// signatures: *iam.Client and the sandbox's IAM both satisfy it. Read-only
// on purpose: a report changes nothing.
type IAM interface {
	ListUsers(context.Context, *iam.ListUsersInput, ...func(*iam.Options)) (*iam.ListUsersOutput, error)
	ListAccessKeys(context.Context, *iam.ListAccessKeysInput, ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	ListUserTags(context.Context, *iam.ListUserTagsInput, ...func(*iam.Options)) (*iam.ListUserTagsOutput, error)
	ListMFADevices(context.Context, *iam.ListMFADevicesInput, ...func(*iam.Options)) (*iam.ListMFADevicesOutput, error)
	GetLoginProfile(context.Context, *iam.GetLoginProfileInput, ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error)
}

// Policy is the rotation policy the estate is judged by, in days from a
// key's creation.
type Policy struct {
	RotationDays, InactiveDays, BufferDays int
}

// DefaultPolicy is keyflow's default: rotate at 45 days, deactivate at 60,
// delete at 90.
var DefaultPolicy = Policy{RotationDays: 45, InactiveDays: 60, BufferDays: 90}

// Estate is the state of the accounts at one instant.
type Estate struct {
	At       time.Time
	Policy   Policy
	Accounts []string
	Users    int
	Keys     int
	// Buckets count every key by age.
	Buckets []Bucket
	// Due are Active keys at or past the rotation age, not exempt and not
	// already rotating (the user's other key is younger and Active).
	Due []Key
	// Inactive are keys in their inactive window: deactivated, waiting
	// for their buffer point to be deleted.
	Inactive []Key
	// Quarantined users carry the quarantine tag.
	Quarantined []User
	// NoMFA are console users (with a password) without an MFA device:
	// a user without a password cannot sign in, so MFA does not apply.
	NoMFA []User
	// TwoKeys are users with two access keys: the next rotation of either
	// has no room for a new key until one goes.
	TwoKeys []User
	// Hygiene is MFA enforcement and the password policy, when the caller
	// read them (the hygiene inventory and the MFA executions).
	Hygiene *Hygiene
}

// Hygiene is the account hygiene part of the report: each console user
// without MFA with what keyflow is doing about them, the users the
// MFA-required policy is on, the exempt users, and each account's password
// policy against the baseline.
type Hygiene struct {
	GraceDays int
	// Baseline is the password policy baseline, as a person reads it.
	Baseline string
	// NoMFA are console users without an MFA device and no policy yet.
	NoMFA []MFAUser
	// Attached are the users the MFA-required policy is attached to:
	// enforced (still without MFA) or to be released (enrolled since).
	Attached []MFAUser
	Exempt   []MFAUser
	// PasswordPolicies has one entry per account.
	PasswordPolicies []PasswordPolicy
	// Note says where the grace deadlines come from, or why there are
	// none (no executions could be read).
	Note string
}

// MFA states of a user, as the report names them.
const (
	MFAInGrace      = "in grace"         // notified; the policy goes on at Deadline
	MFANotNotified  = "not yet notified" // the next hygiene run starts the enforcement
	MFANeedsPerson  = "needs a person"   // the enforcement ended without the policy
	MFAEnforced     = "enforced"         // the policy is attached, no MFA yet
	MFAToRelease    = "to release"       // the policy is attached, MFA enrolled
	MFAExempt       = "exempt"
	MFAUnknownGrace = "grace unknown" // no executions were read
)

// MFAUser is one user of the MFA part and what keyflow is doing.
type MFAUser struct {
	Account, Name, State string
	// Notified is when the user was told how to enrol; Deadline is when
	// the grace period ends (the MFA execution's own graceDeadline, the
	// instant its Wait state waits for).
	Notified, Deadline time.Time
	Detail             string
}

// PasswordPolicy is one account's password policy against the baseline;
// each finding is a shortfall ("no password policy" is one).
type PasswordPolicy struct {
	Account   string
	Present   bool
	Compliant bool
	Findings  []string
}

// NonCompliant counts the accounts whose password policy falls short.
func (h *Hygiene) NonCompliant() int {
	n := 0
	for _, p := range h.PasswordPolicies {
		if !p.Compliant {
			n++
		}
	}
	return n
}

// Bucket is a range of key ages [Min, Max) in days; Max 0 is open.
type Bucket struct {
	Label    string
	Min, Max int
	Count    int
	Due      bool // keys of this age are due for rotation
}

// Key is one access key.
type Key struct {
	Account, User, ID, Status string
	Created                   time.Time
	AgeDays                   int
	// Next is what the policy does next to the key and when.
	Next string
}

// User is one IAM user and why it is listed.
type User struct {
	Account, Name, Detail string
}

// Names the report reads, repeated from tasks (report must not import the
// handlers): the quarantine's marker tag and the exemption tag.
const (
	quarantineTag = "keyflow:quarantine"
	exemptTag     = "keyflow:exempt"
	exemptExpiry  = "keyflow:exempt-expiry"
)

// maxUsersPerAccount bounds one account's walk; IAM's own quota is 5,000
// users per account.
const maxUsersPerAccount = 10000

func buckets(p Policy) []Bucket {
	return []Bucket{
		{Label: fmt.Sprintf("0–%d", p.RotationDays-1), Min: 0, Max: p.RotationDays},
		{Label: fmt.Sprintf("%d–%d", p.RotationDays, p.InactiveDays-1), Min: p.RotationDays, Max: p.InactiveDays, Due: true},
		{Label: fmt.Sprintf("%d–%d", p.InactiveDays, p.BufferDays-1), Min: p.InactiveDays, Max: p.BufferDays, Due: true},
		{Label: fmt.Sprintf("%d–179", p.BufferDays), Min: p.BufferDays, Max: 180, Due: true},
		{Label: "180–364", Min: 180, Max: 365, Due: true},
		{Label: "365+", Min: 365, Due: true},
	}
}

// Gather reads every account's users and keys at now. iamFor gives one
// account's client (an assumed role on AWS, a lookup in the sandbox). An
// account that cannot be read fails the whole report: a report that
// quietly leaves out an account says it is healthier than it is.
func Gather(ctx context.Context, accounts []string, iamFor func(ctx context.Context, account string) (IAM, error), p Policy, now time.Time) (*Estate, error) {
	if p.RotationDays <= 0 || p.InactiveDays <= p.RotationDays || p.BufferDays <= p.InactiveDays {
		return nil, fmt.Errorf("report: policy %d/%d/%d days: want 0 < rotation < inactive < buffer", p.RotationDays, p.InactiveDays, p.BufferDays)
	}
	e := &Estate{At: now.UTC(), Policy: p, Accounts: append([]string{}, accounts...), Buckets: buckets(p)}
	sort.Strings(e.Accounts)
	for _, acct := range e.Accounts {
		c, err := iamFor(ctx, acct)
		if err != nil {
			return nil, fmt.Errorf("report: account %q: %w", acct, err)
		}
		if err := e.account(ctx, acct, c); err != nil {
			return nil, fmt.Errorf("report: account %q: %w", acct, err)
		}
	}
	sortKeys := func(ks []Key) {
		sort.Slice(ks, func(i, j int) bool {
			if ks[i].AgeDays != ks[j].AgeDays {
				return ks[i].AgeDays > ks[j].AgeDays
			}
			return ks[i].Account+ks[i].User+ks[i].ID < ks[j].Account+ks[j].User+ks[j].ID
		})
	}
	sortKeys(e.Due)
	sortKeys(e.Inactive)
	return e, nil
}

func (e *Estate) account(ctx context.Context, acct string, c IAM) error {
	in := &iam.ListUsersInput{}
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := c.ListUsers(ctx, in)
		if err != nil {
			return fmt.Errorf("ListUsers: %w", err)
		}
		for _, u := range page.Users {
			if n++; n > maxUsersPerAccount {
				return fmt.Errorf("more than %d users", maxUsersPerAccount)
			}
			if err := e.user(ctx, acct, aws.ToString(u.UserName), c); err != nil {
				return err
			}
		}
		if !page.IsTruncated || page.Marker == nil {
			return nil
		}
		in.Marker = page.Marker
	}
}

func (e *Estate) user(ctx context.Context, acct, name string, c IAM) error {
	e.Users++
	keys, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: &name})
	if err != nil {
		return fmt.Errorf("ListAccessKeys of %q: %w", name, err)
	}
	tags, err := c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: &name})
	if err != nil {
		return fmt.Errorf("ListUserTags of %q: %w", name, err)
	}
	tag := map[string]string{}
	for _, t := range tags.Tags {
		tag[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if v, ok := tag[quarantineTag]; ok {
		detail := "keys deactivated by the quarantine: " + strings.ReplaceAll(v, " ", ", ")
		if v == "none" || v == "" {
			detail = "no keys were active"
		}
		e.Quarantined = append(e.Quarantined, User{Account: acct, Name: name, Detail: detail})
	}
	exempt := tag[exemptTag] == "true"
	if exp, err := time.Parse("2006-01-02", tag[exemptExpiry]); exempt && err == nil && exp.Before(e.At) {
		exempt = false // a lapsed exemption protects nothing
	}

	md := keys.AccessKeyMetadata
	e.Keys += len(md)
	if len(md) == 2 {
		e.TwoKeys = append(e.TwoKeys, User{Account: acct, Name: name,
			Detail: aws.ToString(md[0].AccessKeyId) + " (" + string(md[0].Status) + "), " + aws.ToString(md[1].AccessKeyId) + " (" + string(md[1].Status) + ")"})
	}
	for i, k := range md {
		created := aws.ToTime(k.CreateDate)
		age := int(e.At.Sub(created).Hours() / 24)
		key := Key{Account: acct, User: name, ID: aws.ToString(k.AccessKeyId), Status: string(k.Status), Created: created, AgeDays: age}
		for j := range e.Buckets {
			if b := &e.Buckets[j]; age >= b.Min && (b.Max == 0 || age < b.Max) {
				b.Count++
			}
		}
		switch {
		case k.Status == iamtypes.StatusTypeInactive:
			del := created.AddDate(0, 0, e.Policy.BufferDays)
			key.Next = "delete " + when(del, e.At)
			e.Inactive = append(e.Inactive, key)
		case age >= e.Policy.RotationDays && !exempt && !rotating(md, i):
			key.Next = "rotate now"
			e.Due = append(e.Due, key)
		}
	}

	if _, err := c.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: &name}); err != nil {
		var none *iamtypes.NoSuchEntityException
		if errors.As(err, &none) {
			return nil
		}
		return fmt.Errorf("GetLoginProfile of %q: %w", name, err)
	}
	mfa, err := c.ListMFADevices(ctx, &iam.ListMFADevicesInput{UserName: &name})
	if err != nil {
		return fmt.Errorf("ListMFADevices of %q: %w", name, err)
	}
	if len(mfa.MFADevices) == 0 {
		e.NoMFA = append(e.NoMFA, User{Account: acct, Name: name, Detail: "console password, no MFA device"})
	}
	return nil
}

// rotating reports whether key i already has a younger Active successor:
// a lifecycle is under way, and the key is in its wait, not due.
func rotating(keys []iamtypes.AccessKeyMetadata, i int) bool {
	for j, k := range keys {
		if j != i && k.Status == iamtypes.StatusTypeActive && aws.ToTime(k.CreateDate).After(aws.ToTime(keys[i].CreateDate)) {
			return true
		}
	}
	return false
}

func when(t, now time.Time) string {
	if !t.After(now) {
		return "now (due since " + t.Format("2006-01-02") + ")"
	}
	return "on " + t.Format("2006-01-02")
}

// MaxBucket is the largest bucket count, for the chart's scale.
func (e *Estate) MaxBucket() int {
	m := 1
	for _, b := range e.Buckets {
		m = max(m, b.Count)
	}
	return m
}
