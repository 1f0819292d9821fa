// Package cfn writes keyflow's CloudFormation templates with goformation:
// Central, the stack of the account that runs the workflows (state
// machines, one Lambda function and one role per handler, the schedule, the
// CloudTrail rule, the topic, the log groups, the secrets' KMS key, an
// optional trail), and Member, the role that stack assumes in every other
// account of an Organization.
//
// Least privilege is the point of the package, so the roles are not written
// by hand: a function's role grants the actions in HandlerActions (which a
// test derives again from package tasks' source, so a new SDK call in a
// handler fails the build until its role grants it), and a state machine's
// role grants what its definition's Tasks call, read from the definition
// itself; an integration this package does not know is an error, not a
// broad grant. No statement anywhere has a "*" action.
//
// cfn imports statemachines, states and policy (and goformation); never tasks (its
// tests do, to derive the actions), the engine, the sandbox or anything
// under cmd, so that synthesizing a template pulls in no AWS SDK client.
package cfn
