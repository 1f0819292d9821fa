package cli_test

import (
	"fmt"
	"os"

	"github.com/keyflow/keyflow/cmd/keyflow/cli"
)

// Run is the whole CLI: arguments and streams in, exit code out.
func ExampleRun() {
	code := cli.Run([]string{"run", "--definition", "testdata/pass.asl.json", "--input", `{"n": 41}`},
		nil, os.Stdout, os.Stderr)
	if code != cli.ExitOK {
		os.Exit(code)
	}
	// Output:
	// {"status":"SUCCEEDED","output":{"n":42}}
}

// A failed execution still prints its result, and exits 1.
func ExampleRun_failed() {
	code := cli.Run([]string{"run", "--definition", "../../../examples/key-lifecycle/definition.asl.json",
		"--input", "../../../examples/key-lifecycle/input.json",
		"--mock-config", "../../../examples/key-lifecycle/mocks.json", "--test-case", "ThrottledThenFailing"},
		nil, os.Stdout, os.Stderr)
	fmt.Printf("exit %d\n", code)
	// Output:
	// {"status":"FAILED","error":"Throttled","cause":"Rate exceeded"}
	// exit 1
}
