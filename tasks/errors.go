package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/smithy-go"
)

// The error types below are the failures workflows can catch. aws-lambda-go
// reports an error's Go type name (through reflect, pointer or not) as the
// Lambda error type, and Step Functions matches Retry and Catch on that name;
// so the type names are part of the workflow contract and must not be
// renamed. Handlers return these values unwrapped: a fmt.Errorf wrapper would
// be reported as "wrapError".
//
// No message ever carries a secret: errors end up in execution histories.

// InvalidInput is a request a handler refuses before touching anything.
type InvalidInput struct {
	Field  string
	Reason string
}

func (e *InvalidInput) Error() string {
	return fmt.Sprintf("tasks: invalid input: %s: %s", e.Field, e.Reason)
}

// UserNotFound is an IAM user that does not exist in the account.
type UserNotFound struct {
	AccountID string
	UserName  string
}

func (e *UserNotFound) Error() string {
	return fmt.Sprintf("tasks: user %q not found in account %s", e.UserName, e.AccountID)
}

// KeyNotFound is an access key that is not (or no longer) the user's.
type KeyNotFound struct {
	AccountID   string
	UserName    string
	AccessKeyID string
}

func (e *KeyNotFound) Error() string {
	return fmt.Sprintf("tasks: access key %s of user %q not found in account %s", e.AccessKeyID, e.UserName, e.AccountID)
}

// KeyLimitExceeded is a user who already has two access keys (IAM's limit),
// neither of which the rotation may remove. A person has to decide which key
// goes; the workflow must not guess.
type KeyLimitExceeded struct {
	AccountID    string
	UserName     string
	AccessKeyIDs []string
}

func (e *KeyLimitExceeded) Error() string {
	return fmt.Sprintf("tasks: user %q in account %s already has two access keys (%s)",
		e.UserName, e.AccountID, strings.Join(e.AccessKeyIDs, ", "))
}

// KeyStillInUse is returned by DeactivateKey only when the caller asked for
// an error instead of a result (FailIfInUse): the workflow default is a
// KeyStillInUse result, so it can notify and wait again without a Catch.
type KeyStillInUse struct {
	AccessKeyID  string
	LastUsedDate time.Time
	Service      string
}

func (e *KeyStillInUse) Error() string {
	return fmt.Sprintf("tasks: access key %s was used at %s (%s) after its replacement was created",
		e.AccessKeyID, e.LastUsedDate.UTC().Format(time.RFC3339), e.Service)
}

// KeyNotInactive refuses to delete a key that is still Active: a key is
// deleted only after it was deactivated and the buffer passed.
type KeyNotInactive struct {
	AccessKeyID string
	Status      string
}

func (e *KeyNotInactive) Error() string {
	return fmt.Sprintf("tasks: access key %s is %s, not Inactive; refusing to delete it", e.AccessKeyID, e.Status)
}

// BufferNotPassed refuses to delete a key before its buffer point.
type BufferNotPassed struct {
	AccessKeyID string
	NotBefore   time.Time
	Now         time.Time
}

func (e *BufferNotPassed) Error() string {
	return fmt.Sprintf("tasks: access key %s may not be deleted before %s (now %s)", e.AccessKeyID,
		e.NotBefore.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}

// SecretStoreFailed is a new key whose secret could not be written to Secrets
// Manager. A secret access key is shown only once, so the handler deleted the
// key it had just created (KeyRemoved) before returning this error; when the
// delete failed too, KeyRemoved is false and a person must delete the key.
type SecretStoreFailed struct {
	SecretName  string
	AccessKeyID string
	KeyRemoved  bool
	Err         error
}

func (e *SecretStoreFailed) Error() string {
	removed := "the new key was deleted"
	if !e.KeyRemoved {
		removed = "the new key could NOT be deleted and must be removed by hand"
	}
	return fmt.Sprintf("tasks: storing access key %s in secret %q failed (%s): %v", e.AccessKeyID, e.SecretName, removed, e.Err)
}

func (e *SecretStoreFailed) Unwrap() error { return e.Err }

// NotQuarantinable refuses to quarantine a member of the admins group:
// locking out the people who would undo a mistake is worse than the threat.
type NotQuarantinable struct {
	UserName string
	Reason   string
}

func (e *NotQuarantinable) Error() string {
	return fmt.Sprintf("tasks: user %q cannot be quarantined: %s", e.UserName, e.Reason)
}

// NotQuarantined is a release of a user that carries no keyflow quarantine.
type NotQuarantined struct {
	UserName string
}

func (e *NotQuarantined) Error() string {
	return fmt.Sprintf("tasks: user %q is not quarantined by keyflow", e.UserName)
}

// SecretDetected refuses to publish a notification that looks as if it
// carries a secret access key. It is a last line of defence: callers build
// messages from key ids and ARNs only.
type SecretDetected struct {
	Field string
}

func (e *SecretDetected) Error() string {
	return fmt.Sprintf("tasks: %s looks like it contains a secret access key; not sent", e.Field)
}

// AccountUnavailable is an account whose clients could not be built (the
// member role could not be assumed).
type AccountUnavailable struct {
	AccountID string
	Err       error
}

func (e *AccountUnavailable) Error() string {
	return fmt.Sprintf("tasks: account %s unavailable: %v", e.AccountID, e.Err)
}

func (e *AccountUnavailable) Unwrap() error { return e.Err }

// Throttled is an AWS call that was still throttled after the SDK's own
// retries. It is never swallowed: the workflow's Retry on "Throttled" backs
// off and calls the (idempotent) handler again.
type Throttled struct {
	Op  string
	Err error
}

func (e *Throttled) Error() string {
	return fmt.Sprintf("tasks: %s throttled: %v", e.Op, e.Err)
}

func (e *Throttled) Unwrap() error { return e.Err }

// ServiceError is any other failed AWS call, with the service's error code
// (AccessDenied, ...) kept for the audit.
type ServiceError struct {
	Op   string
	Code string
	Err  error
}

func (e *ServiceError) Error() string {
	return fmt.Sprintf("tasks: %s failed: %v", e.Op, e.Err)
}

func (e *ServiceError) Unwrap() error { return e.Err }

// throttleCodes are the AWS error codes that mean "slow down". IAM's
// LimitExceededException is deliberately absent although the SDK's retryer
// counts it as a throttle: for CreateAccessKey it means "two keys already".
var throttleCodes = map[string]bool{
	"Throttling":                true,
	"ThrottlingException":       true,
	"ThrottledException":        true,
	"RequestThrottled":          true,
	"RequestThrottledException": true,
	"TooManyRequestsException":  true,
	"RequestLimitExceeded":      true,
	"SlowDown":                  true,
}

// apiCode is the AWS error code of err, or "" when err is not an API error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// awsErr turns an SDK failure of operation op into a named error. A
// cancelled context passes through so the runtime sees the real cause.
func awsErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var named interface{ taskError() }
	if errors.As(err, &named) {
		return err
	}
	code := apiCode(err)
	if throttleCodes[code] {
		return &Throttled{Op: op, Err: err}
	}
	return &ServiceError{Op: op, Code: code, Err: err}
}

// taskError marks the named types so awsErr does not wrap them twice.
func (*Throttled) taskError()          {}
func (*ServiceError) taskError()       {}
func (*AccountUnavailable) taskError() {}

// isNoSuchEntity reports IAM's NoSuchEntity, typed or as a bare code (the
// sandbox returns the SDK's typed error, proxies may not).
func isNoSuchEntity(err error) bool {
	return apiCode(err) == "NoSuchEntity"
}

// isSecretNotFound reports Secrets Manager's ResourceNotFoundException.
func isSecretNotFound(err error) bool {
	return apiCode(err) == "ResourceNotFoundException"
}
