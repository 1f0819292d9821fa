package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// IAM is one account's IAM, with the methods of *iam.Client.
type IAM struct {
	s       *Sandbox
	account string
}

// IAM returns the IAM client of the account.
func (s *Sandbox) IAM(accountID string) *IAM { return &IAM{s: s, account: accountID} }

const (
	maxKeysPerUser     = 2  // AWS quota AccessKeysPerUser
	maxManagedPerUser  = 10 // AWS quota PoliciesPerUser (managed policies attached)
	maxTagsPerResource = 50
	defaultMaxItems    = 100 // IAM List* default page size
)

// Persisted shapes: exported fields for encoding/json, one row per user,
// group, policy, MFA device.
type user struct {
	Name             string
	Path             string
	ID               string
	Created          time.Time
	PasswordLastUsed *time.Time `json:",omitempty"`
	Tags             []tag      `json:",omitempty"`
	Keys             []*accessKey
	Attached         []string          `json:",omitempty"` // managed policy ARNs, in attach order
	Inline           map[string]string `json:",omitempty"` // policy name -> document
	Login            *loginProfile     `json:",omitempty"`
	Boundary         string            `json:",omitempty"`
}

type tag struct{ Key, Value string }

// accessKey keeps no secret: AWS shows the secret once, and so do we.
type accessKey struct {
	ID          string
	Status      string
	Created     time.Time
	LastUsed    *time.Time `json:",omitempty"`
	LastService string     `json:",omitempty"`
	LastRegion  string     `json:",omitempty"`
}

// loginProfile records console access; the password itself is not kept.
type loginProfile struct {
	Created       time.Time
	ResetRequired bool
}

type group struct {
	Name    string
	Path    string
	ID      string
	Created time.Time
	Members []string // user names, in the order they were added
}

type policy struct {
	Name        string
	Path        string
	ID          string
	ARN         string
	Document    string
	Description string `json:",omitempty"`
	Created     time.Time
	Tags        []tag `json:",omitempty"`
}

type mfaDevice struct {
	Serial  string
	Path    string
	User    string     `json:",omitempty"`
	Created time.Time  //
	Enabled *time.Time `json:",omitempty"`
}

type passwordPolicy struct{ types.PasswordPolicy }

func (u *user) key(id string) *accessKey {
	for _, k := range u.Keys {
		if k.ID == id {
			return k
		}
	}
	return nil
}

var iamName = regexp.MustCompile(`^[\w+=,.@-]+$`)

func validName(field, name string, max int) error {
	if len(name) < 1 || len(name) > max || !iamName.MatchString(name) {
		return apiError("ValidationError", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and length at most %d", truncate(name), field, max)
	}
	return nil
}

func validPath(p *string) (string, error) {
	if p == nil || *p == "" {
		return "/", nil
	}
	if !strings.HasPrefix(*p, "/") || !strings.HasSuffix(*p, "/") || len(*p) > 512 {
		return "", apiError("ValidationError", "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
	}
	return *p, nil
}

func (c *IAM) arn(kind, path, name string) string {
	return "arn:aws:iam::" + c.account + ":" + kind + path + name
}

func noSuchUser(name string) error {
	return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("The user with name %s cannot be found.", truncate(name)))}
}

func noSuchKey(id string) error {
	return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("The Access Key with id %s cannot be found.", truncate(id)))}
}

func noSuchGroup(name string) error {
	return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("The group with name %s cannot be found.", truncate(name)))}
}

// findUser looks a user up by name, case-insensitively as IAM does.
func (a *account) findUser(name string) (*user, error) {
	u := a.users[strings.ToLower(name)]
	if u == nil {
		return nil, noSuchUser(name)
	}
	return u, nil
}

func (c *IAM) apiUser(u *user, withTags bool) *types.User {
	out := &types.User{
		Path:             aws.String(u.Path),
		UserName:         aws.String(u.Name),
		UserId:           aws.String(u.ID),
		Arn:              aws.String(c.arn("user", u.Path, u.Name)),
		CreateDate:       aws.Time(u.Created),
		PasswordLastUsed: u.PasswordLastUsed,
	}
	if withTags {
		out.Tags = apiTags(u.Tags)
	}
	if u.Boundary != "" && withTags {
		out.PermissionsBoundary = &types.AttachedPermissionsBoundary{
			PermissionsBoundaryArn:  aws.String(u.Boundary),
			PermissionsBoundaryType: types.PermissionsBoundaryAttachmentTypePolicy,
		}
	}
	return out
}

func apiTags(ts []tag) []types.Tag {
	if len(ts) == 0 {
		return nil
	}
	out := make([]types.Tag, len(ts))
	for i, t := range ts {
		out[i] = types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)}
	}
	return out
}

// mergeTags adds or overwrites tags, as TagUser does, refusing more than 50.
func mergeTags(have []tag, add []types.Tag) ([]tag, error) {
	out := append([]tag(nil), have...)
	for _, t := range add {
		k, v := aws.ToString(t.Key), aws.ToString(t.Value)
		if k == "" || len(k) > 128 || len(v) > 256 {
			return nil, &types.InvalidInputException{Message: msg("Tag keys must be 1 to 128 characters and values at most 256 characters.")}
		}
		found := false
		for i := range out {
			if out[i].Key == k {
				out[i].Value = v
				found = true
			}
		}
		if !found {
			out = append(out, tag{Key: k, Value: v})
		}
	}
	if len(out) > maxTagsPerResource {
		return nil, &types.LimitExceededException{Message: msg("The number of tags has reached the maximum limit.")}
	}
	return out, nil
}

// indexKeys gives the positions of an ordered list as sortable page keys,
// for lists that are not paged by name (keys, tags, group members).
func indexKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%08d", i)
	}
	return out
}

// sortedUserKeys returns the account's users in listing order (by lower-cased
// name) with their page keys.
func (a *account) sortedUsers(pathPrefix string) ([]string, []*user) {
	keys := make([]string, 0, len(a.users))
	for k, u := range a.users {
		if strings.HasPrefix(u.Path, pathPrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	users := make([]*user, len(keys))
	for i, k := range keys {
		users[i] = a.users[k]
	}
	return keys, users
}

// CreateUser creates an IAM user.
func (c *IAM) CreateUser(ctx context.Context, in *iam.CreateUserInput, _ ...func(*iam.Options)) (*iam.CreateUserOutput, error) {
	in = orEmpty(in)
	var out *iam.CreateUserOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreateUserInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		name := *in.UserName
		if err := validName("userName", name, 64); err != nil {
			return err
		}
		path, err := validPath(in.Path)
		if err != nil {
			return err
		}
		a := c.s.acct(c.account)
		if a.users[strings.ToLower(name)] != nil {
			return &types.EntityAlreadyExistsException{Message: msg(fmt.Sprintf("User with name %s already exists.", name))}
		}
		tags, err := mergeTags(nil, in.Tags)
		if err != nil {
			return err
		}
		u := &user{Name: name, Path: path, ID: c.s.uniqueID("AIDA"), Created: c.s.clock(), Tags: tags, Boundary: aws.ToString(in.PermissionsBoundary)}
		a.users[strings.ToLower(name)] = u
		c.s.touch(c.account, kindUser, name)
		out = &iam.CreateUserOutput{User: c.apiUser(u, true)}
		return nil
	})
	return out, fail("IAM", "CreateUser", err)
}

// GetUser returns a user with its tags. Without a UserName it answers for
// the caller, when the account's caller identity is an IAM user.
func (c *IAM) GetUser(ctx context.Context, in *iam.GetUserInput, _ ...func(*iam.Options)) (*iam.GetUserOutput, error) {
	in = orEmpty(in)
	var out *iam.GetUserOutput
	err := c.s.read(ctx, func() error {
		a := c.s.peek(c.account)
		name := aws.ToString(in.UserName)
		if in.UserName == nil {
			caller := c.s.callerARN(a)
			i := strings.LastIndex(caller, "/")
			if !strings.Contains(caller, ":user/") || i < 0 {
				return apiError("ValidationError", "Must specify userName when calling with non-User credentials")
			}
			name = caller[i+1:]
		}
		u, err := a.findUser(name)
		if err != nil {
			return err
		}
		out = &iam.GetUserOutput{User: c.apiUser(u, true)}
		return nil
	})
	return out, fail("IAM", "GetUser", err)
}

// ListUsers lists users by name, MaxItems (default 100) at a time; ListUsers
// on AWS returns neither tags nor permissions boundaries.
func (c *IAM) ListUsers(ctx context.Context, in *iam.ListUsersInput, _ ...func(*iam.Options)) (*iam.ListUsersOutput, error) {
	in = orEmpty(in)
	var out *iam.ListUsersOutput
	err := c.s.read(ctx, func() error {
		prefix := aws.ToString(in.PathPrefix)
		if prefix == "" {
			prefix = "/"
		}
		keys, users := c.s.peek(c.account).sortedUsers(prefix)
		from, to, next, err := page(keys, in.Marker, in.MaxItems, defaultMaxItems)
		if err != nil {
			return err
		}
		out = &iam.ListUsersOutput{Users: make([]types.User, 0, to-from), IsTruncated: next != nil, Marker: next}
		for _, u := range users[from:to] {
			out.Users = append(out.Users, *c.apiUser(u, false))
		}
		return nil
	})
	return out, fail("IAM", "ListUsers", err)
}

// DeleteUser deletes a user that has nothing attached, refusing otherwise
// with DeleteConflictException as AWS does.
func (c *IAM) DeleteUser(ctx context.Context, in *iam.DeleteUserInput, _ ...func(*iam.Options)) (*iam.DeleteUserOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("DeleteUserInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		u, err := a.findUser(*in.UserName)
		if err != nil {
			return err
		}
		conflict := func(what string) error {
			return &types.DeleteConflictException{Message: msg("Cannot delete entity, must " + what + " first.")}
		}
		switch {
		case len(u.Keys) > 0:
			return conflict("delete access keys")
		case u.Login != nil:
			return conflict("delete login profile")
		case len(a.userMFA(u.Name)) > 0:
			return conflict("delete MFA device")
		case len(u.Attached) > 0:
			return conflict("detach all policies")
		case len(u.Inline) > 0:
			return conflict("delete policies")
		case len(a.groupsOf(u.Name)) > 0:
			return conflict("remove users from group")
		}
		delete(a.users, strings.ToLower(u.Name))
		c.s.touch(c.account, kindUser, u.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "DeleteUser", err)
	}
	return &iam.DeleteUserOutput{}, nil
}

// CreateAccessKey creates an Active key and returns its secret, the only
// time the secret is ever available. A user has at most two keys.
func (c *IAM) CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, _ ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error) {
	in = orEmpty(in)
	var out *iam.CreateAccessKeyOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreateAccessKeyInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		u, err := a.findUser(*in.UserName)
		if err != nil {
			return err
		}
		if len(u.Keys) >= maxKeysPerUser {
			return &types.LimitExceededException{Message: msg(fmt.Sprintf("Cannot exceed quota for AccessKeysPerUser: %d", maxKeysPerUser))}
		}
		k := c.s.newKey(c.account, u, c.s.clock())
		out = &iam.CreateAccessKeyOutput{AccessKey: &types.AccessKey{
			UserName:        aws.String(u.Name),
			AccessKeyId:     aws.String(k.ID),
			Status:          types.StatusTypeActive,
			SecretAccessKey: aws.String(secretAccessKey()),
			CreateDate:      aws.Time(k.Created),
		}}
		return nil
	})
	return out, fail("IAM", "CreateAccessKey", err)
}

// newKey adds an Active key to the user; callers hold the write lock.
func (s *Sandbox) newKey(accountID string, u *user, at time.Time) *accessKey {
	id := s.accessKeyID()
	for s.keys[id] != nil {
		id = s.accessKeyID()
	}
	k := &accessKey{ID: id, Status: string(types.StatusTypeActive), Created: at}
	u.Keys = append(u.Keys, k)
	s.keys[id] = &keyRef{account: accountID, user: u.Name}
	s.touch(accountID, kindUser, u.Name)
	return k
}

// ListAccessKeys lists a user's keys, oldest first.
func (c *IAM) ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, _ ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error) {
	in = orEmpty(in)
	var out *iam.ListAccessKeysOutput
	err := c.s.read(ctx, func() error {
		if err := required("ListAccessKeysInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		u, err := c.s.peek(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		from, to, next, err := page(indexKeys(len(u.Keys)), in.Marker, in.MaxItems, defaultMaxItems)
		if err != nil {
			return err
		}
		out = &iam.ListAccessKeysOutput{AccessKeyMetadata: []types.AccessKeyMetadata{}, IsTruncated: next != nil, Marker: next}
		for _, k := range u.Keys[from:to] {
			out.AccessKeyMetadata = append(out.AccessKeyMetadata, types.AccessKeyMetadata{
				UserName: aws.String(u.Name), AccessKeyId: aws.String(k.ID),
				Status: types.StatusType(k.Status), CreateDate: aws.Time(k.Created),
			})
		}
		return nil
	})
	return out, fail("IAM", "ListAccessKeys", err)
}

// keyOf finds a key of the account, of the named user when one is given.
func (c *IAM) keyOf(a *account, userName *string, id string) (*user, *accessKey, error) {
	if userName != nil {
		u, err := a.findUser(*userName)
		if err != nil {
			return nil, nil, err
		}
		if k := u.key(id); k != nil {
			return u, k, nil
		}
		return nil, nil, noSuchKey(id)
	}
	// Without a user name AWS acts on the caller's keys; the sandbox finds
	// the key wherever it is in the account, which is what a caller who
	// owns the key sees.
	ref := c.s.keys[id]
	if ref == nil || ref.account != c.account {
		return nil, nil, noSuchKey(id)
	}
	u := a.users[strings.ToLower(ref.user)]
	return u, u.key(id), nil
}

// UpdateAccessKey sets a key Active or Inactive.
func (c *IAM) UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, _ ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("UpdateAccessKeyInput", param{"AccessKeyId", in.AccessKeyId != nil}, param{"Status", in.Status != ""}); err != nil {
			return err
		}
		if in.Status != types.StatusTypeActive && in.Status != types.StatusTypeInactive {
			return apiError("ValidationError", "1 validation error detected: Value '%s' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]", truncate(string(in.Status)))
		}
		u, k, err := c.keyOf(c.s.acct(c.account), in.UserName, *in.AccessKeyId)
		if err != nil {
			return err
		}
		k.Status = string(in.Status)
		c.s.touch(c.account, kindUser, u.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "UpdateAccessKey", err)
	}
	return &iam.UpdateAccessKeyOutput{}, nil
}

// DeleteAccessKey deletes a key for good.
func (c *IAM) DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, _ ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("DeleteAccessKeyInput", param{"AccessKeyId", in.AccessKeyId != nil}); err != nil {
			return err
		}
		u, k, err := c.keyOf(c.s.acct(c.account), in.UserName, *in.AccessKeyId)
		if err != nil {
			return err
		}
		keys := u.Keys[:0]
		for _, x := range u.Keys {
			if x != k {
				keys = append(keys, x)
			}
		}
		u.Keys = keys
		delete(c.s.keys, k.ID)
		c.s.touch(c.account, kindUser, u.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "DeleteAccessKey", err)
	}
	return &iam.DeleteAccessKeyOutput{}, nil
}

// GetAccessKeyLastUsed reports a key's last use; a key never used reports
// service and region "N/A" and no date, as AWS does.
func (c *IAM) GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, _ ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error) {
	in = orEmpty(in)
	var out *iam.GetAccessKeyLastUsedOutput
	err := c.s.read(ctx, func() error {
		if err := required("GetAccessKeyLastUsedInput", param{"AccessKeyId", in.AccessKeyId != nil}); err != nil {
			return err
		}
		u, k, err := c.keyOf(c.s.peek(c.account), nil, *in.AccessKeyId)
		if err != nil {
			return err
		}
		last := &types.AccessKeyLastUsed{ServiceName: aws.String("N/A"), Region: aws.String("N/A")}
		if k.LastUsed != nil {
			last = &types.AccessKeyLastUsed{LastUsedDate: aws.Time(*k.LastUsed), ServiceName: aws.String(k.LastService), Region: aws.String(k.LastRegion)}
		}
		out = &iam.GetAccessKeyLastUsedOutput{UserName: aws.String(u.Name), AccessKeyLastUsed: last}
		return nil
	})
	return out, fail("IAM", "GetAccessKeyLastUsed", err)
}

// --- groups ---

func (c *IAM) apiGroup(g *group) *types.Group {
	return &types.Group{Path: aws.String(g.Path), GroupName: aws.String(g.Name), GroupId: aws.String(g.ID), Arn: aws.String(c.arn("group", g.Path, g.Name)), CreateDate: aws.Time(g.Created)}
}

func (a *account) findGroup(name string) (*group, error) {
	g := a.groups[strings.ToLower(name)]
	if g == nil {
		return nil, noSuchGroup(name)
	}
	return g, nil
}

// groupsOf lists the groups a user is in, sorted by name.
func (a *account) groupsOf(userName string) []*group {
	var out []*group
	for _, g := range a.groups {
		for _, m := range g.Members {
			if strings.EqualFold(m, userName) {
				out = append(out, g)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out
}

// CreateGroup creates a group.
func (c *IAM) CreateGroup(ctx context.Context, in *iam.CreateGroupInput, _ ...func(*iam.Options)) (*iam.CreateGroupOutput, error) {
	in = orEmpty(in)
	var out *iam.CreateGroupOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreateGroupInput", param{"GroupName", in.GroupName != nil}); err != nil {
			return err
		}
		if err := validName("groupName", *in.GroupName, 128); err != nil {
			return err
		}
		path, err := validPath(in.Path)
		if err != nil {
			return err
		}
		a := c.s.acct(c.account)
		if a.groups[strings.ToLower(*in.GroupName)] != nil {
			return &types.EntityAlreadyExistsException{Message: msg(fmt.Sprintf("Group with name %s already exists.", *in.GroupName))}
		}
		g := &group{Name: *in.GroupName, Path: path, ID: c.s.uniqueID("AGPA"), Created: c.s.clock()}
		a.groups[strings.ToLower(g.Name)] = g
		c.s.touch(c.account, kindGroup, g.Name)
		out = &iam.CreateGroupOutput{Group: c.apiGroup(g)}
		return nil
	})
	return out, fail("IAM", "CreateGroup", err)
}

// GetGroup returns a group and its members, paginated.
func (c *IAM) GetGroup(ctx context.Context, in *iam.GetGroupInput, _ ...func(*iam.Options)) (*iam.GetGroupOutput, error) {
	in = orEmpty(in)
	var out *iam.GetGroupOutput
	err := c.s.read(ctx, func() error {
		if err := required("GetGroupInput", param{"GroupName", in.GroupName != nil}); err != nil {
			return err
		}
		a := c.s.peek(c.account)
		g, err := a.findGroup(*in.GroupName)
		if err != nil {
			return err
		}
		from, to, next, err := page(indexKeys(len(g.Members)), in.Marker, in.MaxItems, defaultMaxItems)
		if err != nil {
			return err
		}
		out = &iam.GetGroupOutput{Group: c.apiGroup(g), Users: []types.User{}, IsTruncated: next != nil, Marker: next}
		for _, m := range g.Members[from:to] {
			if u := a.users[strings.ToLower(m)]; u != nil {
				out.Users = append(out.Users, *c.apiUser(u, false))
			}
		}
		return nil
	})
	return out, fail("IAM", "GetGroup", err)
}

// ListGroups lists the account's groups by name.
func (c *IAM) ListGroups(ctx context.Context, in *iam.ListGroupsInput, _ ...func(*iam.Options)) (*iam.ListGroupsOutput, error) {
	in = orEmpty(in)
	var out *iam.ListGroupsOutput
	err := c.s.read(ctx, func() error {
		a := c.s.peek(c.account)
		keys := make([]string, 0, len(a.groups))
		for k, g := range a.groups {
			if strings.HasPrefix(g.Path, aws.ToString(in.PathPrefix)) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		from, to, next, err := page(keys, in.Marker, in.MaxItems, defaultMaxItems)
		if err != nil {
			return err
		}
		out = &iam.ListGroupsOutput{Groups: []types.Group{}, IsTruncated: next != nil, Marker: next}
		for _, k := range keys[from:to] {
			out.Groups = append(out.Groups, *c.apiGroup(a.groups[k]))
		}
		return nil
	})
	return out, fail("IAM", "ListGroups", err)
}

// DeleteGroup deletes an empty group.
func (c *IAM) DeleteGroup(ctx context.Context, in *iam.DeleteGroupInput, _ ...func(*iam.Options)) (*iam.DeleteGroupOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("DeleteGroupInput", param{"GroupName", in.GroupName != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		g, err := a.findGroup(*in.GroupName)
		if err != nil {
			return err
		}
		if len(g.Members) > 0 {
			return &types.DeleteConflictException{Message: msg("Cannot delete entity, must remove users from group first.")}
		}
		delete(a.groups, strings.ToLower(g.Name))
		c.s.touch(c.account, kindGroup, g.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "DeleteGroup", err)
	}
	return &iam.DeleteGroupOutput{}, nil
}

// AddUserToGroup adds a user to a group; adding a member again is a no-op,
// as on AWS.
func (c *IAM) AddUserToGroup(ctx context.Context, in *iam.AddUserToGroupInput, _ ...func(*iam.Options)) (*iam.AddUserToGroupOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("AddUserToGroupInput", param{"GroupName", in.GroupName != nil}, param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		g, err := a.findGroup(*in.GroupName)
		if err != nil {
			return err
		}
		u, err := a.findUser(*in.UserName)
		if err != nil {
			return err
		}
		for _, m := range g.Members {
			if strings.EqualFold(m, u.Name) {
				return nil
			}
		}
		g.Members = append(g.Members, u.Name)
		c.s.touch(c.account, kindGroup, g.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "AddUserToGroup", err)
	}
	return &iam.AddUserToGroupOutput{}, nil
}

// RemoveUserFromGroup removes a member; NoSuchEntity when the user is not one.
func (c *IAM) RemoveUserFromGroup(ctx context.Context, in *iam.RemoveUserFromGroupInput, _ ...func(*iam.Options)) (*iam.RemoveUserFromGroupOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("RemoveUserFromGroupInput", param{"GroupName", in.GroupName != nil}, param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		g, err := a.findGroup(*in.GroupName)
		if err != nil {
			return err
		}
		u, err := a.findUser(*in.UserName)
		if err != nil {
			return err
		}
		for i, m := range g.Members {
			if strings.EqualFold(m, u.Name) {
				g.Members = append(g.Members[:i:i], g.Members[i+1:]...)
				c.s.touch(c.account, kindGroup, g.Name)
				return nil
			}
		}
		return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("User %s is not in group %s.", u.Name, g.Name))}
	})
	if err != nil {
		return nil, fail("IAM", "RemoveUserFromGroup", err)
	}
	return &iam.RemoveUserFromGroupOutput{}, nil
}

// ListGroupsForUser lists the groups a user belongs to.
func (c *IAM) ListGroupsForUser(ctx context.Context, in *iam.ListGroupsForUserInput, _ ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error) {
	in = orEmpty(in)
	var out *iam.ListGroupsForUserOutput
	err := c.s.read(ctx, func() error {
		if err := required("ListGroupsForUserInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		a := c.s.peek(c.account)
		u, err := a.findUser(*in.UserName)
		if err != nil {
			return err
		}
		gs := a.groupsOf(u.Name)
		from, to, next, err := page(indexKeys(len(gs)), in.Marker, in.MaxItems, defaultMaxItems)
		if err != nil {
			return err
		}
		out = &iam.ListGroupsForUserOutput{Groups: []types.Group{}, IsTruncated: next != nil, Marker: next}
		for _, g := range gs[from:to] {
			out.Groups = append(out.Groups, *c.apiGroup(g))
		}
		return nil
	})
	return out, fail("IAM", "ListGroupsForUser", err)
}

// --- tags ---

// TagUser adds or overwrites a user's tags (at most 50).
func (c *IAM) TagUser(ctx context.Context, in *iam.TagUserInput, _ ...func(*iam.Options)) (*iam.TagUserOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("TagUserInput", param{"UserName", in.UserName != nil}, param{"Tags", in.Tags != nil}); err != nil {
			return err
		}
		u, err := c.s.acct(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		tags, err := mergeTags(u.Tags, in.Tags)
		if err != nil {
			return err
		}
		u.Tags = tags
		c.s.touch(c.account, kindUser, u.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "TagUser", err)
	}
	return &iam.TagUserOutput{}, nil
}

// UntagUser removes tags by key; absent keys are ignored, as on AWS.
func (c *IAM) UntagUser(ctx context.Context, in *iam.UntagUserInput, _ ...func(*iam.Options)) (*iam.UntagUserOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("UntagUserInput", param{"UserName", in.UserName != nil}, param{"TagKeys", in.TagKeys != nil}); err != nil {
			return err
		}
		u, err := c.s.acct(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		drop := map[string]bool{}
		for _, k := range in.TagKeys {
			drop[k] = true
		}
		kept := u.Tags[:0:0]
		for _, t := range u.Tags {
			if !drop[t.Key] {
				kept = append(kept, t)
			}
		}
		u.Tags = kept
		c.s.touch(c.account, kindUser, u.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "UntagUser", err)
	}
	return &iam.UntagUserOutput{}, nil
}

// ListUserTags lists a user's tags in the order they were added.
func (c *IAM) ListUserTags(ctx context.Context, in *iam.ListUserTagsInput, _ ...func(*iam.Options)) (*iam.ListUserTagsOutput, error) {
	in = orEmpty(in)
	var out *iam.ListUserTagsOutput
	err := c.s.read(ctx, func() error {
		if err := required("ListUserTagsInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		u, err := c.s.peek(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		from, to, next, err := page(indexKeys(len(u.Tags)), in.Marker, in.MaxItems, defaultMaxItems)
		if err != nil {
			return err
		}
		out = &iam.ListUserTagsOutput{Tags: apiTags(u.Tags[from:to]), IsTruncated: next != nil, Marker: next}
		if out.Tags == nil {
			out.Tags = []types.Tag{}
		}
		return nil
	})
	return out, fail("IAM", "ListUserTags", err)
}

// --- managed policies ---

// awsManagedPrefix marks AWS managed policies, which exist in every account
// and may be attached by ARN without being created.
const awsManagedPrefix = "arn:aws:iam::aws:policy/"

// checkDocument refuses what is not a JSON policy with a Statement.
func checkDocument(doc string) error {
	var v struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &v); err != nil || len(v.Statement) == 0 {
		return &types.MalformedPolicyDocumentException{Message: msg("Syntax errors in policy.")}
	}
	return nil
}

func (c *IAM) apiPolicy(a *account, p *policy) *types.Policy {
	return &types.Policy{
		PolicyName: aws.String(p.Name), PolicyId: aws.String(p.ID), Arn: aws.String(p.ARN), Path: aws.String(p.Path),
		DefaultVersionId: aws.String("v1"), AttachmentCount: aws.Int32(int32(a.attachments(p.ARN))),
		PermissionsBoundaryUsageCount: aws.Int32(0), IsAttachable: true,
		Description: optString(p.Description), CreateDate: aws.Time(p.Created), UpdateDate: aws.Time(p.Created),
		Tags: apiTags(p.Tags),
	}
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func (a *account) attachments(arn string) int {
	n := 0
	for _, u := range a.users {
		for _, x := range u.Attached {
			if x == arn {
				n++
			}
		}
	}
	return n
}

// CreatePolicy creates a customer managed policy,
// arn:aws:iam::<account>:policy<path><name>.
func (c *IAM) CreatePolicy(ctx context.Context, in *iam.CreatePolicyInput, _ ...func(*iam.Options)) (*iam.CreatePolicyOutput, error) {
	in = orEmpty(in)
	var out *iam.CreatePolicyOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreatePolicyInput", param{"PolicyDocument", in.PolicyDocument != nil}, param{"PolicyName", in.PolicyName != nil}); err != nil {
			return err
		}
		if err := validName("policyName", *in.PolicyName, 128); err != nil {
			return err
		}
		path, err := validPath(in.Path)
		if err != nil {
			return err
		}
		if err := checkDocument(*in.PolicyDocument); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		arn := c.arn("policy", path, *in.PolicyName)
		if a.policies[arn] != nil {
			return &types.EntityAlreadyExistsException{Message: msg(fmt.Sprintf("A policy called %s already exists. Duplicate names are not allowed.", *in.PolicyName))}
		}
		tags, err := mergeTags(nil, in.Tags)
		if err != nil {
			return err
		}
		p := &policy{Name: *in.PolicyName, Path: path, ID: c.s.uniqueID("ANPA"), ARN: arn, Document: *in.PolicyDocument,
			Description: aws.ToString(in.Description), Created: c.s.clock(), Tags: tags}
		a.policies[arn] = p
		c.s.touch(c.account, kindPolicy, arn)
		out = &iam.CreatePolicyOutput{Policy: c.apiPolicy(a, p)}
		return nil
	})
	return out, fail("IAM", "CreatePolicy", err)
}

// GetPolicy returns a customer managed policy, or a stand-in for an AWS
// managed one (the sandbox does not carry AWS's policy catalogue).
func (c *IAM) GetPolicy(ctx context.Context, in *iam.GetPolicyInput, _ ...func(*iam.Options)) (*iam.GetPolicyOutput, error) {
	in = orEmpty(in)
	var out *iam.GetPolicyOutput
	err := c.s.read(ctx, func() error {
		if err := required("GetPolicyInput", param{"PolicyArn", in.PolicyArn != nil}); err != nil {
			return err
		}
		a := c.s.peek(c.account)
		arn := *in.PolicyArn
		if name, ok := strings.CutPrefix(arn, awsManagedPrefix); ok && name != "" {
			path := "/"
			if i := strings.LastIndex(name, "/"); i >= 0 {
				path, name = "/"+name[:i+1], name[i+1:]
			}
			out = &iam.GetPolicyOutput{Policy: &types.Policy{PolicyName: aws.String(name), Arn: aws.String(arn), Path: aws.String(path),
				PolicyId: aws.String(stableID(17, base32, arn)), DefaultVersionId: aws.String("v1"), IsAttachable: true,
				AttachmentCount: aws.Int32(int32(a.attachments(arn)))}}
			return nil
		}
		p := a.policies[arn]
		if p == nil {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("Policy %s was not found.", truncate(arn)))}
		}
		out = &iam.GetPolicyOutput{Policy: c.apiPolicy(a, p)}
		return nil
	})
	return out, fail("IAM", "GetPolicy", err)
}

// DeletePolicy deletes a customer managed policy that is not attached.
func (c *IAM) DeletePolicy(ctx context.Context, in *iam.DeletePolicyInput, _ ...func(*iam.Options)) (*iam.DeletePolicyOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("DeletePolicyInput", param{"PolicyArn", in.PolicyArn != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		p := a.policies[*in.PolicyArn]
		if p == nil {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("Policy %s was not found.", truncate(*in.PolicyArn)))}
		}
		if a.attachments(p.ARN) > 0 {
			return &types.DeleteConflictException{Message: msg("Cannot delete a policy attached to entities.")}
		}
		delete(a.policies, p.ARN)
		c.s.touch(c.account, kindPolicy, p.ARN)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "DeletePolicy", err)
	}
	return &iam.DeletePolicyOutput{}, nil
}

// AttachUserPolicy attaches a managed policy (customer or AWS) to a user;
// attaching it again is a no-op.
func (c *IAM) AttachUserPolicy(ctx context.Context, in *iam.AttachUserPolicyInput, _ ...func(*iam.Options)) (*iam.AttachUserPolicyOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("AttachUserPolicyInput", param{"PolicyArn", in.PolicyArn != nil}, param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		u, err := a.findUser(*in.UserName)
		if err != nil {
			return err
		}
		arn := *in.PolicyArn
		if !strings.HasPrefix(arn, awsManagedPrefix) && a.policies[arn] == nil {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("Policy %s does not exist or is not attachable.", truncate(arn)))}
		}
		for _, x := range u.Attached {
			if x == arn {
				return nil
			}
		}
		if len(u.Attached) >= maxManagedPerUser {
			return &types.LimitExceededException{Message: msg(fmt.Sprintf("Cannot exceed quota for PoliciesPerUser: %d", maxManagedPerUser))}
		}
		u.Attached = append(u.Attached, arn)
		c.s.touch(c.account, kindUser, u.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "AttachUserPolicy", err)
	}
	return &iam.AttachUserPolicyOutput{}, nil
}

// DetachUserPolicy detaches a managed policy; NoSuchEntity when it is not
// attached.
func (c *IAM) DetachUserPolicy(ctx context.Context, in *iam.DetachUserPolicyInput, _ ...func(*iam.Options)) (*iam.DetachUserPolicyOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("DetachUserPolicyInput", param{"PolicyArn", in.PolicyArn != nil}, param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		u, err := a.findUser(*in.UserName)
		if err != nil {
			return err
		}
		for i, x := range u.Attached {
			if x == *in.PolicyArn {
				u.Attached = append(u.Attached[:i:i], u.Attached[i+1:]...)
				c.s.touch(c.account, kindUser, u.Name)
				return nil
			}
		}
		return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("Policy %s was not found.", truncate(*in.PolicyArn)))}
	})
	if err != nil {
		return nil, fail("IAM", "DetachUserPolicy", err)
	}
	return &iam.DetachUserPolicyOutput{}, nil
}

// ListAttachedUserPolicies lists the managed policies attached to a user.
func (c *IAM) ListAttachedUserPolicies(ctx context.Context, in *iam.ListAttachedUserPoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error) {
	in = orEmpty(in)
	var out *iam.ListAttachedUserPoliciesOutput
	err := c.s.read(ctx, func() error {
		if err := required("ListAttachedUserPoliciesInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		u, err := c.s.peek(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		var arns []string
		for _, arn := range u.Attached {
			if policyPath(arn) != "" && strings.HasPrefix(policyPath(arn), aws.ToString(in.PathPrefix)) {
				arns = append(arns, arn)
			}
		}
		from, to, next, err := page(indexKeys(len(arns)), in.Marker, in.MaxItems, defaultMaxItems)
		if err != nil {
			return err
		}
		out = &iam.ListAttachedUserPoliciesOutput{AttachedPolicies: []types.AttachedPolicy{}, IsTruncated: next != nil, Marker: next}
		for _, arn := range arns[from:to] {
			out.AttachedPolicies = append(out.AttachedPolicies, types.AttachedPolicy{PolicyArn: aws.String(arn), PolicyName: aws.String(arn[strings.LastIndex(arn, "/")+1:])})
		}
		return nil
	})
	return out, fail("IAM", "ListAttachedUserPolicies", err)
}

// policyPath is the path part of a policy ARN ("/" or "/a/b/").
func policyPath(arn string) string {
	i := strings.Index(arn, ":policy/")
	j := strings.LastIndex(arn, "/")
	if i < 0 || j < i+7 {
		return ""
	}
	return arn[i+7 : j+1]
}

// --- inline policies ---

// PutUserPolicy adds or replaces an inline policy.
func (c *IAM) PutUserPolicy(ctx context.Context, in *iam.PutUserPolicyInput, _ ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("PutUserPolicyInput", param{"PolicyDocument", in.PolicyDocument != nil}, param{"PolicyName", in.PolicyName != nil}, param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		if err := validName("policyName", *in.PolicyName, 128); err != nil {
			return err
		}
		if err := checkDocument(*in.PolicyDocument); err != nil {
			return err
		}
		u, err := c.s.acct(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		if u.Inline == nil {
			u.Inline = map[string]string{}
		}
		u.Inline[*in.PolicyName] = *in.PolicyDocument
		c.s.touch(c.account, kindUser, u.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "PutUserPolicy", err)
	}
	return &iam.PutUserPolicyOutput{}, nil
}

// GetUserPolicy returns an inline policy. As on AWS, the document comes back
// URL-encoded (RFC 3986): callers decode it with url.QueryUnescape.
func (c *IAM) GetUserPolicy(ctx context.Context, in *iam.GetUserPolicyInput, _ ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error) {
	in = orEmpty(in)
	var out *iam.GetUserPolicyOutput
	err := c.s.read(ctx, func() error {
		if err := required("GetUserPolicyInput", param{"PolicyName", in.PolicyName != nil}, param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		u, err := c.s.peek(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		doc, ok := u.Inline[*in.PolicyName]
		if !ok {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("The user policy with name %s cannot be found.", truncate(*in.PolicyName)))}
		}
		out = &iam.GetUserPolicyOutput{UserName: aws.String(u.Name), PolicyName: in.PolicyName, PolicyDocument: aws.String(escapeRFC3986(doc))}
		return nil
	})
	return out, fail("IAM", "GetUserPolicy", err)
}

func escapeRFC3986(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// DeleteUserPolicy deletes an inline policy.
func (c *IAM) DeleteUserPolicy(ctx context.Context, in *iam.DeleteUserPolicyInput, _ ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("DeleteUserPolicyInput", param{"PolicyName", in.PolicyName != nil}, param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		u, err := c.s.acct(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		if _, ok := u.Inline[*in.PolicyName]; !ok {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("The user policy with name %s cannot be found.", truncate(*in.PolicyName)))}
		}
		delete(u.Inline, *in.PolicyName)
		c.s.touch(c.account, kindUser, u.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "DeleteUserPolicy", err)
	}
	return &iam.DeleteUserPolicyOutput{}, nil
}

// ListUserPolicies lists a user's inline policy names, sorted.
func (c *IAM) ListUserPolicies(ctx context.Context, in *iam.ListUserPoliciesInput, _ ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error) {
	in = orEmpty(in)
	var out *iam.ListUserPoliciesOutput
	err := c.s.read(ctx, func() error {
		if err := required("ListUserPoliciesInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		u, err := c.s.peek(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		names := make([]string, 0, len(u.Inline))
		for n := range u.Inline {
			names = append(names, n)
		}
		sort.Strings(names)
		from, to, next, err := page(names, in.Marker, in.MaxItems, defaultMaxItems)
		if err != nil {
			return err
		}
		out = &iam.ListUserPoliciesOutput{PolicyNames: append([]string{}, names[from:to]...), IsTruncated: next != nil, Marker: next}
		return nil
	})
	return out, fail("IAM", "ListUserPolicies", err)
}
