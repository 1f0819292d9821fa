package tasks

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

func newInventory(f *fx) func(context.Context, InventoryInput) (*InventoryOutput, error) {
	return (&Inventory{Accounts: f.accounts, Now: f.now, Log: f.log}).Handle
}

func actions(rs []KeyReport) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.UserName+":"+r.Action)
	}
	sort.Strings(out)
	return out
}

func TestInventory(t *testing.T) {
	runTable(t, newInventory, []tcase[InventoryInput, InventoryOutput]{
		{
			name: "due keys, two-key users, exemptions by tag, group and user, lapsed exemptions",
			setup: func(f *fx) InventoryInput {
				f.user("a", userSpec{keys: 1})
				f.user("b", userSpec{keys: 2})
				f.user("c", userSpec{keys: 2, inactive: 1})
				f.user("d", userSpec{keys: 1, tags: map[string]string{"team": "legacy"}})
				f.user("e", userSpec{keys: 1, groups: []string{"breakglass"}})
				f.user("f", userSpec{keys: 1})
				f.user("nokeys", userSpec{})
				f.advance(50 * day)
				exp := f.now().Add(30 * day)
				return InventoryInput{AccountID: f.acct, Exemptions: []Exemption{
					{Scope: "tag", Value: "team=legacy", Reason: "vendor appliance", Owner: "ops@example.com", Expires: exp},
					{Scope: "group", Value: "breakglass", Reason: "emergency access", Owner: "sec@example.com", Expires: exp},
					{Scope: "user", Value: "f", Reason: "lapsed", Owner: "sec@example.com", Expires: f.now().Add(-day)},
					{Scope: "account", Value: "999999999999", Reason: "other account", Owner: "sec@example.com", Expires: exp},
				}}
			},
			retry: true,
			check: func(f *fx, in InventoryInput, out *InventoryOutput) {
				want := []string{"a:rotate", "b:blocked-two-active-keys", "b:blocked-two-active-keys", "c:rotate-after-deleting-inactive", "f:rotate"}
				if got := actions(out.Due); !slices.Equal(got, want) {
					f.t.Fatalf("due %v, want %v", got, want)
				}
				if got := actions(out.Exempt); !slices.Equal(got, []string{"d:exempt", "e:exempt"}) {
					f.t.Fatalf("exempt %v", got)
				}
				if len(out.LapsedExemptions) != 1 || out.Users != 7 || out.Keys != 8 {
					f.t.Fatalf("lapsed %v users %d keys %d", out.LapsedExemptions, out.Users, out.Keys)
				}
				for _, r := range out.Due {
					if r.AgeDays < 50 || !r.DeleteAt.After(r.DeactivateAt) || r.DeactivateAt.Sub(r.CreateDate) != 60*day {
						f.t.Fatalf("report %+v", r)
					}
				}
			},
		},
		{
			name: "young keys are not due; an old key beside a young active one is in rotation",
			setup: func(f *fx) InventoryInput {
				f.user("h", userSpec{keys: 1})
				f.advance(50 * day)
				f.key("h")
				f.user("g", userSpec{keys: 1})
				return InventoryInput{AccountID: f.acct}
			},
			sandboxOnly: "needs keys of different ages; moto stamps every key with the wall clock",
			check: func(f *fx, in InventoryInput, out *InventoryOutput) {
				if got := actions(out.Due); !slices.Equal(got, []string{"h:rotation-in-progress"}) {
					f.t.Fatalf("due %v", got)
				}
			},
		},
		{
			name: "last use is reported",
			setup: func(f *fx) InventoryInput {
				f.user("u", userSpec{})
				id, secret := f.key("u")
				f.useKey(id, secret)
				f.advance(46 * day)
				return InventoryInput{AccountID: f.acct}
			},
			check: func(f *fx, in InventoryInput, out *InventoryOutput) {
				if len(out.Due) != 1 || out.Due[0].LastUsedDate.IsZero() || out.Due[0].LastUsedService == "" {
					f.t.Fatalf("due %+v", out.Due)
				}
			},
		},
		{
			name: "every page of users is read",
			setup: func(f *fx) InventoryInput {
				for i := 0; i < 130; i++ {
					if _, err := f.iam(f.acct).CreateUser(f.t.Context(), &iam.CreateUserInput{UserName: aws.String(fmt.Sprintf("user%03d", i))}); err != nil {
						f.t.Fatal(err)
					}
				}
				return InventoryInput{AccountID: f.acct, DryRun: true}
			},
			check: func(f *fx, in InventoryInput, out *InventoryOutput) {
				if out.Users != 130 || !out.DryRun {
					f.t.Fatalf("users %d", out.Users)
				}
			},
		},
		{
			name: "maxDue pages through an account: every due key once",
			setup: func(f *fx) InventoryInput {
				for _, u := range []string{"p", "q", "r", "s", "t"} {
					f.user(u, userSpec{keys: 1})
				}
				f.user("two", userSpec{keys: 2})
				f.advance(46 * day)
				return InventoryInput{AccountID: f.acct, MaxDue: 4}
			},
			sandboxOnly: "moto 5.2.1's ListUsers ignores MaxItems and returns every user in one page",
			check: func(f *fx, in InventoryInput, out *InventoryOutput) {
				seen := map[string]int{}
				pages := 0
				for {
					pages++
					if len(out.Due) > in.MaxDue {
						f.t.Fatalf("page %d: %d due keys, more than maxDue %d", pages, len(out.Due), in.MaxDue)
					}
					for _, k := range out.Due {
						seen[k.UserName+"/"+k.AccessKeyID]++
					}
					if out.NextMarker == "" {
						break
					}
					if !out.Truncated || pages > 10 {
						f.t.Fatalf("page %d: nextMarker %q, truncated %v", pages, out.NextMarker, out.Truncated)
					}
					in.Marker = out.NextMarker
					var err error
					if out, err = newInventory(f)(f.t.Context(), in); err != nil {
						f.t.Fatal(err)
					}
				}
				if len(seen) != 7 || pages < 2 {
					f.t.Fatalf("%d pages, due keys %v", pages, seen)
				}
				for k, n := range seen {
					if n != 1 {
						f.t.Fatalf("%s reported %d times", k, n)
					}
				}
			},
		},
		{
			name: "a marker with an Organization is refused",
			setup: func(f *fx) InventoryInput {
				return InventoryInput{Organization: true, Marker: "x"}
			},
			wantErr: "InvalidInput",
		},
		{
			name: "an exemption without an expiry is refused",
			setup: func(f *fx) InventoryInput {
				return InventoryInput{AccountID: f.acct, Exemptions: []Exemption{{Scope: "user", Value: "x", Reason: "r", Owner: "o"}}}
			},
			wantErr: "InvalidInput",
		},
		{
			name: "policy out of order is refused",
			setup: func(f *fx) InventoryInput {
				return InventoryInput{AccountID: f.acct, RotationDays: 90, InactiveDays: 60}
			},
			wantErr: "InvalidInput",
		},
		{
			name: "throttled ListUsers propagates",
			setup: func(f *fx) InventoryInput {
				f.faults.failOp("ListUsers", fault{err: errThrottle})
				return InventoryInput{AccountID: f.acct}
			},
			wantErr: "Throttled",
		},
	})
}

// The Organization walk runs on the sandbox only: moto's Organizations makes
// its own account ids, while the member-role path (AssumeRole per account)
// is exercised by every moto case above.
func TestInventoryOrganization(t *testing.T) {
	f := newSandboxFx(t)
	sb := f.sb
	prod, dev, susp := "300000000001", "300000000002", "300000000003"
	for _, a := range []struct {
		id string
		ou []string
	}{{prod, []string{"Prod", "Web"}}, {dev, []string{"Dev"}}, {susp, []string{"Prod"}}} {
		if err := sb.AddAccount(a.id, "acct-"+a.id, a.ou...); err != nil {
			t.Fatal(err)
		}
		f.acct = a.id
		f.user("svc", userSpec{keys: 1})
	}
	if err := sb.SetAccountStatus(susp, "SUSPENDED"); err != nil {
		t.Fatal(err)
	}
	prodOU, err := sb.OrganizationalUnit("Prod")
	if err != nil {
		t.Fatal(err)
	}
	devOU, err := sb.OrganizationalUnit("Dev")
	if err != nil {
		t.Fatal(err)
	}
	f.advance(46 * day)
	h := newInventory(f)

	out, err := invoke(t, h, InventoryInput{Organization: true, Exemptions: []Exemption{
		{Scope: "ou", Value: devOU, Reason: "sandbox accounts", Owner: "dev@example.com", Expires: f.now().Add(time.Hour)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The test account of newSandboxFx has no users; the suspended one is
	// skipped; Dev is exempt through its OU.
	if slices.Contains(out.Accounts, susp) || !slices.Contains(out.Accounts, prod) || !slices.Contains(out.Accounts, dev) {
		t.Fatalf("accounts %v", out.Accounts)
	}
	if len(out.Due) != 1 || out.Due[0].AccountID != prod || len(out.Exempt) != 1 || out.Exempt[0].AccountID != dev {
		t.Fatalf("due %+v exempt %+v", out.Due, out.Exempt)
	}

	out, err = invoke(t, h, InventoryInput{Organization: true, OrganizationalUnitIDs: []string{prodOU}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Accounts, []string{prod}) {
		t.Fatalf("OU filter (recursive): accounts %v", out.Accounts)
	}
}
