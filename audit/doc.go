// Package audit turns one Step Functions execution history into an audit
// record: the execution, its subject (account, user, key), every action a
// handler took on a key or a user, every approval (who decided, when and
// why), the timeline of waits, and every breach of keyflow's invariants,
// each with the ids of the events that show it. Records export as JSON
// Lines and CSV and are hash-chained, so that a deleted, reordered or edited
// record is detected by Verify.
//
// The input is []types.HistoryEvent of aws-sdk-go-v2's sfn/types, whether it
// came from the local engine or from AWS through GetExecutionHistory: the
// engine records exactly the events AWS records, so one reader serves both.
//
// MFA executions and the hygiene inventory are judged too (mfa.go): the
// MFA-required policy never attached before the grace deadline or without
// a notice, and an exempt user never acted on.
//
// audit imports only the standard library and the AWS SDK's sfn client and
// types (Collect reads through SFN, an interface of its own). It
// must never import engine, tasks, sandbox, states, statemachines or
// anything under cmd: the same code runs in the Lambda audit handler on AWS,
// where none of the local runtime exists, and it must judge histories by
// what they say, not by what our handlers are believed to do. That is also
// why the handlers' JSON field names are repeated here instead of imported.
//
// Nothing in a record may hold a secret: every string copied from a history
// goes through Redact first, and a breach names where a secret-like string
// was found, never the string.
package audit
