// Package policy writes keyflow's IAM policies as Go values and evaluates
// identity-based policies against example requests, so that a change to a
// generated policy that would lock people out fails a unit test instead of
// an account.
//
// Document is an IAM policy document with IAM's JSON shape (a single value
// or a list wherever IAM accepts both). Parse reads one strictly: unknown
// fields, Principal, unsupported condition operators and malformed values
// are refused with an error naming the JSON pointer, because an evaluator
// that skipped what it did not understand would answer "allow" for a policy
// AWS reads as "deny".
//
// Evaluate follows IAM's logic for identity-based policies in one account:
// an explicit Deny in any statement wins, otherwise any Allow allows,
// otherwise the request is implicitly denied. It implements the condition
// operators keyflow's policies use (String*, Arn*, Bool, IpAddress,
// NotIpAddress, Null, each with ...IfExists) and the ${aws:username} style
// policy variables in resources and string conditions. It is a model for
// tests, not an authorisation service: SCPs, permission boundaries,
// resource policies and sessions are out of its scope.
//
// policy imports only the standard library and must never import anything
// of keyflow's: cfn and cmd build on it, and the documents it generates are
// the ones that reach AWS.
package policy
