// Package report renders what keyflow knows as one self-contained HTML
// page: the breaches of the audited executions at the top, each workflow's
// state graph as SVG, each execution's timeline with its waits drawn to a
// common time scale (45 days are three times 15 days, on every line), the
// approvals (who, when, why), and, for `keyflow report`, the state of the
// accounts now with a chart of key ages.
//
// The page has no script and fetches nothing: CSS and SVG are inline, so
// it can be mailed to an auditor or opened from a laptop offline. Every
// value goes through html/template's escaping, and Write refuses a page
// on which anything looks like a secret access key.
//
// report imports audit (records), states (definitions, to draw them) and
// the AWS SDK's IAM types (Gather reads accounts through IAM, an interface
// of its own). It must never import engine, tasks, sandbox or cmd: the
// pieces are handed to it, so the same page is made from the sandbox, a
// `keyflow serve` or AWS.
package report
