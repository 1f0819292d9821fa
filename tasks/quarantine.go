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
)

// Defaults of Quarantine and Release.
const (
	DefaultAdminsGroup      = "admins"
	DefaultQuarantinePolicy = "keyflow-quarantine"
	// QuarantineTag marks a quarantined user. Its value lists the keys the
	// quarantine deactivated ("none" when it deactivated none), so release
	// reactivates exactly those and a retried quarantine still knows the
	// state from before its first attempt.
	QuarantineTag = "keyflow:quarantine"
)

// QuarantinePolicyDocument is the inline deny policy attached to a
// quarantined user. It is modelled on AWS's AWSCompromisedKeyQuarantineV2,
// which denies a list of actions that create resources, persistence or
// spend (iam:CreateAccessKey, iam:AttachUserPolicy, ec2:RunInstances,
// lambda:CreateFunction, organizations:CreateAccount, ...). We go further,
// as the design asks: deny everything except the read-only calls a person
// needs to investigate the user's own credentials. It is inline rather than a
// managed policy so it needs nothing created in a member account beforehand,
// and it is small because a user's inline policies share 2,048 characters.
const QuarantinePolicyDocument = `{"Version":"2012-10-17","Statement":[{"Sid":"KeyflowQuarantineDenyAllButInvestigation","Effect":"Deny","NotAction":["sts:GetCallerIdentity","iam:GetUser","iam:ListAccessKeys","iam:GetAccessKeyLastUsed","iam:ListGroupsForUser","iam:ListAttachedUserPolicies","iam:ListUserPolicies","iam:GetUserPolicy","iam:ListUserTags"],"Resource":"*"}]}`

// QuarantineSnapshot is the user's access as it was before the quarantine,
// recorded before anything changes.
type QuarantineSnapshot struct {
	Groups             []string  `json:"groups"`
	AttachedPolicyArns []string  `json:"attachedPolicyArns"`
	InlinePolicyNames  []string  `json:"inlinePolicyNames"`
	ActiveAccessKeyIDs []string  `json:"activeAccessKeyIds"`
	TakenAt            time.Time `json:"takenAt"`
}

// QuarantineInput names the user to quarantine.
type QuarantineInput struct {
	AccountID      string `json:"accountId"`
	UserName       string `json:"userName"`
	DeactivateKeys bool   `json:"deactivateKeys,omitempty"`
	DryRun         bool   `json:"dryRun,omitempty"`
}

// QuarantineOutput is what was done, with the snapshot release needs.
type QuarantineOutput struct {
	AccountID string `json:"accountId"`
	UserName  string `json:"userName"`
	// Result is "Quarantined", "AlreadyQuarantined" or "WouldQuarantine".
	Result            string             `json:"result"`
	PolicyName        string             `json:"policyName"`
	Snapshot          QuarantineSnapshot `json:"snapshot"`
	DeactivatedKeyIDs []string           `json:"deactivatedAccessKeyIds"`
	QuarantinedAt     time.Time          `json:"quarantinedAt,omitzero"`
	DryRun            bool               `json:"dryRun"`
}

// Results of Quarantine.
const (
	ResultQuarantined        = "Quarantined"
	ResultAlreadyQuarantined = "AlreadyQuarantined"
	ResultWouldQuarantine    = "WouldQuarantine"
)

// Quarantine attaches the deny policy to a user (and optionally deactivates
// the user's keys) after recording a snapshot, so Release can undo it.
type Quarantine struct {
	Accounts Accounts
	Now      func() time.Time
	Log      *slog.Logger
	// AdminsGroup (DefaultAdminsGroup when empty): its members are never
	// quarantined.
	AdminsGroup string
	// PolicyName defaults to DefaultQuarantinePolicy.
	PolicyName string
}

func (h *Quarantine) policyName() string {
	if h.PolicyName == "" {
		return DefaultQuarantinePolicy
	}
	return h.PolicyName
}

// Handle implements the handler.
//
// Errors: InvalidInput, UserNotFound, NotQuarantinable, AccountUnavailable,
// Throttled, ServiceError.
func (h *Quarantine) Handle(ctx context.Context, in QuarantineInput) (*QuarantineOutput, error) {
	if err := validateUser(in.AccountID, in.UserName); err != nil {
		return nil, err
	}
	log := logger(h.Log).With("handler", "quarantine", "accountId", in.AccountID, "userName", in.UserName)
	iamc, err := h.Accounts.IAM(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	admins := h.AdminsGroup
	if admins == "" {
		admins = DefaultAdminsGroup
	}
	st, err := readUserAccess(ctx, iamc, in.AccountID, in.UserName, h.policyName())
	if err != nil {
		return nil, err
	}
	if slices.Contains(st.groups, admins) {
		return nil, &NotQuarantinable{UserName: in.UserName, Reason: fmt.Sprintf("member of the %q group", admins)}
	}
	out := &QuarantineOutput{
		AccountID:         in.AccountID,
		UserName:          in.UserName,
		PolicyName:        h.policyName(),
		DryRun:            in.DryRun,
		DeactivatedKeyIDs: []string{},
	}
	out.Snapshot = QuarantineSnapshot{
		Groups:             st.groups,
		AttachedPolicyArns: st.attached,
		InlinePolicyNames:  st.inline,
		ActiveAccessKeyIDs: st.activeKeys(),
		TakenAt:            clock(h.Now),
	}
	marker, marked := st.tags[QuarantineTag]
	toDeactivate := []string{}
	if marked {
		// A retry: the keys to deactivate were decided by the first
		// attempt, before it changed anything.
		toDeactivate = parseKeyList(marker)
		out.Snapshot.ActiveAccessKeyIDs = union(out.Snapshot.ActiveAccessKeyIDs, toDeactivate)
	} else if in.DeactivateKeys {
		toDeactivate = out.Snapshot.ActiveAccessKeyIDs
	}
	if marked && st.hasPolicy && allInactive(st.keys, toDeactivate) {
		out.Result = ResultAlreadyQuarantined
		out.DeactivatedKeyIDs = toDeactivate
		return out, nil
	}
	if in.DryRun {
		out.Result = ResultWouldQuarantine
		out.DeactivatedKeyIDs = toDeactivate
		return out, nil
	}

	// The marker goes first: if anything below fails, the retry (or
	// Release) knows what the user had before.
	if !marked {
		if _, err := iamc.TagUser(ctx, &iam.TagUserInput{
			UserName: aws.String(in.UserName),
			Tags:     []iamtypes.Tag{{Key: aws.String(QuarantineTag), Value: aws.String(formatKeyList(toDeactivate))}},
		}); err != nil {
			return nil, userErr(in, "TagUser", err)
		}
	}
	if _, err := iamc.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
		UserName:       aws.String(in.UserName),
		PolicyName:     aws.String(h.policyName()),
		PolicyDocument: aws.String(QuarantinePolicyDocument),
	}); err != nil {
		return nil, userErr(in, "PutUserPolicy", err)
	}
	for _, id := range toDeactivate {
		k, ok := findKey(st.keys, id)
		if !ok || k.Status == iamtypes.StatusTypeInactive {
			continue
		}
		if _, err := iamc.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{
			UserName: aws.String(in.UserName), AccessKeyId: aws.String(id), Status: iamtypes.StatusTypeInactive,
		}); err != nil && !isNoSuchEntity(err) {
			return nil, awsErr("UpdateAccessKey", err)
		}
	}
	out.DeactivatedKeyIDs = toDeactivate
	out.Result = ResultQuarantined
	out.QuarantinedAt = clock(h.Now)
	log.Info("quarantined user", "deactivated", toDeactivate)
	return out, nil
}

// userAccess is what quarantine and release read about a user.
type userAccess struct {
	arn       string
	groups    []string
	attached  []string
	inline    []string // without keyflow's own policy
	hasPolicy bool     // keyflow's quarantine policy is attached
	keys      []iamtypes.AccessKeyMetadata
	tags      map[string]string
}

func (u *userAccess) activeKeys() []string {
	ids := []string{}
	for _, k := range u.keys {
		if k.Status == iamtypes.StatusTypeActive {
			ids = append(ids, aws.ToString(k.AccessKeyId))
		}
	}
	sort.Strings(ids)
	return ids
}

func readUserAccess(ctx context.Context, c IAMAPI, accountID, userName, policyName string) (*userAccess, error) {
	u, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(userName)})
	if err != nil {
		if isNoSuchEntity(err) {
			return nil, &UserNotFound{AccountID: accountID, UserName: userName}
		}
		return nil, awsErr("GetUser", err)
	}
	st := &userAccess{arn: aws.ToString(u.User.Arn), attached: []string{}, inline: []string{}}
	if st.groups, err = userGroups(ctx, c, accountID, userName); err != nil {
		return nil, err
	}
	if st.groups == nil {
		st.groups = []string{}
	}
	sort.Strings(st.groups)
	ap := iam.NewListAttachedUserPoliciesPaginator(c, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(userName)})
	for ap.HasMorePages() {
		out, err := ap.NextPage(ctx)
		if err != nil {
			return nil, awsErr("ListAttachedUserPolicies", err)
		}
		for _, p := range out.AttachedPolicies {
			st.attached = append(st.attached, aws.ToString(p.PolicyArn))
		}
	}
	sort.Strings(st.attached)
	ip := iam.NewListUserPoliciesPaginator(c, &iam.ListUserPoliciesInput{UserName: aws.String(userName)})
	for ip.HasMorePages() {
		out, err := ip.NextPage(ctx)
		if err != nil {
			return nil, awsErr("ListUserPolicies", err)
		}
		for _, name := range out.PolicyNames {
			if name == policyName {
				st.hasPolicy = true
				continue
			}
			st.inline = append(st.inline, name)
		}
	}
	sort.Strings(st.inline)
	if st.keys, err = listKeys(ctx, c, accountID, userName); err != nil {
		return nil, err
	}
	if st.tags, err = userTags(ctx, c, accountID, userName); err != nil {
		return nil, err
	}
	return st, nil
}

func userErr(in QuarantineInput, op string, err error) error {
	if isNoSuchEntity(err) {
		return &UserNotFound{AccountID: in.AccountID, UserName: in.UserName}
	}
	return awsErr(op, err)
}

func formatKeyList(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ",")
}

func parseKeyList(s string) []string {
	ids := []string{}
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id != "" && id != "none" {
			ids = append(ids, id)
		}
	}
	return ids
}

func allInactive(keys []iamtypes.AccessKeyMetadata, ids []string) bool {
	for _, id := range ids {
		if k, ok := findKey(keys, id); ok && k.Status != iamtypes.StatusTypeInactive {
			return false
		}
	}
	return true
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
