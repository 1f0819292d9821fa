// Package tasks holds keyflow's Lambda task handlers: the steps that touch
// real credentials (inventory, create key, deactivate key, delete key,
// notify, quarantine, release, audit-record). Each handler is an aws-lambda-go handler,
// func (h *X) Handle(ctx, XInput) (*XOutput, error), with flat camelCase JSON
// input and output, because that JSON is what the state machines pass from
// state to state and what the audit reads back from the history.
//
// Handlers depend only on the small interfaces declared here (IAMAPI,
// SecretsManagerAPI, SNSAPI, OrganizationsAPI, reached through Accounts;
// SESAPI for Notify's email, SFNAPI and S3API for the audit record store),
// whose methods have the exact aws-sdk-go-v2 signatures, so the real SDK
// clients and the embedded sandbox account both satisfy them.
//
// Rules the package keeps, and that its tests check:
//
//   - No secret access key ever leaves a handler except into Secrets
//     Manager: not in an output, an error, a log line or a notification.
//   - Every handler is idempotent: Step Functions retries, and a second call
//     with the same input finishes the job or reports that it is done.
//   - Every failure leaves keys in a state that a later run or a person can
//     finish (a key whose secret could not be stored is deleted at once).
//   - Failures are named Go error types (KeyLimitExceeded, UserNotFound, ...):
//     aws-lambda-go reports the type name as the error name that Retry and
//     Catch match. SDK throttling surfaces as Throttled so workflows retry it.
//   - Time comes from the handler's Now, so the engine's virtual clock drives
//     key ages and buffers.
//
// This package must never import the sandbox, the engine, the states
// language or anything under cmd: it sees AWS only through the SDK types, so
// that it runs unchanged on Lambda against real accounts.
package tasks
