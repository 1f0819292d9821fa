package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// ReleaseInput names the user to release, with the snapshot Quarantine
// returned (optional: the user's quarantine tag alone is enough to undo).
type ReleaseInput struct {
	AccountID string              `json:"accountId"`
	UserName  string              `json:"userName"`
	Snapshot  *QuarantineSnapshot `json:"snapshot,omitempty"`
	DryRun    bool                `json:"dryRun,omitempty"`
}

// ReleaseOutput says what was undone.
type ReleaseOutput struct {
	AccountID string `json:"accountId"`
	UserName  string `json:"userName"`
	// Result is "Released", "AlreadyReleased" (nothing left to undo: a
	// retry, or a user never quarantined) or "WouldRelease".
	Result            string   `json:"result"`
	ReactivatedKeyIDs []string `json:"reactivatedAccessKeyIds"`
	MissingKeyIDs     []string `json:"missingAccessKeyIds"`
	// Drift lists differences between the snapshot and the user's groups
	// and policies now. Quarantine changes neither (the deny policy
	// overrides them), so drift is someone else's change: it is reported,
	// never reverted, because reverting could undo a deliberate fix.
	Drift      []string  `json:"drift"`
	ReleasedAt time.Time `json:"releasedAt,omitzero"`
	DryRun     bool      `json:"dryRun"`
}

// Results of Release.
const (
	ResultReleased        = "Released"
	ResultAlreadyReleased = "AlreadyReleased"
	ResultWouldRelease    = "WouldRelease"
)

// Release undoes exactly what Quarantine did: it reactivates the keys the
// quarantine deactivated, removes the deny policy and then the marker tag
// (last, so a failed release can be retried).
type Release struct {
	Accounts   Accounts
	Now        func() time.Time
	Log        *slog.Logger
	PolicyName string // DefaultQuarantinePolicy when empty
}

// Handle implements the handler.
//
// Errors: InvalidInput, UserNotFound, AccountUnavailable, Throttled,
// ServiceError.
func (h *Release) Handle(ctx context.Context, in ReleaseInput) (*ReleaseOutput, error) {
	if err := validateUser(in.AccountID, in.UserName); err != nil {
		return nil, err
	}
	policy := h.PolicyName
	if policy == "" {
		policy = DefaultQuarantinePolicy
	}
	log := logger(h.Log).With("handler", "release", "accountId", in.AccountID, "userName", in.UserName)
	iamc, err := h.Accounts.IAM(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	st, err := readUserAccess(ctx, iamc, in.AccountID, in.UserName, policy)
	if err != nil {
		return nil, err
	}
	out := &ReleaseOutput{
		AccountID: in.AccountID, UserName: in.UserName, DryRun: in.DryRun,
		ReactivatedKeyIDs: []string{}, MissingKeyIDs: []string{}, Drift: []string{},
	}
	if in.Snapshot != nil {
		out.Drift = append(out.Drift, diff("group", in.Snapshot.Groups, st.groups)...)
		out.Drift = append(out.Drift, diff("attached policy", in.Snapshot.AttachedPolicyArns, st.attached)...)
		out.Drift = append(out.Drift, diff("inline policy", in.Snapshot.InlinePolicyNames, st.inline)...)
	}
	marker, marked := st.tags[QuarantineTag]
	if !marked && !st.hasPolicy {
		out.Result = ResultAlreadyReleased
		return out, nil
	}
	var reactivate []string
	for _, id := range parseKeyList(marker) {
		k, ok := findKey(st.keys, id)
		switch {
		case !ok:
			out.MissingKeyIDs = append(out.MissingKeyIDs, id)
		case k.Status == iamtypes.StatusTypeInactive:
			reactivate = append(reactivate, id)
		}
	}
	if in.DryRun {
		out.Result = ResultWouldRelease
		out.ReactivatedKeyIDs = append(out.ReactivatedKeyIDs, reactivate...)
		return out, nil
	}
	for _, id := range reactivate {
		if _, err := iamc.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{
			UserName: aws.String(in.UserName), AccessKeyId: aws.String(id), Status: iamtypes.StatusTypeActive,
		}); err != nil {
			if isNoSuchEntity(err) {
				out.MissingKeyIDs = append(out.MissingKeyIDs, id)
				continue
			}
			return nil, awsErr("UpdateAccessKey", err)
		}
		out.ReactivatedKeyIDs = append(out.ReactivatedKeyIDs, id)
	}
	if st.hasPolicy {
		if _, err := iamc.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{
			UserName: aws.String(in.UserName), PolicyName: aws.String(policy),
		}); err != nil && !isNoSuchEntity(err) {
			return nil, awsErr("DeleteUserPolicy", err)
		}
	}
	if marked {
		if _, err := iamc.UntagUser(ctx, &iam.UntagUserInput{
			UserName: aws.String(in.UserName), TagKeys: []string{QuarantineTag},
		}); err != nil && !isNoSuchEntity(err) {
			return nil, awsErr("UntagUser", err)
		}
	}
	out.Result = ResultReleased
	out.ReleasedAt = clock(h.Now)
	log.Info("released user", "reactivated", out.ReactivatedKeyIDs)
	return out, nil
}

// diff describes what was added to or removed from a list since the snapshot.
func diff(what string, before, now []string) []string {
	var d []string
	for _, s := range before {
		if !slices.Contains(now, s) {
			d = append(d, fmt.Sprintf("%s %s removed since the snapshot", what, s))
		}
	}
	for _, s := range now {
		if !slices.Contains(before, s) {
			d = append(d, fmt.Sprintf("%s %s added since the snapshot", what, s))
		}
	}
	return d
}
