package cli

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/cfn"
)

func newSynthCmd() *cobra.Command {
	var (
		member bool
		output string
		code   string
	)
	cmd := &cobra.Command{
		Use:   "synth [--member] [-o FILE] [--code ZIP]",
		Short: "Write keyflow's CloudFormation template (JSON): the central stack, or with --member the member-account role",
		Long: `synth writes the CloudFormation template that deploys keyflow on AWS.

The central template holds the state machines, one Lambda function per
handler (the zip that 'make lambda' builds, at --code relative to the
template file, which 'aws cloudformation package' uploads), their roles,
the schedule, the CloudTrail rule, the topic, the log groups and the KMS
key. When the zip exists, its SHA-256 goes into every Lambda version, so a
new build publishes new versions on the next deploy.

With --member it writes the template of the role that the central stack
assumes in every other account of an Organization.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				doc []byte
				err error
			)
			if member {
				doc, err = cfn.Member()
			} else {
				o := cfn.Options{CodeURI: code}
				base := "."
				if output != "" && output != "-" {
					base = filepath.Dir(output)
				}
				zip := filepath.Join(base, filepath.FromSlash(code))
				sum, serr := fileSHA256(zip)
				switch {
				case serr == nil:
					o.CodeSHA256 = sum
				case errors.Is(serr, fs.ErrNotExist):
					fmt.Fprintf(cmd.ErrOrStderr(), "keyflow: synth: no %s yet (make lambda builds it); until the template names its hash, a code-only update publishes no new Lambda version\n", zip)
				default:
					return serr
				}
				doc, err = cfn.Central(o)
			}
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				_, err = cmd.OutOrStdout().Write(doc)
				return err
			}
			return os.WriteFile(output, doc, 0o644)
		},
	}
	cmd.Flags().BoolVar(&member, "member", false, "write the member-account template instead of the central one")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the template to `FILE` (default: standard output)")
	cmd.Flags().StringVar(&code, "code", cfn.DefaultCodeURI, "the Lambda `ZIP`, relative to the template file (as 'aws cloudformation package' resolves it)")
	return cmd
}

// fileSHA256 is the file's SHA-256 in base64, the form of Lambda's
// CodeSha256.
func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}
