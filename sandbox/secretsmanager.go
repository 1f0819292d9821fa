package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// SecretsManager is one account's Secrets Manager, with the methods of
// *secretsmanager.Client.
type SecretsManager struct {
	s       *Sandbox
	account string
}

// SecretsManager returns the Secrets Manager client of the account.
func (s *Sandbox) SecretsManager(accountID string) *SecretsManager {
	return &SecretsManager{s: s, account: accountID}
}

const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
	// maxVersions: beyond this many versions, AWS removes the oldest
	// versions that carry no stage label.
	maxVersions        = 100
	defaultRecoveryDay = 30
)

type secret struct {
	Name        string
	ARN         string
	Description string `json:",omitempty"`
	KmsKeyID    string `json:",omitempty"`
	Tags        []tag  `json:",omitempty"`
	Policy      string `json:",omitempty"`
	Created     time.Time
	Changed     time.Time
	Deleted     *time.Time `json:",omitempty"` // scheduled deletion date
	Versions    []*secretVersion
}

type secretVersion struct {
	ID      string
	String  *string `json:",omitempty"`
	Binary  []byte  `json:",omitempty"`
	Stages  []string
	Created time.Time
}

func (x *secret) version(id string) *secretVersion {
	for _, v := range x.Versions {
		if v.ID == id {
			return v
		}
	}
	return nil
}

func (x *secret) staged(stage string) *secretVersion {
	for _, v := range x.Versions {
		if hasStage(v, stage) {
			return v
		}
	}
	return nil
}

func hasStage(v *secretVersion, stage string) bool {
	for _, s := range v.Stages {
		if s == stage {
			return true
		}
	}
	return false
}

func dropStage(v *secretVersion, stage string) {
	kept := v.Stages[:0:0]
	for _, s := range v.Stages {
		if s != stage {
			kept = append(kept, s)
		}
	}
	v.Stages = kept
}

// moveStage puts a label on a version, taking it off whichever version had
// it. Moving AWSCURRENT labels the version that loses it AWSPREVIOUS, which
// is how a rotation keeps the last value reachable.
func (x *secret) moveStage(stage string, to *secretVersion) {
	from := x.staged(stage)
	if from == to {
		return
	}
	if from != nil {
		dropStage(from, stage)
	}
	to.Stages = append(to.Stages, stage)
	if stage == stageCurrent && from != nil {
		if prev := x.staged(stagePrevious); prev != nil {
			dropStage(prev, stagePrevious)
		}
		from.Stages = append(from.Stages, stagePrevious)
	}
}

// prune removes the oldest unlabelled versions beyond maxVersions.
func (x *secret) prune() {
	for len(x.Versions) > maxVersions {
		i := -1
		for j, v := range x.Versions {
			if len(v.Stages) == 0 {
				i = j
				break
			}
		}
		if i < 0 {
			return
		}
		x.Versions = append(x.Versions[:i:i], x.Versions[i+1:]...)
	}
}

func secretNotFound() error {
	return &smtypes.ResourceNotFoundException{Message: msg("Secrets Manager can't find the specified secret.")}
}

func markedForDeletion() error {
	return &smtypes.InvalidRequestException{Message: msg("You tried to perform the operation on a secret that's currently marked deleted.")}
}

// find looks a secret up by name, full ARN or partial ARN (without the
// six-character suffix), as SecretId allows.
func (a *account) findSecret(id *string) (*secret, error) {
	if id == nil || *id == "" {
		return nil, secretNotFound()
	}
	if x := a.secrets[*id]; x != nil {
		return x, nil
	}
	if strings.HasPrefix(*id, "arn:") {
		for _, x := range a.secrets {
			if x.ARN == *id || strings.HasPrefix(x.ARN, *id+"-") && len(x.ARN) == len(*id)+7 {
				return x, nil
			}
		}
	}
	return nil, secretNotFound()
}

var secretName = regexp.MustCompile(`^[\w/+=.@-]{1,512}$`)

func checkToken(tok *string) error {
	if tok != nil && (len(*tok) < 32 || len(*tok) > 64) {
		return &smtypes.InvalidParameterException{Message: msg("ClientRequestToken must be 32-64 characters long.")}
	}
	return nil
}

func checkValue(str *string, bin []byte) error {
	if str != nil && bin != nil {
		return &smtypes.InvalidParameterException{Message: msg("You can't specify both a binary secret value and a string secret value in the same secret.")}
	}
	if (str != nil && len(*str) > 65536) || len(bin) > 65536 {
		return &smtypes.InvalidParameterException{Message: msg("The secret value is larger than 65,536 bytes.")}
	}
	return nil
}

func smTags(ts []smtypes.Tag) []tag {
	out := make([]tag, 0, len(ts))
	for _, t := range ts {
		out = append(out, tag{Key: aws.ToString(t.Key), Value: aws.ToString(t.Value)})
	}
	return out
}

func apiSMTags(ts []tag) []smtypes.Tag {
	if len(ts) == 0 {
		return nil
	}
	out := make([]smtypes.Tag, len(ts))
	for i, t := range ts {
		out[i] = smtypes.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)}
	}
	return out
}

// CreateSecret creates a secret and, when a value is given, its first
// version labelled AWSCURRENT.
func (c *SecretsManager) CreateSecret(ctx context.Context, in *sm.CreateSecretInput, _ ...func(*sm.Options)) (*sm.CreateSecretOutput, error) {
	in = orEmpty(in)
	var out *sm.CreateSecretOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreateSecretInput", param{"Name", in.Name != nil}); err != nil {
			return err
		}
		if !secretName.MatchString(*in.Name) {
			return &smtypes.InvalidParameterException{Message: msg("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")}
		}
		if err := checkToken(in.ClientRequestToken); err != nil {
			return err
		}
		if err := checkValue(in.SecretString, in.SecretBinary); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		if x := a.secrets[*in.Name]; x != nil {
			if x.Deleted != nil {
				return &smtypes.InvalidRequestException{Message: msg("You can't create this secret because a secret with this name is already scheduled for deletion.")}
			}
			return &smtypes.ResourceExistsException{Message: msg(fmt.Sprintf("The operation failed because the secret %s already exists.", *in.Name))}
		}
		now := c.s.clock()
		x := &secret{
			Name: *in.Name, ARN: fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", c.s.region, c.account, *in.Name, c.s.ids.pick(6, alnum)),
			Description: aws.ToString(in.Description), KmsKeyID: aws.ToString(in.KmsKeyId), Tags: smTags(in.Tags), Created: now, Changed: now,
		}
		out = &sm.CreateSecretOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name)}
		if in.SecretString != nil || in.SecretBinary != nil {
			v := &secretVersion{ID: aws.ToString(in.ClientRequestToken), String: in.SecretString, Binary: bytes.Clone(in.SecretBinary), Created: now}
			if v.ID == "" {
				v.ID = c.s.uuid()
			}
			x.Versions = append(x.Versions, v)
			x.moveStage(stageCurrent, v)
			out.VersionId = aws.String(v.ID)
		}
		a.secrets[x.Name] = x
		c.s.touch(c.account, kindSecret, x.Name)
		return nil
	})
	return out, fail("Secrets Manager", "CreateSecret", err)
}

// PutSecretValue adds a version. By default it becomes AWSCURRENT and the
// version it replaces becomes AWSPREVIOUS. ClientRequestToken is the version
// id and makes the call idempotent: the same token with the same value is a
// no-op, with a different value a ResourceExistsException.
func (c *SecretsManager) PutSecretValue(ctx context.Context, in *sm.PutSecretValueInput, _ ...func(*sm.Options)) (*sm.PutSecretValueOutput, error) {
	in = orEmpty(in)
	var out *sm.PutSecretValueOutput
	err := c.s.write(ctx, func() error {
		if err := required("PutSecretValueInput", param{"SecretId", in.SecretId != nil}); err != nil {
			return err
		}
		if err := checkToken(in.ClientRequestToken); err != nil {
			return err
		}
		if err := checkValue(in.SecretString, in.SecretBinary); err != nil {
			return err
		}
		if in.SecretString == nil && in.SecretBinary == nil {
			return &smtypes.InvalidRequestException{Message: msg("You must provide either SecretString or SecretBinary.")}
		}
		x, err := c.s.acct(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		if x.Deleted != nil {
			return markedForDeletion()
		}
		id := aws.ToString(in.ClientRequestToken)
		if id == "" {
			id = c.s.uuid()
		}
		if v := x.version(id); v != nil {
			if !sameValue(v, in.SecretString, in.SecretBinary) {
				return &smtypes.ResourceExistsException{Message: msg(fmt.Sprintf("You can't use ClientRequestToken %s because that value is already in use for a version of secret %s.", id, x.ARN))}
			}
			out = &sm.PutSecretValueOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name), VersionId: aws.String(v.ID), VersionStages: append([]string{}, v.Stages...)}
			return nil
		}
		stages := in.VersionStages
		if len(stages) == 0 {
			stages = []string{stageCurrent}
		}
		v := &secretVersion{ID: id, String: in.SecretString, Binary: bytes.Clone(in.SecretBinary), Created: c.s.clock()}
		x.Versions = append(x.Versions, v)
		for _, st := range stages {
			x.moveStage(st, v)
		}
		x.prune()
		x.Changed = v.Created
		c.s.touch(c.account, kindSecret, x.Name)
		out = &sm.PutSecretValueOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name), VersionId: aws.String(v.ID), VersionStages: append([]string{}, v.Stages...)}
		return nil
	})
	return out, fail("Secrets Manager", "PutSecretValue", err)
}

func sameValue(v *secretVersion, str *string, bin []byte) bool {
	if (v.String == nil) != (str == nil) {
		return false
	}
	if str != nil && *v.String != *str {
		return false
	}
	return bytes.Equal(v.Binary, bin)
}

// GetSecretValue returns a version's value, AWSCURRENT unless VersionId or
// VersionStage says otherwise.
func (c *SecretsManager) GetSecretValue(ctx context.Context, in *sm.GetSecretValueInput, _ ...func(*sm.Options)) (*sm.GetSecretValueOutput, error) {
	in = orEmpty(in)
	var out *sm.GetSecretValueOutput
	err := c.s.read(ctx, func() error {
		if err := required("GetSecretValueInput", param{"SecretId", in.SecretId != nil}); err != nil {
			return err
		}
		x, err := c.s.peek(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		if x.Deleted != nil {
			return markedForDeletion()
		}
		var v *secretVersion
		switch {
		case in.VersionId != nil:
			v = x.version(*in.VersionId)
			if v == nil {
				return &smtypes.ResourceNotFoundException{Message: msg(fmt.Sprintf("Secrets Manager can't find the specified secret value for VersionId: %s", truncate(*in.VersionId)))}
			}
			if in.VersionStage != nil && !hasStage(v, *in.VersionStage) {
				return &smtypes.InvalidRequestException{Message: msg("You provided a VersionStage that is not associated to the provided VersionId.")}
			}
		default:
			stage := aws.ToString(in.VersionStage)
			if stage == "" {
				stage = stageCurrent
			}
			v = x.staged(stage)
			if v == nil {
				return &smtypes.ResourceNotFoundException{Message: msg(fmt.Sprintf("Secrets Manager can't find the specified secret value for staging label: %s", truncate(stage)))}
			}
		}
		out = &sm.GetSecretValueOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name), VersionId: aws.String(v.ID),
			SecretString: v.String, SecretBinary: bytes.Clone(v.Binary), VersionStages: append([]string{}, v.Stages...), CreatedDate: aws.Time(v.Created)}
		return nil
	})
	return out, fail("Secrets Manager", "GetSecretValue", err)
}

// DescribeSecret returns a secret's metadata, never its value.
func (c *SecretsManager) DescribeSecret(ctx context.Context, in *sm.DescribeSecretInput, _ ...func(*sm.Options)) (*sm.DescribeSecretOutput, error) {
	in = orEmpty(in)
	var out *sm.DescribeSecretOutput
	err := c.s.read(ctx, func() error {
		if err := required("DescribeSecretInput", param{"SecretId", in.SecretId != nil}); err != nil {
			return err
		}
		x, err := c.s.peek(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		stages := map[string][]string{}
		for _, v := range x.Versions {
			if len(v.Stages) > 0 {
				stages[v.ID] = append([]string{}, v.Stages...)
			}
		}
		out = &sm.DescribeSecretOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name), Description: optString(x.Description),
			KmsKeyId: optString(x.KmsKeyID), Tags: apiSMTags(x.Tags), VersionIdsToStages: stages,
			CreatedDate: aws.Time(x.Created), LastChangedDate: aws.Time(x.Changed), DeletedDate: x.Deleted}
		return nil
	})
	return out, fail("Secrets Manager", "DescribeSecret", err)
}

// ListSecretVersionIds lists versions, oldest first; versions without a
// label only with IncludeDeprecated.
func (c *SecretsManager) ListSecretVersionIds(ctx context.Context, in *sm.ListSecretVersionIdsInput, _ ...func(*sm.Options)) (*sm.ListSecretVersionIdsOutput, error) {
	in = orEmpty(in)
	var out *sm.ListSecretVersionIdsOutput
	err := c.s.read(ctx, func() error {
		if err := required("ListSecretVersionIdsInput", param{"SecretId", in.SecretId != nil}); err != nil {
			return err
		}
		x, err := c.s.peek(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		var vs []*secretVersion
		for _, v := range x.Versions {
			if len(v.Stages) > 0 || aws.ToBool(in.IncludeDeprecated) {
				vs = append(vs, v)
			}
		}
		max := aws.ToInt32(in.MaxResults)
		if in.MaxResults == nil {
			max = 100
		}
		if max < 1 || max > 100 {
			return &smtypes.InvalidParameterException{Message: msg("MaxResults must be between 1 and 100.")}
		}
		from, to, next, err := page(indexKeys(len(vs)), in.NextToken, aws.Int32(max), 100)
		if err != nil {
			return &smtypes.InvalidNextTokenException{Message: msg("The NextToken value is invalid.")}
		}
		out = &sm.ListSecretVersionIdsOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name), NextToken: next, Versions: []smtypes.SecretVersionsListEntry{}}
		for _, v := range vs[from:to] {
			e := smtypes.SecretVersionsListEntry{VersionId: aws.String(v.ID), VersionStages: append([]string{}, v.Stages...), CreatedDate: aws.Time(v.Created)}
			if x.KmsKeyID != "" {
				e.KmsKeyIds = []string{x.KmsKeyID}
			}
			out.Versions = append(out.Versions, e)
		}
		return nil
	})
	return out, fail("Secrets Manager", "ListSecretVersionIds", err)
}

// UpdateSecret changes the description or KMS key and, with a value, adds a
// version exactly as PutSecretValue does.
func (c *SecretsManager) UpdateSecret(ctx context.Context, in *sm.UpdateSecretInput, optFns ...func(*sm.Options)) (*sm.UpdateSecretOutput, error) {
	in = orEmpty(in)
	var out *sm.UpdateSecretOutput
	err := c.s.write(ctx, func() error {
		if err := required("UpdateSecretInput", param{"SecretId", in.SecretId != nil}); err != nil {
			return err
		}
		x, err := c.s.acct(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		if x.Deleted != nil {
			return markedForDeletion()
		}
		if in.Description != nil {
			x.Description = *in.Description
		}
		if in.KmsKeyId != nil {
			x.KmsKeyID = *in.KmsKeyId
		}
		x.Changed = c.s.clock()
		c.s.touch(c.account, kindSecret, x.Name)
		out = &sm.UpdateSecretOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name)}
		return nil
	})
	if err != nil || (in.SecretString == nil && in.SecretBinary == nil) {
		return out, fail("Secrets Manager", "UpdateSecret", err)
	}
	put, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: in.SecretId, ClientRequestToken: in.ClientRequestToken, SecretString: in.SecretString, SecretBinary: in.SecretBinary}, optFns...)
	if err != nil {
		return nil, err
	}
	out.VersionId = put.VersionId
	return out, nil
}

// PutResourcePolicy attaches a resource policy (a JSON document).
func (c *SecretsManager) PutResourcePolicy(ctx context.Context, in *sm.PutResourcePolicyInput, _ ...func(*sm.Options)) (*sm.PutResourcePolicyOutput, error) {
	in = orEmpty(in)
	var out *sm.PutResourcePolicyOutput
	err := c.s.write(ctx, func() error {
		if err := required("PutResourcePolicyInput", param{"ResourcePolicy", in.ResourcePolicy != nil}, param{"SecretId", in.SecretId != nil}); err != nil {
			return err
		}
		x, err := c.s.acct(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		if x.Deleted != nil {
			return markedForDeletion()
		}
		var doc struct{ Statement json.RawMessage }
		if json.Unmarshal([]byte(*in.ResourcePolicy), &doc) != nil || len(doc.Statement) == 0 {
			return &smtypes.MalformedPolicyDocumentException{Message: msg("The policy document you provided isn't valid.")}
		}
		x.Policy = *in.ResourcePolicy
		c.s.touch(c.account, kindSecret, x.Name)
		out = &sm.PutResourcePolicyOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name)}
		return nil
	})
	return out, fail("Secrets Manager", "PutResourcePolicy", err)
}

// GetResourcePolicy returns the resource policy; ResourcePolicy is nil when
// there is none, as on AWS.
func (c *SecretsManager) GetResourcePolicy(ctx context.Context, in *sm.GetResourcePolicyInput, _ ...func(*sm.Options)) (*sm.GetResourcePolicyOutput, error) {
	in = orEmpty(in)
	var out *sm.GetResourcePolicyOutput
	err := c.s.read(ctx, func() error {
		if err := required("GetResourcePolicyInput", param{"SecretId", in.SecretId != nil}); err != nil {
			return err
		}
		x, err := c.s.peek(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		out = &sm.GetResourcePolicyOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name), ResourcePolicy: optString(x.Policy)}
		return nil
	})
	return out, fail("Secrets Manager", "GetResourcePolicy", err)
}

// DeleteResourcePolicy removes the resource policy.
func (c *SecretsManager) DeleteResourcePolicy(ctx context.Context, in *sm.DeleteResourcePolicyInput, _ ...func(*sm.Options)) (*sm.DeleteResourcePolicyOutput, error) {
	in = orEmpty(in)
	var out *sm.DeleteResourcePolicyOutput
	err := c.s.write(ctx, func() error {
		if err := required("DeleteResourcePolicyInput", param{"SecretId", in.SecretId != nil}); err != nil {
			return err
		}
		x, err := c.s.acct(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		x.Policy = ""
		c.s.touch(c.account, kindSecret, x.Name)
		out = &sm.DeleteResourcePolicyOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name)}
		return nil
	})
	return out, fail("Secrets Manager", "DeleteResourcePolicy", err)
}

// DeleteSecret schedules deletion after a recovery window (default 30
// days), or deletes at once with ForceDeleteWithoutRecovery. A scheduled
// secret refuses reads and writes until RestoreSecret.
func (c *SecretsManager) DeleteSecret(ctx context.Context, in *sm.DeleteSecretInput, _ ...func(*sm.Options)) (*sm.DeleteSecretOutput, error) {
	in = orEmpty(in)
	var out *sm.DeleteSecretOutput
	err := c.s.write(ctx, func() error {
		if err := required("DeleteSecretInput", param{"SecretId", in.SecretId != nil}); err != nil {
			return err
		}
		force := aws.ToBool(in.ForceDeleteWithoutRecovery)
		days := aws.ToInt64(in.RecoveryWindowInDays)
		if force && in.RecoveryWindowInDays != nil {
			return &smtypes.InvalidParameterException{Message: msg("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")}
		}
		if in.RecoveryWindowInDays == nil {
			days = defaultRecoveryDay
		}
		if !force && (days < 7 || days > 30) {
			return &smtypes.InvalidParameterException{Message: msg("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")}
		}
		a := c.s.acct(c.account)
		x, err := a.findSecret(in.SecretId)
		if err != nil {
			return err
		}
		now := c.s.clock()
		if force {
			delete(a.secrets, x.Name)
			out = &sm.DeleteSecretOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name), DeletionDate: aws.Time(now)}
		} else {
			if x.Deleted != nil {
				return markedForDeletion()
			}
			when := now.Add(time.Duration(days) * 24 * time.Hour)
			x.Deleted = &when
			out = &sm.DeleteSecretOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name), DeletionDate: aws.Time(when)}
		}
		c.s.touch(c.account, kindSecret, x.Name)
		return nil
	})
	return out, fail("Secrets Manager", "DeleteSecret", err)
}

// RestoreSecret cancels a scheduled deletion.
func (c *SecretsManager) RestoreSecret(ctx context.Context, in *sm.RestoreSecretInput, _ ...func(*sm.Options)) (*sm.RestoreSecretOutput, error) {
	in = orEmpty(in)
	var out *sm.RestoreSecretOutput
	err := c.s.write(ctx, func() error {
		if err := required("RestoreSecretInput", param{"SecretId", in.SecretId != nil}); err != nil {
			return err
		}
		x, err := c.s.acct(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		x.Deleted = nil
		c.s.touch(c.account, kindSecret, x.Name)
		out = &sm.RestoreSecretOutput{ARN: aws.String(x.ARN), Name: aws.String(x.Name)}
		return nil
	})
	return out, fail("Secrets Manager", "RestoreSecret", err)
}

// TagResource adds or overwrites a secret's tags.
func (c *SecretsManager) TagResource(ctx context.Context, in *sm.TagResourceInput, _ ...func(*sm.Options)) (*sm.TagResourceOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("TagResourceInput", param{"SecretId", in.SecretId != nil}, param{"Tags", in.Tags != nil}); err != nil {
			return err
		}
		x, err := c.s.acct(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		for _, t := range smTags(in.Tags) {
			found := false
			for i := range x.Tags {
				if x.Tags[i].Key == t.Key {
					x.Tags[i].Value, found = t.Value, true
				}
			}
			if !found {
				x.Tags = append(x.Tags, t)
			}
		}
		c.s.touch(c.account, kindSecret, x.Name)
		return nil
	})
	if err != nil {
		return nil, fail("Secrets Manager", "TagResource", err)
	}
	return &sm.TagResourceOutput{}, nil
}

// UntagResource removes a secret's tags by key.
func (c *SecretsManager) UntagResource(ctx context.Context, in *sm.UntagResourceInput, _ ...func(*sm.Options)) (*sm.UntagResourceOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("UntagResourceInput", param{"SecretId", in.SecretId != nil}, param{"TagKeys", in.TagKeys != nil}); err != nil {
			return err
		}
		x, err := c.s.acct(c.account).findSecret(in.SecretId)
		if err != nil {
			return err
		}
		kept := x.Tags[:0:0]
		for _, t := range x.Tags {
			drop := false
			for _, k := range in.TagKeys {
				drop = drop || k == t.Key
			}
			if !drop {
				kept = append(kept, t)
			}
		}
		x.Tags = kept
		c.s.touch(c.account, kindSecret, x.Name)
		return nil
	})
	if err != nil {
		return nil, fail("Secrets Manager", "UntagResource", err)
	}
	return &sm.UntagResourceOutput{}, nil
}

// ListSecrets lists the account's secrets by name (filters are not
// modelled).
func (c *SecretsManager) ListSecrets(ctx context.Context, in *sm.ListSecretsInput, _ ...func(*sm.Options)) (*sm.ListSecretsOutput, error) {
	in = orEmpty(in)
	var out *sm.ListSecretsOutput
	err := c.s.read(ctx, func() error {
		a := c.s.peek(c.account)
		names := make([]string, 0, len(a.secrets))
		for n, x := range a.secrets {
			if x.Deleted == nil || aws.ToBool(in.IncludePlannedDeletion) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		max := aws.ToInt32(in.MaxResults)
		if in.MaxResults == nil {
			max = 100
		}
		from, to, next, err := page(names, in.NextToken, aws.Int32(max), 100)
		if err != nil {
			return &smtypes.InvalidNextTokenException{Message: msg("The NextToken value is invalid.")}
		}
		out = &sm.ListSecretsOutput{NextToken: next, SecretList: []smtypes.SecretListEntry{}}
		for _, n := range names[from:to] {
			x := a.secrets[n]
			stages := map[string][]string{}
			for _, v := range x.Versions {
				if len(v.Stages) > 0 {
					stages[v.ID] = append([]string{}, v.Stages...)
				}
			}
			out.SecretList = append(out.SecretList, smtypes.SecretListEntry{ARN: aws.String(x.ARN), Name: aws.String(x.Name),
				Description: optString(x.Description), KmsKeyId: optString(x.KmsKeyID), Tags: apiSMTags(x.Tags),
				SecretVersionsToStages: stages, CreatedDate: aws.Time(x.Created), LastChangedDate: aws.Time(x.Changed), DeletedDate: x.Deleted})
		}
		return nil
	})
	return out, fail("Secrets Manager", "ListSecrets", err)
}
