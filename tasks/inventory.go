package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
)

// Defaults of the rotation policy (days from a key's creation).
const (
	DefaultRotationDays = 45
	DefaultInactiveDays = 60
	// DefaultMaxDue keeps the output well under Step Functions' 256 KiB
	// payload limit; larger estates run one inventory per account (a Map).
	DefaultMaxDue = 400
	maxOUDepth    = 10 // Organizations allows 5 levels below the root
)

// Exemption keeps keys out of rotation, as data that lapses: after Expires
// it no longer applies and is listed in the output as lapsed.
type Exemption struct {
	// Scope is "account", "ou", "user", "group" or "tag".
	Scope string `json:"scope"`
	// Value is the account id, OU id, user name, group name, or for tags
	// "key" or "key=value".
	Value string `json:"value"`
	// AccountID narrows a user, group or tag exemption to one account.
	AccountID string    `json:"accountId,omitempty"`
	Reason    string    `json:"reason"`
	Owner     string    `json:"owner"`
	Expires   time.Time `json:"expires"`
}

// InventoryInput chooses the accounts and the policy.
type InventoryInput struct {
	// AccountID inventories one account; Organization every ACTIVE account
	// of the Organization, limited to OrganizationalUnitIDs (and the OUs
	// below them) when given.
	AccountID             string      `json:"accountId,omitempty"`
	Organization          bool        `json:"organization,omitempty"`
	OrganizationalUnitIDs []string    `json:"organizationalUnitIds,omitempty"`
	RotationDays          int         `json:"rotationDays,omitempty"`
	InactiveDays          int         `json:"inactiveDays,omitempty"`
	BufferDays            int         `json:"bufferDays,omitempty"`
	Exemptions            []Exemption `json:"exemptions,omitempty"`
	MaxDue                int         `json:"maxDue,omitempty"`
	DryRun                bool        `json:"dryRun,omitempty"`
	// Marker continues a single-account inventory where the previous page
	// of due keys ended (its NextMarker).
	Marker string `json:"marker,omitempty"`
}

// KeyReport is one key due for rotation (or exempt from it).
type KeyReport struct {
	AccountID       string    `json:"accountId"`
	UserName        string    `json:"userName"`
	AccessKeyID     string    `json:"accessKeyId"`
	Status          string    `json:"status"`
	CreateDate      time.Time `json:"createDate"`
	AgeDays         int       `json:"ageDays"`
	LastUsedDate    time.Time `json:"lastUsedDate,omitzero"`
	LastUsedService string    `json:"lastUsedService,omitempty"`
	// Action is what the lifecycle will do: "rotate",
	// "rotate-after-deleting-inactive" (the user's other key is Inactive and
	// goes first), "rotation-in-progress" (a younger active second key
	// exists: a lifecycle is already running) or "blocked-two-active-keys"
	// (both keys are due; a person must choose). Exempt keys say "exempt".
	Action           string    `json:"action"`
	OtherAccessKeyID string    `json:"otherAccessKeyId,omitempty"`
	DeactivateAt     time.Time `json:"deactivateAt"`
	DeleteAt         time.Time `json:"deleteAt"`
	ExemptReason     string    `json:"exemptReason,omitempty"`
	ExemptOwner      string    `json:"exemptOwner,omitempty"`
	ExemptUntil      time.Time `json:"exemptUntil,omitzero"`
}

// AccountFailure is an account the inventory could not read; the others are
// still reported.
type AccountFailure struct {
	AccountID string `json:"accountId"`
	Error     string `json:"error"`
	ErrorType string `json:"errorType"`
}

// InventoryOutput is the inventory.
type InventoryOutput struct {
	CheckedAt        time.Time        `json:"checkedAt"`
	RotationDays     int              `json:"rotationDays"`
	Accounts         []string         `json:"accounts"`
	FailedAccounts   []AccountFailure `json:"failedAccounts"`
	Users            int              `json:"users"`
	Keys             int              `json:"keys"`
	Due              []KeyReport      `json:"due"`
	Exempt           []KeyReport      `json:"exempt"`
	LapsedExemptions []Exemption      `json:"lapsedExemptions"`
	// Truncated says Due was cut at MaxDue. For one account, NextMarker is
	// where the next call (with it as Marker) carries on, so that paging
	// through an account reports every due key exactly once; for an
	// Organization, run again per account.
	Truncated  bool   `json:"truncated"`
	NextMarker string `json:"nextMarker"`
	DryRun     bool   `json:"dryRun"`
}

// Inventory finds the access keys due for rotation.
type Inventory struct {
	Accounts Accounts
	Now      func() time.Time
	Log      *slog.Logger
}

// Handle implements the handler.
//
// Errors: InvalidInput, AccountUnavailable (single-account mode; in
// Organization mode such accounts are listed in failedAccounts), Throttled,
// ServiceError.
func (h *Inventory) Handle(ctx context.Context, in InventoryInput) (*InventoryOutput, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	now := clock(h.Now)
	log := logger(h.Log).With("handler", "inventory")
	pol := policy{rotation: orDefault(in.RotationDays, DefaultRotationDays), inactive: orDefault(in.InactiveDays, DefaultInactiveDays), buffer: orDefault(in.BufferDays, DefaultBufferDays)}
	out := &InventoryOutput{
		CheckedAt: now, RotationDays: pol.rotation, DryRun: in.DryRun,
		Accounts: []string{}, FailedAccounts: []AccountFailure{}, Due: []KeyReport{}, Exempt: []KeyReport{}, LapsedExemptions: []Exemption{},
	}
	var live []Exemption
	for _, e := range in.Exemptions {
		if !e.Expires.After(now) {
			out.LapsedExemptions = append(out.LapsedExemptions, e)
			continue
		}
		live = append(live, e)
	}

	type account struct {
		id  string
		ous []string
	}
	var accounts []account
	if in.Organization {
		orgc, err := h.Accounts.Organizations(ctx)
		if err != nil {
			return nil, err
		}
		paths, err := walkOrganization(ctx, orgc)
		if err != nil {
			return nil, err
		}
		for id, ous := range paths {
			if len(in.OrganizationalUnitIDs) > 0 && !intersects(ous, in.OrganizationalUnitIDs) {
				continue
			}
			accounts = append(accounts, account{id, ous})
		}
		sort.Slice(accounts, func(i, j int) bool { return accounts[i].id < accounts[j].id })
	} else {
		accounts = []account{{id: in.AccountID}}
	}

	maxDue := orDefault(in.MaxDue, DefaultMaxDue)
	for _, a := range accounts {
		iamc, err := h.Accounts.IAM(ctx, a.id)
		if err == nil {
			err = h.account(ctx, iamc, a.id, a.ous, pol, live, now, page{maxDue: maxDue, marker: in.Marker, byPage: !in.Organization}, out)
		}
		if err != nil {
			if !in.Organization || ctx.Err() != nil {
				return nil, err
			}
			log.Warn("account skipped", "accountId", a.id, "error", err.Error())
			out.FailedAccounts = append(out.FailedAccounts, AccountFailure{AccountID: a.id, Error: err.Error(), ErrorType: errorType(err)})
			continue
		}
		out.Accounts = append(out.Accounts, a.id)
	}
	log.Info("inventory done", "accounts", len(out.Accounts), "users", out.Users, "keys", out.Keys, "due", len(out.Due), "exempt", len(out.Exempt))
	return out, nil
}

type policy struct{ rotation, inactive, buffer int }

func (in *InventoryInput) validate() error {
	switch {
	case in.Organization && in.AccountID != "":
		return &InvalidInput{Field: "accountId", Reason: "give accountId or organization, not both"}
	case !in.Organization && !validAccountID(in.AccountID):
		return &InvalidInput{Field: "accountId", Reason: fmt.Sprintf("%q is not a 12-digit account id", truncate(in.AccountID))}
	case in.Organization && in.Marker != "":
		return &InvalidInput{Field: "marker", Reason: "pages through one account: give accountId"}
	case !in.Organization && len(in.OrganizationalUnitIDs) > 0:
		return &InvalidInput{Field: "organizationalUnitIds", Reason: "needs organization"}
	case in.RotationDays < 0 || in.InactiveDays < 0 || in.BufferDays < 0 || in.MaxDue < 0:
		return &InvalidInput{Field: "rotationDays", Reason: "days and limits must not be negative"}
	}
	rot, ina, buf := orDefault(in.RotationDays, DefaultRotationDays), orDefault(in.InactiveDays, DefaultInactiveDays), orDefault(in.BufferDays, DefaultBufferDays)
	if !(rot < ina && ina < buf) {
		return &InvalidInput{Field: "inactiveDays", Reason: fmt.Sprintf("need rotationDays < inactiveDays < bufferDays, got %d, %d, %d", rot, ina, buf)}
	}
	for i, e := range in.Exemptions {
		field := fmt.Sprintf("exemptions[%d]", i)
		switch {
		case !slices.Contains([]string{"account", "ou", "user", "group", "tag"}, e.Scope):
			return &InvalidInput{Field: field + ".scope", Reason: fmt.Sprintf("unknown scope %q", truncate(e.Scope))}
		case e.Value == "":
			return &InvalidInput{Field: field + ".value", Reason: "is empty"}
		case e.Reason == "" || e.Owner == "":
			return &InvalidInput{Field: field, Reason: "every exemption needs a reason and an owner"}
		case e.Expires.IsZero():
			return &InvalidInput{Field: field + ".expires", Reason: "every exemption needs an expiry date"}
		}
	}
	return nil
}

// page bounds how many due keys one call reports. For one account
// (byPage) the cut falls between pages of users, and NextMarker is the
// marker of the first page left out, so that no key is skipped or reported
// twice: a page holds at most maxDue/2 users, each with at most two keys.
// For an Organization, keys past maxDue are counted and left out.
type page struct {
	maxDue int
	marker string
	byPage bool
}

func (p page) usersPerPage() int32 {
	return int32(max(1, min(100, p.maxDue/2)))
}

// account inventories one account into out.
func (h *Inventory) account(ctx context.Context, c IAMAPI, accountID string, ous []string, pol policy,
	exemptions []Exemption, now time.Time, pg page, out *InventoryOutput) error {
	maxDue := pg.maxDue
	in := &iam.ListUsersInput{}
	if pg.byPage {
		in.MaxItems = aws.Int32(pg.usersPerPage())
	}
	if pg.marker != "" {
		in.Marker = aws.String(pg.marker)
	}
	for {
		page, err := c.ListUsers(ctx, in)
		if err != nil {
			return awsErr("ListUsers", err)
		}
		if pg.byPage && len(out.Due) > 0 && len(out.Due)+2*len(page.Users) > maxDue {
			out.Truncated, out.NextMarker = true, aws.ToString(in.Marker)
			return nil
		}
		for _, u := range page.Users {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := aws.ToString(u.UserName)
			keys, err := listKeys(ctx, c, accountID, name)
			if _, gone := err.(*UserNotFound); gone {
				continue // deleted while we listed
			} else if err != nil {
				return err
			}
			out.Users++
			out.Keys += len(keys)
			reports := dueKeys(accountID, name, keys, pol, now)
			if len(reports) == 0 {
				continue
			}
			ex, err := h.exemption(ctx, c, accountID, name, ous, exemptions)
			if err != nil {
				return err
			}
			for _, r := range reports {
				lu, err := c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(r.AccessKeyID)})
				if err != nil && !isNoSuchEntity(err) {
					return awsErr("GetAccessKeyLastUsed", err)
				}
				if err == nil && lu.AccessKeyLastUsed != nil && lu.AccessKeyLastUsed.LastUsedDate != nil {
					r.LastUsedDate = lu.AccessKeyLastUsed.LastUsedDate.UTC()
					r.LastUsedService = aws.ToString(lu.AccessKeyLastUsed.ServiceName)
				}
				if ex != nil {
					r.Action, r.ExemptReason, r.ExemptOwner, r.ExemptUntil = "exempt", ex.Reason, ex.Owner, ex.Expires
					out.Exempt = append(out.Exempt, r)
					continue
				}
				if !pg.byPage && len(out.Due) >= maxDue {
					out.Truncated = true
					continue
				}
				out.Due = append(out.Due, r)
			}
		}
		if !page.IsTruncated || page.Marker == nil {
			return nil
		}
		in.Marker = page.Marker
	}
}

// dueKeys reports the user's active keys older than the rotation period,
// each with what the lifecycle will do given the user's other key.
func dueKeys(accountID, userName string, keys []iamtypes.AccessKeyMetadata, pol policy, now time.Time) []KeyReport {
	var due []KeyReport
	isDue := func(k iamtypes.AccessKeyMetadata) bool {
		return k.Status == iamtypes.StatusTypeActive && days(aws.ToTime(k.CreateDate), now) >= pol.rotation
	}
	for _, k := range keys {
		if !isDue(k) {
			continue
		}
		created := aws.ToTime(k.CreateDate).UTC()
		r := KeyReport{
			AccountID: accountID, UserName: userName, AccessKeyID: aws.ToString(k.AccessKeyId), Status: string(k.Status),
			CreateDate: created, AgeDays: days(created, now), Action: "rotate",
			DeactivateAt: created.Add(time.Duration(pol.inactive) * 24 * time.Hour),
			DeleteAt:     created.Add(time.Duration(pol.buffer) * 24 * time.Hour),
		}
		for _, o := range keys {
			if aws.ToString(o.AccessKeyId) == r.AccessKeyID {
				continue
			}
			r.OtherAccessKeyID = aws.ToString(o.AccessKeyId)
			switch {
			case o.Status == iamtypes.StatusTypeInactive:
				r.Action = "rotate-after-deleting-inactive"
			case isDue(o):
				r.Action = "blocked-two-active-keys"
			default:
				r.Action = "rotation-in-progress"
			}
		}
		due = append(due, r)
	}
	return due
}

// exemption is the first live exemption that covers the user, or nil. Tags
// and groups are read only when an exemption needs them: inventories of
// thousands of users should not pay two extra calls per user for nothing.
func (h *Inventory) exemption(ctx context.Context, c IAMAPI, accountID, userName string, ous []string, exemptions []Exemption) (*Exemption, error) {
	var tags map[string]string
	var groups []string
	for i := range exemptions {
		e := &exemptions[i]
		if e.AccountID != "" && e.AccountID != accountID && e.Scope != "account" {
			continue
		}
		switch e.Scope {
		case "account":
			if e.Value == accountID {
				return e, nil
			}
		case "ou":
			if slices.Contains(ous, e.Value) {
				return e, nil
			}
		case "user":
			if e.Value == userName {
				return e, nil
			}
		case "group":
			if groups == nil {
				g, err := userGroups(ctx, c, accountID, userName)
				if err != nil {
					return nil, err
				}
				groups = append(g, "") // non-nil: read once
			}
			if slices.Contains(groups, e.Value) {
				return e, nil
			}
		case "tag":
			if tags == nil {
				t, err := userTags(ctx, c, accountID, userName)
				if err != nil {
					return nil, err
				}
				tags = t
			}
			k, v, hasValue := strings.Cut(e.Value, "=")
			if tv, ok := tags[k]; ok && (!hasValue || tv == v) {
				return e, nil
			}
		}
	}
	return nil, nil
}

// walkOrganization maps every ACTIVE account to the OU ids above it (root
// first), walking the tree from the roots.
func walkOrganization(ctx context.Context, c OrganizationsAPI) (map[string][]string, error) {
	paths := map[string][]string{}
	var walk func(parent string, path []string) error
	walk = func(parent string, path []string) error {
		if len(path) > maxOUDepth {
			return &ServiceError{Op: "ListOrganizationalUnitsForParent", Err: fmt.Errorf("organization deeper than %d levels below %s", maxOUDepth, parent)}
		}
		ap := organizations.NewListAccountsForParentPaginator(c, &organizations.ListAccountsForParentInput{ParentId: aws.String(parent)})
		for ap.HasMorePages() {
			page, err := ap.NextPage(ctx)
			if err != nil {
				return awsErr("ListAccountsForParent", err)
			}
			for _, a := range page.Accounts {
				if active(a) {
					paths[aws.ToString(a.Id)] = slices.Clone(path)
				}
			}
		}
		op := organizations.NewListOrganizationalUnitsForParentPaginator(c, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(parent)})
		for op.HasMorePages() {
			page, err := op.NextPage(ctx)
			if err != nil {
				return awsErr("ListOrganizationalUnitsForParent", err)
			}
			for _, ou := range page.OrganizationalUnits {
				id := aws.ToString(ou.Id)
				if err := walk(id, append(slices.Clone(path), id)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	rp := organizations.NewListRootsPaginator(c, &organizations.ListRootsInput{})
	for rp.HasMorePages() {
		page, err := rp.NextPage(ctx)
		if err != nil {
			return nil, awsErr("ListRoots", err)
		}
		for _, r := range page.Roots {
			if err := walk(aws.ToString(r.Id), []string{aws.ToString(r.Id)}); err != nil {
				return nil, err
			}
		}
	}
	return paths, nil
}

// active reads the newer State field and falls back to the deprecated
// Status, which older endpoints (and emulators) still send alone.
func active(a orgtypes.Account) bool {
	if a.State != "" {
		return a.State == orgtypes.AccountStateActive
	}
	return a.Status == orgtypes.AccountStatusActive
}

func intersects(a, b []string) bool {
	for _, s := range a {
		if slices.Contains(b, s) {
			return true
		}
	}
	return false
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// errorType is the name aws-lambda-go would report for err.
func errorType(err error) string {
	t := fmt.Sprintf("%T", err)
	if i := strings.LastIndex(t, "."); i >= 0 {
		t = t[i+1:]
	}
	return strings.TrimPrefix(t, "*")
}
