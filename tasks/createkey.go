package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// CreateKeyInput asks for a new access key for a user, stored in the user's
// secret.
type CreateKeyInput struct {
	AccountID string `json:"accountId"`
	UserName  string `json:"userName"`
	// OldAccessKeyID is the key being rotated out; it stays untouched.
	OldAccessKeyID string `json:"oldAccessKeyId,omitempty"`
	// SecretName defaults to Account_<id>_User_<name>_AccessKey.
	SecretName string `json:"secretName,omitempty"`
	// KMSKeyID is a customer-managed key for a secret created here.
	KMSKeyID string `json:"kmsKeyId,omitempty"`
	// DeleteInactiveKey is the two-key policy: when the user already has a
	// second key that is Inactive, delete it to make room instead of
	// failing with KeyLimitExceeded. An Active second key is never removed.
	DeleteInactiveKey bool `json:"deleteInactiveKey,omitempty"`
	DryRun            bool `json:"dryRun,omitempty"`
}

// CreateKeyOutput names the new key and where its secret is; never the
// secret itself.
type CreateKeyOutput struct {
	AccountID       string    `json:"accountId"`
	UserName        string    `json:"userName"`
	OldAccessKeyID  string    `json:"oldAccessKeyId,omitempty"`
	AccessKeyID     string    `json:"accessKeyId,omitempty"`
	CreateDate      time.Time `json:"createDate,omitzero"`
	SecretName      string    `json:"secretName"`
	SecretArn       string    `json:"secretArn,omitempty"`
	SecretVersionID string    `json:"secretVersionId,omitempty"`
	// RemovedAccessKeyID is the inactive key deleted by DeleteInactiveKey
	// (in a dry run: the one that would be).
	RemovedAccessKeyID string `json:"removedAccessKeyId,omitempty"`
	// OrphanAccessKeyIDs are keys of an earlier failed attempt whose secret
	// was never stored; they were deleted (in a dry run: would be).
	OrphanAccessKeyIDs []string `json:"orphanAccessKeyIds,omitempty"`
	// Action is "created", "alreadyStored" (a retry found the work done)
	// or "wouldCreate" (dry run).
	Action string `json:"action"`
	DryRun bool   `json:"dryRun"`
}

// CreateKey creates a user's new access key and writes it straight into the
// user's Secrets Manager secret, in one handler, so that the secret never
// crosses a state boundary.
type CreateKey struct {
	Accounts Accounts
	Now      func() time.Time
	Log      *slog.Logger
}

// Handle implements the handler.
//
// Errors: InvalidInput, UserNotFound, KeyNotFound, KeyLimitExceeded,
// SecretStoreFailed, AccountUnavailable, Throttled, ServiceError.
func (h *CreateKey) Handle(ctx context.Context, in CreateKeyInput) (*CreateKeyOutput, error) {
	if err := validateUser(in.AccountID, in.UserName); err != nil {
		return nil, err
	}
	if in.OldAccessKeyID != "" {
		if err := validateKeyID("oldAccessKeyId", in.OldAccessKeyID); err != nil {
			return nil, err
		}
	}
	log := logger(h.Log).With("handler", "create-key", "accountId", in.AccountID, "userName", in.UserName)
	iamc, err := h.Accounts.IAM(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	smc, err := h.Accounts.SecretsManager(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	out := &CreateKeyOutput{
		AccountID:      in.AccountID,
		UserName:       in.UserName,
		OldAccessKeyID: in.OldAccessKeyID,
		SecretName:     in.SecretName,
		DryRun:         in.DryRun,
	}
	if out.SecretName == "" {
		out.SecretName = DefaultSecretName(in.AccountID, in.UserName)
	}

	user, err := iamc.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(in.UserName)})
	if err != nil {
		if isNoSuchEntity(err) {
			return nil, &UserNotFound{AccountID: in.AccountID, UserName: in.UserName}
		}
		return nil, awsErr("GetUser", err)
	}
	userArn := aws.ToString(user.User.Arn)
	keys, err := listKeys(ctx, iamc, in.AccountID, in.UserName)
	if err != nil {
		return nil, err
	}
	secret, err := describeSecret(ctx, smc, out.SecretName)
	if err != nil {
		return nil, err
	}
	tags, err := userTags(ctx, iamc, in.AccountID, in.UserName)
	if err != nil {
		return nil, err
	}
	marker, marked := tags[CreatingKeyTag]

	// A retry after a success: a key other than the old one whose secret is
	// the secret's current version. Return it instead of making a third.
	for _, k := range keys {
		id := aws.ToString(k.AccessKeyId)
		if id != in.OldAccessKeyID && isCurrent(secret, id) {
			out.AccessKeyID = id
			out.CreateDate = aws.ToTime(k.CreateDate)
			out.SecretArn = aws.ToString(secret.ARN)
			out.SecretVersionID = versionToken(id)
			out.Action = "alreadyStored"
			log.Info("key already created and stored", "accessKeyId", id)
			if marked && !in.DryRun {
				if err := untagCreating(ctx, iamc, in); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
	}

	// A key made by an earlier attempt whose secret never reached Secrets
	// Manager (a lost CreateAccessKey response, a timeout, a failed delete):
	// the marker lists the keys that existed before that attempt, so any
	// other unstored key is that attempt's orphan. Its secret is lost; it
	// can only be deleted.
	if marked {
		before := parseKeyList(marker)
		var kept []iamtypes.AccessKeyMetadata
		for _, k := range keys {
			id := aws.ToString(k.AccessKeyId)
			if id == in.OldAccessKeyID || slices.Contains(before, id) {
				kept = append(kept, k)
				continue
			}
			out.OrphanAccessKeyIDs = append(out.OrphanAccessKeyIDs, id)
			if in.DryRun {
				continue
			}
			if _, err := iamc.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(in.UserName), AccessKeyId: aws.String(id)}); err != nil && !isNoSuchEntity(err) {
				return nil, awsErr("DeleteAccessKey", err)
			}
			log.Warn("deleted orphan key of an earlier attempt", "accessKeyId", id)
		}
		keys = kept
	}
	if in.OldAccessKeyID != "" {
		if _, ok := findKey(keys, in.OldAccessKeyID); !ok {
			return nil, &KeyNotFound{AccountID: in.AccountID, UserName: in.UserName, AccessKeyID: in.OldAccessKeyID}
		}
	}

	// Two keys already: the second one is not ours (ours would have been
	// found above), so only the two-key policy may make room.
	if len(keys) >= 2 {
		var ids []string
		var inactive string
		for _, k := range keys {
			id := aws.ToString(k.AccessKeyId)
			ids = append(ids, id)
			if id != in.OldAccessKeyID && k.Status == iamtypes.StatusTypeInactive && inactive == "" {
				inactive = id
			}
		}
		if !in.DeleteInactiveKey || inactive == "" || len(keys) > 2 {
			return nil, &KeyLimitExceeded{AccountID: in.AccountID, UserName: in.UserName, AccessKeyIDs: ids}
		}
		out.RemovedAccessKeyID = inactive
		if !in.DryRun {
			_, err := iamc.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(in.UserName), AccessKeyId: aws.String(inactive)})
			if err != nil && !isNoSuchEntity(err) {
				return nil, awsErr("DeleteAccessKey", err)
			}
			log.Info("deleted inactive second key to make room", "accessKeyId", inactive)
		}
	}
	if in.DryRun {
		out.Action = "wouldCreate"
		return out, nil
	}

	// The marker goes on before the key exists, so that whatever happens
	// between CreateAccessKey and the secret write, the next attempt can
	// tell our orphan from a key someone else made.
	var existing []string
	for _, k := range keys {
		existing = append(existing, aws.ToString(k.AccessKeyId))
	}
	if _, err := iamc.TagUser(ctx, &iam.TagUserInput{
		UserName: aws.String(in.UserName),
		Tags:     []iamtypes.Tag{{Key: aws.String(CreatingKeyTag), Value: aws.String(formatKeyList(existing))}},
	}); err != nil {
		return nil, awsErr("TagUser", err)
	}

	created, err := iamc.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(in.UserName)})
	if err != nil {
		switch {
		case isNoSuchEntity(err):
			return nil, &UserNotFound{AccountID: in.AccountID, UserName: in.UserName}
		case apiCode(err) == "LimitExceeded":
			// Someone made a key between our ListAccessKeys and now.
			ids := []string{}
			for _, k := range keys {
				ids = append(ids, aws.ToString(k.AccessKeyId))
			}
			return nil, &KeyLimitExceeded{AccountID: in.AccountID, UserName: in.UserName, AccessKeyIDs: ids}
		}
		return nil, awsErr("CreateAccessKey", err)
	}
	newID := aws.ToString(created.AccessKey.AccessKeyId)
	out.AccessKeyID = newID
	out.CreateDate = aws.ToTime(created.AccessKey.CreateDate)
	out.SecretVersionID = versionToken(newID)
	log.Info("created access key", "accessKeyId", newID)

	arn, storeErr := storeKey(ctx, smc, secret, in, out.SecretName, userArn, created.AccessKey)
	created = nil // drop the only reference to the secret access key
	if storeErr != nil {
		// The secret is shown only once: a key whose secret is not stored
		// must not survive.
		_, delErr := iamc.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(in.UserName), AccessKeyId: aws.String(newID)})
		removed := delErr == nil || isNoSuchEntity(delErr)
		log.Error("storing the new key failed; deleting it", "accessKeyId", newID, "removed", removed, "error", storeErr.Error())
		if removed {
			// Best effort: a marker left behind only costs the next
			// attempt a look for orphans.
			_ = untagCreating(ctx, iamc, in)
		}
		if t, ok := storeErr.(*Throttled); ok && removed {
			// Nothing is left behind, so a plain retry is right.
			return nil, t
		}
		return nil, &SecretStoreFailed{SecretName: out.SecretName, AccessKeyID: newID, KeyRemoved: removed, Err: storeErr}
	}
	out.SecretArn = arn
	out.Action = "created"
	if err := untagCreating(ctx, iamc, in); err != nil {
		// Stored and safe; a retry finds the key and removes the marker.
		return nil, err
	}
	log.Info("stored access key", "accessKeyId", newID, "secretArn", arn)
	return out, nil
}

// CreatingKeyTag marks a user while CreateKey is between creating a key and
// storing it; its value lists the keys the user had before.
const CreatingKeyTag = "keyflow:creating-key"

func untagCreating(ctx context.Context, iamc IAMAPI, in CreateKeyInput) error {
	if _, err := iamc.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String(in.UserName), TagKeys: []string{CreatingKeyTag}}); err != nil && !isNoSuchEntity(err) {
		return awsErr("UntagUser", err)
	}
	return nil
}

// describeSecret is the secret, or nil when it does not exist yet.
func describeSecret(ctx context.Context, smc SecretsManagerAPI, name string) (*secretsmanager.DescribeSecretOutput, error) {
	d, err := smc.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		if isSecretNotFound(err) {
			return nil, nil
		}
		return nil, awsErr("DescribeSecret", err)
	}
	return d, nil
}

// isCurrent reports whether the secret's AWSCURRENT version holds key id.
func isCurrent(secret *secretsmanager.DescribeSecretOutput, id string) bool {
	if secret == nil {
		return false
	}
	return slices.Contains(secret.VersionIdsToStages[versionToken(id)], "AWSCURRENT")
}

// storeKey writes the key into the secret and returns the secret's ARN. For
// an existing secret the resource policy is put first: if it fails, the
// secret's versions are untouched and AWSPREVIOUS still holds the key that is
// being rotated out.
func storeKey(ctx context.Context, smc SecretsManagerAPI, secret *secretsmanager.DescribeSecretOutput,
	in CreateKeyInput, name, userArn string, key *iamtypes.AccessKey) (string, error) {
	id := aws.ToString(key.AccessKeyId)
	value, err := json.Marshal(map[string]string{
		"AccessKeyId":     id,
		"SecretAccessKey": aws.ToString(key.SecretAccessKey),
		"UserName":        in.UserName,
		"AccountId":       in.AccountID,
	})
	if err != nil {
		return "", err
	}
	token := versionToken(id)
	if secret == nil {
		cs, err := smc.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name:               aws.String(name),
			SecretString:       aws.String(string(value)),
			ClientRequestToken: aws.String(token),
			KmsKeyId:           nilIfEmpty(in.KMSKeyID),
			Description:        aws.String("Access key of IAM user " + in.UserName + ", rotated by keyflow"),
			Tags: []smtypes.Tag{
				{Key: aws.String("keyflow:user"), Value: aws.String(in.UserName)},
			},
		})
		if err == nil {
			if err := putSecretPolicy(ctx, smc, aws.ToString(cs.ARN), userArn); err != nil {
				return "", err
			}
			return aws.ToString(cs.ARN), nil
		}
		if apiCode(err) != "ResourceExistsException" {
			arn, err := verifyStored(ctx, smc, name, id, awsErr("CreateSecret", err))
			if err != nil {
				return "", err
			}
			return arn, putSecretPolicy(ctx, smc, arn, userArn)
		}
		// Created by someone else meanwhile (or our own lost response):
		// fall through to a new version of the existing secret.
		if secret, err = describeSecret(ctx, smc, name); err != nil {
			return "", err
		}
		if secret == nil {
			return "", &ServiceError{Op: "CreateSecret", Code: "ResourceExistsException", Err: errors.New("secret exists but cannot be described")}
		}
		if isCurrent(secret, id) {
			return aws.ToString(secret.ARN), putSecretPolicy(ctx, smc, aws.ToString(secret.ARN), userArn)
		}
	}
	arn := aws.ToString(secret.ARN)
	if err := putSecretPolicy(ctx, smc, arn, userArn); err != nil {
		return "", err
	}
	// PutSecretValue moves AWSCURRENT to the new version and AWSPREVIOUS to
	// the version that was current: the old key stays readable until it is
	// deleted.
	if _, err := smc.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(arn),
		SecretString:       aws.String(string(value)),
		ClientRequestToken: aws.String(token),
	}); err != nil {
		return verifyStored(ctx, smc, arn, id, awsErr("PutSecretValue", err))
	}
	return arn, nil
}

// verifyStored decides a failed write: a write whose response was lost may
// have landed, and deleting that key would leave the secret holding a dead
// key. Only a confirmed AWSCURRENT version counts as stored.
func verifyStored(ctx context.Context, smc SecretsManagerAPI, secretID, keyID string, writeErr error) (string, error) {
	d, err := describeSecret(ctx, smc, secretID)
	if err == nil && isCurrent(d, keyID) {
		return aws.ToString(d.ARN), nil
	}
	return "", writeErr
}

func putSecretPolicy(ctx context.Context, smc SecretsManagerAPI, arn, userArn string) error {
	doc, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{
			{
				"Sid":       "OwnerReads",
				"Effect":    "Allow",
				"Principal": map[string]string{"AWS": userArn},
				"Action":    []string{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"},
				"Resource":  "*",
			},
			{
				"Sid":       "NobodyElseReads",
				"Effect":    "Deny",
				"Principal": "*",
				"Action":    "secretsmanager:GetSecretValue",
				"Resource":  "*",
				"Condition": map[string]any{"StringNotEquals": map[string]string{"aws:PrincipalArn": userArn}},
			},
		},
	})
	if err != nil {
		return err
	}
	if _, err := smc.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{
		SecretId:       aws.String(arn),
		ResourcePolicy: aws.String(string(doc)),
	}); err != nil {
		return awsErr("PutResourcePolicy", err)
	}
	return nil
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
