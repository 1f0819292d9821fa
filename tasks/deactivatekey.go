package tasks

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// DeactivateKeyInput names the old key and the moment from which any use of
// it counts as "still in use" (the creation of its replacement).
type DeactivateKeyInput struct {
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
	AccessKeyID string `json:"accessKeyId"`
	// NewAccessKeyID is the replacement; its creation date is the cut-off
	// when InUseSince is not given.
	NewAccessKeyID string    `json:"newAccessKeyId,omitempty"`
	InUseSince     time.Time `json:"inUseSince,omitzero"`
	// Force deactivates even a key in use (the workflow's last wait is
	// over and policy says the key goes anyway).
	Force bool `json:"force,omitempty"`
	// FailIfInUse makes an in-use key a KeyStillInUse error instead of a
	// result, for workflows that prefer Catch to Choice.
	FailIfInUse bool `json:"failIfInUse,omitempty"`
	DryRun      bool `json:"dryRun,omitempty"`
}

// DeactivateKeyOutput says what happened to the key.
type DeactivateKeyOutput struct {
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
	AccessKeyID string `json:"accessKeyId"`
	// Result is "Deactivated", "AlreadyInactive", "KeyStillInUse" or, in a
	// dry run, "WouldDeactivate".
	Result          string    `json:"result"`
	InUse           bool      `json:"inUse"`
	LastUsedDate    time.Time `json:"lastUsedDate,omitzero"`
	LastUsedService string    `json:"lastUsedService,omitempty"`
	InUseSince      time.Time `json:"inUseSince,omitzero"`
	CheckedAt       time.Time `json:"checkedAt"`
	DryRun          bool      `json:"dryRun"`
}

// Results of DeactivateKey.
const (
	ResultDeactivated     = "Deactivated"
	ResultAlreadyInactive = "AlreadyInactive"
	ResultKeyStillInUse   = "KeyStillInUse"
	ResultWouldDeactivate = "WouldDeactivate"
)

// DeactivateKey sets the old key Inactive unless it was used after its
// replacement was created. An in-use key is a result, not an error: the
// workflow notifies the owner and waits again (with a limit), which a
// Choice on "result" expresses without a Catch.
type DeactivateKey struct {
	Accounts Accounts
	Now      func() time.Time
	Log      *slog.Logger
}

// Handle implements the handler.
//
// Errors: InvalidInput, UserNotFound, KeyNotFound, KeyStillInUse (only with
// FailIfInUse), AccountUnavailable, Throttled, ServiceError.
func (h *DeactivateKey) Handle(ctx context.Context, in DeactivateKeyInput) (*DeactivateKeyOutput, error) {
	if err := validateUser(in.AccountID, in.UserName); err != nil {
		return nil, err
	}
	if err := validateKeyID("accessKeyId", in.AccessKeyID); err != nil {
		return nil, err
	}
	if in.NewAccessKeyID != "" {
		if err := validateKeyID("newAccessKeyId", in.NewAccessKeyID); err != nil {
			return nil, err
		}
	}
	if in.NewAccessKeyID == "" && in.InUseSince.IsZero() && !in.Force {
		return nil, &InvalidInput{Field: "newAccessKeyId", Reason: "newAccessKeyId or inUseSince is needed to judge the key's last use"}
	}
	log := logger(h.Log).With("handler", "deactivate-key", "accountId", in.AccountID, "userName", in.UserName, "accessKeyId", in.AccessKeyID)
	iamc, err := h.Accounts.IAM(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	out := &DeactivateKeyOutput{
		AccountID:   in.AccountID,
		UserName:    in.UserName,
		AccessKeyID: in.AccessKeyID,
		CheckedAt:   clock(h.Now),
		DryRun:      in.DryRun,
		InUseSince:  in.InUseSince,
	}
	keys, err := listKeys(ctx, iamc, in.AccountID, in.UserName)
	if err != nil {
		return nil, err
	}
	old, ok := findKey(keys, in.AccessKeyID)
	if !ok {
		return nil, &KeyNotFound{AccountID: in.AccountID, UserName: in.UserName, AccessKeyID: in.AccessKeyID}
	}
	if old.Status == iamtypes.StatusTypeInactive {
		out.Result = ResultAlreadyInactive
		return out, nil
	}
	if out.InUseSince.IsZero() && in.NewAccessKeyID != "" {
		nk, ok := findKey(keys, in.NewAccessKeyID)
		if !ok {
			return nil, &KeyNotFound{AccountID: in.AccountID, UserName: in.UserName, AccessKeyID: in.NewAccessKeyID}
		}
		out.InUseSince = aws.ToTime(nk.CreateDate)
	}

	lu, err := iamc.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(in.AccessKeyID)})
	if err != nil {
		if isNoSuchEntity(err) {
			return nil, &KeyNotFound{AccountID: in.AccountID, UserName: in.UserName, AccessKeyID: in.AccessKeyID}
		}
		return nil, awsErr("GetAccessKeyLastUsed", err)
	}
	if lu.AccessKeyLastUsed != nil && lu.AccessKeyLastUsed.LastUsedDate != nil {
		out.LastUsedDate = lu.AccessKeyLastUsed.LastUsedDate.UTC()
		out.LastUsedService = aws.ToString(lu.AccessKeyLastUsed.ServiceName)
		// IAM records last use coarsely and late, so a use at the very
		// moment of the cut-off counts as a use.
		out.InUse = !out.InUseSince.IsZero() && !out.LastUsedDate.Before(out.InUseSince)
	}
	if out.InUse && !in.Force {
		log.Info("old key still in use", "lastUsedDate", out.LastUsedDate, "service", out.LastUsedService)
		if in.FailIfInUse {
			return nil, &KeyStillInUse{AccessKeyID: in.AccessKeyID, LastUsedDate: out.LastUsedDate, Service: out.LastUsedService}
		}
		out.Result = ResultKeyStillInUse
		return out, nil
	}
	if in.DryRun {
		out.Result = ResultWouldDeactivate
		return out, nil
	}
	if _, err := iamc.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{
		UserName:    aws.String(in.UserName),
		AccessKeyId: aws.String(in.AccessKeyID),
		Status:      iamtypes.StatusTypeInactive,
	}); err != nil {
		if isNoSuchEntity(err) {
			return nil, &KeyNotFound{AccountID: in.AccountID, UserName: in.UserName, AccessKeyID: in.AccessKeyID}
		}
		return nil, awsErr("UpdateAccessKey", err)
	}
	log.Info("deactivated key")
	out.Result = ResultDeactivated
	return out, nil
}
