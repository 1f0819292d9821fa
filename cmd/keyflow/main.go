// Command keyflow keeps AWS IAM credentials healthy with Step Functions
// workflows, run here on an embedded engine and sandbox account or on AWS.
package main

import (
	"os"

	"github.com/keyflow/keyflow/cmd/keyflow/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
