package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/states"
)

func newValidateCmd() *cobra.Command {
	var definition string
	cmd := &cobra.Command{
		Use:   "validate [--definition] FILE...",
		Short: "Check ASL definitions as AWS does, listing every problem with its JSON pointer",
		RunE: func(cmd *cobra.Command, args []string) error {
			files := args
			if definition != "" {
				files = append([]string{definition}, files...)
			}
			if len(files) == 0 {
				return invalid("validate: name a definition file")
			}
			bad := 0
			for _, f := range files {
				if _, err := loadDefinition(f, cmd.ErrOrStderr()); err != nil {
					bad++
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", f)
			}
			if bad > 0 {
				return &exitError{code: ExitInvalid}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&definition, "definition", "", "the ASL definition `FILE`")
	return cmd
}

// loadDefinition reads and validates a definition; on failure it has
// already written every problem, one per line, to w.
func loadDefinition(file string, w io.Writer) (*states.Definition, error) {
	doc, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(w, "keyflow: %v\n", err)
		return nil, err
	}
	def, err := states.Parse(doc)
	if err == nil {
		return def, nil
	}
	var verr *states.ValidationError
	if errors.As(err, &verr) {
		fmt.Fprintf(w, "keyflow: %s: invalid definition (%d problems)\n", file, len(verr.Problems))
		for _, p := range verr.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		return nil, err
	}
	fmt.Fprintf(w, "keyflow: %s: %v\n", file, err)
	return nil, err
}
