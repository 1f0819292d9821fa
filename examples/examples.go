// Package examples embeds the example definitions, inputs and mock files so
// that `keyflow demo` runs them from any directory and from a built binary.
package examples

import "embed"

// FS holds every example: <name>/definition.asl.json, input.json and, for
// workflows with tasks, mocks.json (Step Functions Local's format).
//
//go:embed */*.json
var FS embed.FS
