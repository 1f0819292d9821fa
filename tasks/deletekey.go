package tasks

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// DefaultBufferDays is the default age of a key, from its creation, before
// which it is never deleted.
const DefaultBufferDays = 90

// DeleteKeyInput names the old key and when its buffer ends.
type DeleteKeyInput struct {
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
	AccessKeyID string `json:"accessKeyId"`
	// NotBefore is the buffer point. When zero it is the key's creation
	// date plus BufferDays.
	NotBefore  time.Time `json:"notBefore,omitzero"`
	BufferDays int       `json:"bufferDays,omitempty"`
	DryRun     bool      `json:"dryRun,omitempty"`
}

// DeleteKeyOutput says what happened to the key.
type DeleteKeyOutput struct {
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
	AccessKeyID string `json:"accessKeyId"`
	// Result is "Deleted", "AlreadyDeleted" or "WouldDelete" (dry run).
	Result    string    `json:"result"`
	NotBefore time.Time `json:"notBefore,omitzero"`
	DeletedAt time.Time `json:"deletedAt,omitzero"`
	DryRun    bool      `json:"dryRun"`
}

// Results of DeleteKey.
const (
	ResultDeleted        = "Deleted"
	ResultAlreadyDeleted = "AlreadyDeleted"
	ResultWouldDelete    = "WouldDelete"
)

// DeleteKey deletes the old key, but only once it is Inactive and its buffer
// has passed: the two conditions the audit checks for every deletion.
type DeleteKey struct {
	Accounts Accounts
	Now      func() time.Time
	Log      *slog.Logger
}

// Handle implements the handler.
//
// Errors: InvalidInput, UserNotFound, KeyNotInactive, BufferNotPassed,
// AccountUnavailable, Throttled, ServiceError. A key that is already gone is
// a success (AlreadyDeleted), so a retry after the delete is harmless.
func (h *DeleteKey) Handle(ctx context.Context, in DeleteKeyInput) (*DeleteKeyOutput, error) {
	if err := validateUser(in.AccountID, in.UserName); err != nil {
		return nil, err
	}
	if err := validateKeyID("accessKeyId", in.AccessKeyID); err != nil {
		return nil, err
	}
	if in.BufferDays < 0 {
		return nil, &InvalidInput{Field: "bufferDays", Reason: "must not be negative"}
	}
	log := logger(h.Log).With("handler", "delete-key", "accountId", in.AccountID, "userName", in.UserName, "accessKeyId", in.AccessKeyID)
	iamc, err := h.Accounts.IAM(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	now := clock(h.Now)
	out := &DeleteKeyOutput{AccountID: in.AccountID, UserName: in.UserName, AccessKeyID: in.AccessKeyID, DryRun: in.DryRun}
	keys, err := listKeys(ctx, iamc, in.AccountID, in.UserName)
	if err != nil {
		if _, gone := err.(*UserNotFound); gone {
			// The user and with it the key are gone: the goal is met.
			out.Result = ResultAlreadyDeleted
			return out, nil
		}
		return nil, err
	}
	key, ok := findKey(keys, in.AccessKeyID)
	if !ok {
		out.Result = ResultAlreadyDeleted
		return out, nil
	}
	out.NotBefore = in.NotBefore
	if out.NotBefore.IsZero() {
		buffer := in.BufferDays
		if buffer == 0 {
			buffer = DefaultBufferDays
		}
		out.NotBefore = aws.ToTime(key.CreateDate).Add(time.Duration(buffer) * 24 * time.Hour).UTC()
	}
	if key.Status != iamtypes.StatusTypeInactive {
		return nil, &KeyNotInactive{AccessKeyID: in.AccessKeyID, Status: string(key.Status)}
	}
	if now.Before(out.NotBefore) {
		return nil, &BufferNotPassed{AccessKeyID: in.AccessKeyID, NotBefore: out.NotBefore, Now: now}
	}
	if in.DryRun {
		out.Result = ResultWouldDelete
		return out, nil
	}
	if _, err := iamc.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{
		UserName:    aws.String(in.UserName),
		AccessKeyId: aws.String(in.AccessKeyID),
	}); err != nil && !isNoSuchEntity(err) {
		return nil, awsErr("DeleteAccessKey", err)
	}
	log.Info("deleted key")
	out.Result = ResultDeleted
	out.DeletedAt = now
	return out, nil
}
