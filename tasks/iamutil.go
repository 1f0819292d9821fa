package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// validate checks the two fields every per-user handler needs.
func validateUser(accountID, userName string) error {
	if !validAccountID(accountID) {
		return &InvalidInput{Field: "accountId", Reason: fmt.Sprintf("%q is not a 12-digit account id", truncate(accountID))}
	}
	if userName == "" || len(userName) > 64 {
		return &InvalidInput{Field: "userName", Reason: "must be 1 to 64 characters"}
	}
	return nil
}

var accessKeyIDPattern = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)

func validateKeyID(field, id string) error {
	if !accessKeyIDPattern.MatchString(id) {
		return &InvalidInput{Field: field, Reason: fmt.Sprintf("%q is not an access key id", truncate(id))}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

// listKeys is every access key of the user (IAM allows two, but paginate
// anyway: it costs nothing and survives a raised quota).
func listKeys(ctx context.Context, c IAMAPI, accountID, userName string) ([]iamtypes.AccessKeyMetadata, error) {
	var keys []iamtypes.AccessKeyMetadata
	p := iam.NewListAccessKeysPaginator(c, &iam.ListAccessKeysInput{UserName: aws.String(userName)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			if isNoSuchEntity(err) {
				return nil, &UserNotFound{AccountID: accountID, UserName: userName}
			}
			return nil, awsErr("ListAccessKeys", err)
		}
		keys = append(keys, out.AccessKeyMetadata...)
	}
	return keys, nil
}

func findKey(keys []iamtypes.AccessKeyMetadata, id string) (iamtypes.AccessKeyMetadata, bool) {
	for _, k := range keys {
		if aws.ToString(k.AccessKeyId) == id {
			return k, true
		}
	}
	return iamtypes.AccessKeyMetadata{}, false
}

// userTags is every tag of the user as a map.
func userTags(ctx context.Context, c IAMAPI, accountID, userName string) (map[string]string, error) {
	tags := map[string]string{}
	p := iam.NewListUserTagsPaginator(c, &iam.ListUserTagsInput{UserName: aws.String(userName)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			if isNoSuchEntity(err) {
				return nil, &UserNotFound{AccountID: accountID, UserName: userName}
			}
			return nil, awsErr("ListUserTags", err)
		}
		for _, t := range out.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return tags, nil
}

// userGroups is the names of the user's groups.
func userGroups(ctx context.Context, c IAMAPI, accountID, userName string) ([]string, error) {
	var groups []string
	p := iam.NewListGroupsForUserPaginator(c, &iam.ListGroupsForUserInput{UserName: aws.String(userName)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			if isNoSuchEntity(err) {
				return nil, &UserNotFound{AccountID: accountID, UserName: userName}
			}
			return nil, awsErr("ListGroupsForUser", err)
		}
		for _, g := range out.Groups {
			groups = append(groups, aws.ToString(g.GroupName))
		}
	}
	return groups, nil
}

// versionToken is the Secrets Manager ClientRequestToken (and so the version
// id) under which the secret of access key id is stored. Deriving it from the
// key id makes the write idempotent and lets a retry find out, from
// DescribeSecret's version ids alone, which key the secret holds, without
// ever reading the secret value.
func versionToken(accessKeyID string) string {
	sum := sha256.Sum256([]byte("keyflow/access-key/" + accessKeyID))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// DefaultSecretName is the secret that holds a user's current key.
func DefaultSecretName(accountID, userName string) string {
	return "Account_" + accountID + "_User_" + userName + "_AccessKey"
}

// logger returns l or a logger that drops everything.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// days is a whole number of days from t to now (negative in the future).
func days(from, now time.Time) int {
	return int(now.Sub(from) / (24 * time.Hour))
}
