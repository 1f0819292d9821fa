package sandbox

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
)

// Organizations is the Organization as seen from its management account,
// with the methods of *organizations.Client.
type Organizations struct{ s *Sandbox }

// Organizations returns the Organizations client of the management account.
func (s *Sandbox) Organizations() *Organizations { return &Organizations{s: s} }

// organization is the one Organization: a root, nested OUs and accounts.
// Its ids derive from the management account so they survive a restart even
// before anything is written.
type organization struct {
	ID       string
	RootID   string
	Mgmt     string
	ous      map[string]*orgUnit    // OU id -> OU
	accounts map[string]*orgAccount // account id -> account
}

type orgUnit struct {
	ID     string
	Name   string
	Parent string
}

type orgAccount struct {
	ID           string
	Name         string
	Email        string
	Parent       string
	Status       string // ACTIVE, SUSPENDED or PENDING_CLOSURE
	JoinedMethod string
	Joined       time.Time
}

func newOrganization(mgmt string) *organization {
	return &organization{
		ID:       "o-" + stableID(10, lowerAlnum, mgmt, "organization"),
		RootID:   "r-" + stableID(4, lowerAlnum, mgmt, "root"),
		Mgmt:     mgmt,
		ous:      map[string]*orgUnit{},
		accounts: map[string]*orgAccount{},
	}
}

const orgPageSize = 20 // Organizations returns at most 20 results a page

// OrganizationalUnit returns the id of the OU at path under the root (for
// example "Prod", "Web"), creating the OUs that are missing.
func (s *Sandbox) OrganizationalUnit(path ...string) (string, error) {
	var id string
	err := s.write(context.Background(), func() error {
		var err error
		id, err = s.ouPath(path)
		return err
	})
	return id, err
}

// ouPath does the work of OrganizationalUnit under the write lock.
func (s *Sandbox) ouPath(path []string) (string, error) {
	o := s.org
	parent := o.RootID
	for _, name := range path {
		if name == "" || len(name) > 128 {
			return "", fmt.Errorf("sandbox: OU name %q must be 1 to 128 characters", truncate(name))
		}
		var found *orgUnit
		for _, ou := range o.ous {
			if ou.Parent == parent && ou.Name == name {
				found = ou
			}
		}
		if found == nil {
			found = &orgUnit{ID: "ou-" + o.RootID[2:] + "-" + stableID(8, lowerAlnum, parent, name), Name: name, Parent: parent}
			o.ous[found.ID] = found
			s.touch("", kindOU, found.ID)
		}
		parent = found.ID
	}
	return parent, nil
}

// AddAccount puts an account in the Organization, in the OU at ouPath
// (created as needed; none means the root), moving it if it is already a
// member. The account is ACTIVE.
func (s *Sandbox) AddAccount(id, name string, ouPath ...string) error {
	return s.write(context.Background(), func() error { return s.addAccount(id, name, ouPath) })
}

func (s *Sandbox) addAccount(id, name string, ouPath []string) error {
	if !isAccountID(id) {
		return fmt.Errorf("sandbox: account id %q is not 12 digits", truncate(id))
	}
	parent, err := s.ouPath(ouPath)
	if err != nil {
		return err
	}
	acct := s.org.accounts[id]
	if acct == nil {
		acct = &orgAccount{ID: id, Email: "aws+" + id + "@example.com", Status: "ACTIVE", JoinedMethod: "CREATED", Joined: s.clock()}
		s.org.accounts[id] = acct
	}
	acct.Name, acct.Parent = name, parent
	s.acct(id)
	s.touch(id, kindAccount, id) // so that the account exists after a reload
	s.touch("", kindOrgAccount, id)
	return nil
}

// SetAccountStatus sets a member account ACTIVE, SUSPENDED or
// PENDING_CLOSURE; only ACTIVE accounts can be assumed into.
func (s *Sandbox) SetAccountStatus(id, status string) error {
	return s.write(context.Background(), func() error {
		acct := s.org.accounts[id]
		if acct == nil {
			return fmt.Errorf("sandbox: account %q is not in the Organization", truncate(id))
		}
		switch orgtypes.AccountStatus(status) {
		case orgtypes.AccountStatusActive, orgtypes.AccountStatusSuspended, orgtypes.AccountStatusPendingClosure:
		default:
			return fmt.Errorf("sandbox: account status %q is not ACTIVE, SUSPENDED or PENDING_CLOSURE", truncate(status))
		}
		acct.Status = status
		s.touch("", kindOrgAccount, id)
		return nil
	})
}

func (c *Organizations) arn(kind, id string) string {
	o := c.s.org
	return fmt.Sprintf("arn:aws:organizations::%s:%s/%s/%s", o.Mgmt, kind, o.ID, id)
}

func (c *Organizations) apiAccount(a *orgAccount) orgtypes.Account {
	return orgtypes.Account{
		Id: aws.String(a.ID), Arn: aws.String(c.arn("account", a.ID)), Email: aws.String(a.Email), Name: aws.String(a.Name),
		Status: orgtypes.AccountStatus(a.Status), State: orgtypes.AccountState(a.Status),
		JoinedMethod: orgtypes.AccountJoinedMethod(a.JoinedMethod), JoinedTimestamp: aws.Time(a.Joined),
	}
}

// orgPage paginates Organizations results (NextToken, MaxResults 1..20).
func orgPage(keys []string, token *string, max *int32) (int, int, *string, error) {
	n := int32(orgPageSize)
	if max != nil {
		n = *max
		if n < 1 || n > orgPageSize {
			return 0, 0, nil, &orgtypes.InvalidInputException{Message: msg("You provided a value that does not match the required pattern."), Reason: orgtypes.InvalidInputExceptionReasonMaxValueExceeded}
		}
	}
	from, to, next, err := page(keys, token, aws.Int32(n), n)
	if err != nil {
		return 0, 0, nil, &orgtypes.InvalidInputException{Message: msg("The NextToken value is invalid.")}
	}
	return from, to, next, nil
}

func (c *Organizations) parentExists(id string) bool {
	return id == c.s.org.RootID || c.s.org.ous[id] != nil
}

// DescribeOrganization describes the Organization (all features enabled).
func (c *Organizations) DescribeOrganization(ctx context.Context, _ *organizations.DescribeOrganizationInput, _ ...func(*organizations.Options)) (*organizations.DescribeOrganizationOutput, error) {
	var out *organizations.DescribeOrganizationOutput
	err := c.s.read(ctx, func() error {
		o := c.s.org
		m := o.accounts[o.Mgmt]
		out = &organizations.DescribeOrganizationOutput{Organization: &orgtypes.Organization{
			Id: aws.String(o.ID), Arn: aws.String(fmt.Sprintf("arn:aws:organizations::%s:organization/%s", o.Mgmt, o.ID)),
			FeatureSet: orgtypes.OrganizationFeatureSetAll, MasterAccountId: aws.String(o.Mgmt),
			MasterAccountArn: aws.String(c.arn("account", o.Mgmt)), MasterAccountEmail: aws.String(m.Email),
		}}
		return nil
	})
	return out, fail("Organizations", "DescribeOrganization", err)
}

// ListRoots lists the one root.
func (c *Organizations) ListRoots(ctx context.Context, _ *organizations.ListRootsInput, _ ...func(*organizations.Options)) (*organizations.ListRootsOutput, error) {
	var out *organizations.ListRootsOutput
	err := c.s.read(ctx, func() error {
		o := c.s.org
		out = &organizations.ListRootsOutput{Roots: []orgtypes.Root{{Id: aws.String(o.RootID), Name: aws.String("Root"), Arn: aws.String(c.arn("root", o.RootID))}}}
		return nil
	})
	return out, fail("Organizations", "ListRoots", err)
}

// ListOrganizationalUnitsForParent lists the OUs directly under a root or OU.
func (c *Organizations) ListOrganizationalUnitsForParent(ctx context.Context, in *organizations.ListOrganizationalUnitsForParentInput, _ ...func(*organizations.Options)) (*organizations.ListOrganizationalUnitsForParentOutput, error) {
	in = orEmpty(in)
	var out *organizations.ListOrganizationalUnitsForParentOutput
	err := c.s.read(ctx, func() error {
		if err := required("ListOrganizationalUnitsForParentInput", param{"ParentId", in.ParentId != nil}); err != nil {
			return err
		}
		if !c.parentExists(*in.ParentId) {
			return &orgtypes.ParentNotFoundException{Message: msg("We can't find a root or OU with the ParentId that you specified.")}
		}
		var ids []string
		for id, ou := range c.s.org.ous {
			if ou.Parent == *in.ParentId {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		from, to, next, err := orgPage(ids, in.NextToken, in.MaxResults)
		if err != nil {
			return err
		}
		out = &organizations.ListOrganizationalUnitsForParentOutput{NextToken: next, OrganizationalUnits: []orgtypes.OrganizationalUnit{}}
		for _, id := range ids[from:to] {
			ou := c.s.org.ous[id]
			out.OrganizationalUnits = append(out.OrganizationalUnits, orgtypes.OrganizationalUnit{Id: aws.String(id), Name: aws.String(ou.Name), Arn: aws.String(c.arn("ou", id))})
		}
		return nil
	})
	return out, fail("Organizations", "ListOrganizationalUnitsForParent", err)
}

// DescribeOrganizationalUnit describes an OU.
func (c *Organizations) DescribeOrganizationalUnit(ctx context.Context, in *organizations.DescribeOrganizationalUnitInput, _ ...func(*organizations.Options)) (*organizations.DescribeOrganizationalUnitOutput, error) {
	in = orEmpty(in)
	var out *organizations.DescribeOrganizationalUnitOutput
	err := c.s.read(ctx, func() error {
		if err := required("DescribeOrganizationalUnitInput", param{"OrganizationalUnitId", in.OrganizationalUnitId != nil}); err != nil {
			return err
		}
		ou := c.s.org.ous[*in.OrganizationalUnitId]
		if ou == nil {
			return &orgtypes.OrganizationalUnitNotFoundException{Message: msg("We can't find an OU with the OrganizationalUnitId that you specified.")}
		}
		out = &organizations.DescribeOrganizationalUnitOutput{OrganizationalUnit: &orgtypes.OrganizationalUnit{Id: aws.String(ou.ID), Name: aws.String(ou.Name), Arn: aws.String(c.arn("ou", ou.ID))}}
		return nil
	})
	return out, fail("Organizations", "DescribeOrganizationalUnit", err)
}

func (c *Organizations) sortedAccounts(parent string) []string {
	var ids []string
	for id, a := range c.s.org.accounts {
		if parent == "" || a.Parent == parent {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// ListAccountsForParent lists the accounts directly under a root or OU.
func (c *Organizations) ListAccountsForParent(ctx context.Context, in *organizations.ListAccountsForParentInput, _ ...func(*organizations.Options)) (*organizations.ListAccountsForParentOutput, error) {
	in = orEmpty(in)
	var out *organizations.ListAccountsForParentOutput
	err := c.s.read(ctx, func() error {
		if err := required("ListAccountsForParentInput", param{"ParentId", in.ParentId != nil}); err != nil {
			return err
		}
		if !c.parentExists(*in.ParentId) {
			return &orgtypes.ParentNotFoundException{Message: msg("We can't find a root or OU with the ParentId that you specified.")}
		}
		ids := c.sortedAccounts(*in.ParentId)
		from, to, next, err := orgPage(ids, in.NextToken, in.MaxResults)
		if err != nil {
			return err
		}
		out = &organizations.ListAccountsForParentOutput{NextToken: next, Accounts: []orgtypes.Account{}}
		for _, id := range ids[from:to] {
			out.Accounts = append(out.Accounts, c.apiAccount(c.s.org.accounts[id]))
		}
		return nil
	})
	return out, fail("Organizations", "ListAccountsForParent", err)
}

// ListAccounts lists every account of the Organization, whatever its status.
func (c *Organizations) ListAccounts(ctx context.Context, in *organizations.ListAccountsInput, _ ...func(*organizations.Options)) (*organizations.ListAccountsOutput, error) {
	in = orEmpty(in)
	var out *organizations.ListAccountsOutput
	err := c.s.read(ctx, func() error {
		ids := c.sortedAccounts("")
		from, to, next, err := orgPage(ids, in.NextToken, in.MaxResults)
		if err != nil {
			return err
		}
		out = &organizations.ListAccountsOutput{NextToken: next, Accounts: []orgtypes.Account{}}
		for _, id := range ids[from:to] {
			out.Accounts = append(out.Accounts, c.apiAccount(c.s.org.accounts[id]))
		}
		return nil
	})
	return out, fail("Organizations", "ListAccounts", err)
}

// DescribeAccount describes one account.
func (c *Organizations) DescribeAccount(ctx context.Context, in *organizations.DescribeAccountInput, _ ...func(*organizations.Options)) (*organizations.DescribeAccountOutput, error) {
	in = orEmpty(in)
	var out *organizations.DescribeAccountOutput
	err := c.s.read(ctx, func() error {
		if err := required("DescribeAccountInput", param{"AccountId", in.AccountId != nil}); err != nil {
			return err
		}
		a := c.s.org.accounts[*in.AccountId]
		if a == nil {
			return &orgtypes.AccountNotFoundException{Message: msg("You specified an account that doesn't exist.")}
		}
		acct := c.apiAccount(a)
		out = &organizations.DescribeAccountOutput{Account: &acct}
		return nil
	})
	return out, fail("Organizations", "DescribeAccount", err)
}

// ListParents lists the parent (root or OU) of an account or OU.
func (c *Organizations) ListParents(ctx context.Context, in *organizations.ListParentsInput, _ ...func(*organizations.Options)) (*organizations.ListParentsOutput, error) {
	in = orEmpty(in)
	var out *organizations.ListParentsOutput
	err := c.s.read(ctx, func() error {
		if err := required("ListParentsInput", param{"ChildId", in.ChildId != nil}); err != nil {
			return err
		}
		var parent string
		if a := c.s.org.accounts[*in.ChildId]; a != nil {
			parent = a.Parent
		} else if ou := c.s.org.ous[*in.ChildId]; ou != nil {
			parent = ou.Parent
		} else {
			return &orgtypes.ChildNotFoundException{Message: msg("We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.")}
		}
		typ := orgtypes.ParentTypeOrganizationalUnit
		if parent == c.s.org.RootID {
			typ = orgtypes.ParentTypeRoot
		}
		out = &organizations.ListParentsOutput{Parents: []orgtypes.Parent{{Id: aws.String(parent), Type: typ}}}
		return nil
	})
	return out, fail("Organizations", "ListParents", err)
}

// CreateOrganizationalUnit creates an OU under a root or OU.
func (c *Organizations) CreateOrganizationalUnit(ctx context.Context, in *organizations.CreateOrganizationalUnitInput, _ ...func(*organizations.Options)) (*organizations.CreateOrganizationalUnitOutput, error) {
	in = orEmpty(in)
	var out *organizations.CreateOrganizationalUnitOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreateOrganizationalUnitInput", param{"Name", in.Name != nil}, param{"ParentId", in.ParentId != nil}); err != nil {
			return err
		}
		if !c.parentExists(*in.ParentId) {
			return &orgtypes.ParentNotFoundException{Message: msg("We can't find a root or OU with the ParentId that you specified.")}
		}
		if *in.Name == "" || len(*in.Name) > 128 {
			return &orgtypes.InvalidInputException{Message: msg("You provided a value that does not match the required pattern."), Reason: orgtypes.InvalidInputExceptionReasonInvalidPattern}
		}
		for _, ou := range c.s.org.ous {
			if ou.Parent == *in.ParentId && ou.Name == *in.Name {
				return &orgtypes.DuplicateOrganizationalUnitException{Message: msg("An OU with the same name already exists.")}
			}
		}
		ou := &orgUnit{ID: "ou-" + c.s.org.RootID[2:] + "-" + stableID(8, lowerAlnum, *in.ParentId, *in.Name), Name: *in.Name, Parent: *in.ParentId}
		c.s.org.ous[ou.ID] = ou
		c.s.touch("", kindOU, ou.ID)
		out = &organizations.CreateOrganizationalUnitOutput{OrganizationalUnit: &orgtypes.OrganizationalUnit{Id: aws.String(ou.ID), Name: aws.String(ou.Name), Arn: aws.String(c.arn("ou", ou.ID))}}
		return nil
	})
	return out, fail("Organizations", "CreateOrganizationalUnit", err)
}

// MoveAccount moves an account from its parent to another root or OU.
func (c *Organizations) MoveAccount(ctx context.Context, in *organizations.MoveAccountInput, _ ...func(*organizations.Options)) (*organizations.MoveAccountOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("MoveAccountInput", param{"AccountId", in.AccountId != nil}, param{"DestinationParentId", in.DestinationParentId != nil}, param{"SourceParentId", in.SourceParentId != nil}); err != nil {
			return err
		}
		a := c.s.org.accounts[*in.AccountId]
		if a == nil {
			return &orgtypes.AccountNotFoundException{Message: msg("You specified an account that doesn't exist.")}
		}
		if !c.parentExists(*in.SourceParentId) {
			return &orgtypes.SourceParentNotFoundException{Message: msg("We can't find a source root or OU with the ParentId that you specified.")}
		}
		if !c.parentExists(*in.DestinationParentId) {
			return &orgtypes.DestinationParentNotFoundException{Message: msg("We can't find a destination root or OU with the ParentId that you specified.")}
		}
		if a.Parent != *in.SourceParentId {
			return &orgtypes.AccountNotFoundException{Message: msg("You specified an account that doesn't exist.")}
		}
		a.Parent = *in.DestinationParentId
		c.s.touch("", kindOrgAccount, a.ID)
		return nil
	})
	if err != nil {
		return nil, fail("Organizations", "MoveAccount", err)
	}
	return &organizations.MoveAccountOutput{}, nil
}
