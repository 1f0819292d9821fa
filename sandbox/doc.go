// Package sandbox is the embedded AWS account that keyflow's task handlers
// run against on a laptop or in CI: the subset of IAM, Secrets Manager, SNS,
// STS, Organizations, S3 (the audit record store's buckets and conditional
// writes) and SES v2 (notify's templated email) that the handlers call, with
// AWS's semantics (key formats, quotas, pagination, version stages,
// If-Match/If-None-Match preconditions) and the aws-sdk-go-v2 typed errors,
// optionally persisted in the engine's SQLite file. Published messages and
// sent email are kept in outboxes (Outbox, Mail), never delivered.
//
// Every client type here (IAM, SecretsManager, SNS, STS, Organizations, S3,
// SESv2) has the method signatures of the matching aws-sdk-go-v2 client (and
// takes a nil input as an empty one, as the SDK does), so the small
// interfaces that package tasks declares are satisfied by the real client and
// by the sandbox alike. That is the whole point of the package, so it must
// never import anything of keyflow's own (not tasks, not engine, not states):
// only the AWS SDK, smithy-go, the standard library and the SQLite driver.
//
// The sandbox never stores an IAM secret access key (it is returned once by
// CreateAccessKey, as on AWS, and then forgotten) and never puts a secret
// access key or a secret value into an error message.
package sandbox
