// Package cli is the keyflow command line, kept out of main so that every
// command runs in-process in tests: Run takes the arguments and the three
// streams and returns the exit code.
//
// This is where keyflow's pieces meet (engine, states, tasks, sandbox);
// nothing imports it but cmd/keyflow.
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/statemachines"
)

// Exit codes, as the `keyflow run` contract fixes them.
const (
	ExitOK      = 0 // the command, or the execution, succeeded
	ExitFailed  = 1 // the execution failed, timed out or was aborted
	ExitInvalid = 2 // the definition, the input or the command line is invalid
)

// exitError carries an exit code up through cobra; its message, if any, has
// already been written or is written by Run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func invalid(format string, args ...any) error {
	return &exitError{code: ExitInvalid, err: fmt.Errorf(format, args...)}
}

// Run executes one keyflow command line.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	// cobra checks flags and arguments before the persistent pre-run hook, so
	// an error returned before it ran is a usage error, and after it a failure.
	started := false
	root.PersistentPreRun = func(*cobra.Command, []string) { started = true }
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "keyflow:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "keyflow:", err)
	if !started {
		return ExitInvalid // unknown command or flag, missing argument
	}
	return ExitFailed
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "keyflow",
		Short:         "Keep AWS IAM credentials healthy with Step Functions workflows",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(), newValidateCmd(), newDemoCmd(), newSandboxCmd(), newSynthCmd(), newStartCmd(), newGraphCmd())
	root.AddCommand(newAuditCmd(), newReportCmd())
	root.AddCommand(newExecutionsCmd(), newDescribeCmd(), newHistoryCmd(), newApproveCmd(statemachines.Approve), newApproveCmd(statemachines.Reject), newStopCmd())
	root.AddCommand(newServeCmd())
	return root
}
