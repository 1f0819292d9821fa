package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/sandbox"
)

func newSandboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "The embedded AWS account that local runs use",
	}
	cmd.AddCommand(newSandboxSeedCmd())
	return cmd
}

func newSandboxSeedCmd() *cobra.Command {
	var (
		db       string
		accounts int
		users    int
		seed     int64
		reset    bool
	)
	cmd := &cobra.Command{
		Use:   "seed [--accounts N] [--users N]",
		Short: "Build a realistic sandbox Organization: accounts, users, keys of many ages, admins, exemptions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if accounts < 1 || users < 1 {
				return invalid("sandbox seed: --accounts and --users must be at least 1")
			}
			if reset {
				if err := removeDB(db); err != nil {
					return fmt.Errorf("sandbox seed: %w", err)
				}
			}
			conn, err := openDB(db)
			if err != nil {
				return fmt.Errorf("sandbox seed: %w", err)
			}
			defer conn.Close()
			sb, err := sandbox.New(sandbox.Options{DB: conn})
			if err != nil {
				return fmt.Errorf("sandbox seed: %w", err)
			}
			start := time.Now()
			rep, err := sandbox.Seed(sb, sandbox.SeedOptions{Accounts: accounts, UsersPerAccount: users, Seed: seed})
			if err != nil {
				return fmt.Errorf("sandbox seed: %w", err)
			}
			printSeedReport(cmd.OutOrStdout(), db, rep, time.Since(start))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&db, "db", defaultDB, "the local store `FILE`")
	fl.IntVar(&accounts, "accounts", 3, "member accounts with users")
	fl.IntVar(&users, "users", 100, "IAM users per member account")
	fl.Int64Var(&seed, "seed", 1, "the same seed builds the same Organization")
	fl.BoolVar(&reset, "reset", false, "delete the local store first (executions and sandbox alike)")
	return cmd
}

func printSeedReport(w io.Writer, db string, r sandbox.SeedReport, took time.Duration) {
	fmt.Fprintf(w, "seeded %s in %s: management account %s, %d member accounts, %d OUs\n",
		db, took.Round(time.Millisecond), r.ManagementAccount, len(r.MemberAccounts), r.OrganizationalUnits)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := []struct {
		label string
		n     int
	}{
		{"users", r.Users}, {"access keys", r.Keys}, {"  active", r.ActiveKeys},
		{"  younger than 45 days", r.KeysUnder45}, {"  45 to 59 days (due)", r.Keys45To60},
		{"  60 to 89 days", r.Keys60To90}, {"  90 days and older", r.Keys90Plus},
		{"  used within 7 days", r.KeysUsedRecently},
		{"users with two keys", r.UsersWithTwoKeys}, {"users without keys", r.UsersWithoutKeys},
		{"admins", r.Admins}, {"exempt (lapsed)", r.Exempt},
		{"console users (with MFA)", r.ConsoleUsers},
	}
	for _, row := range rows {
		switch row.label {
		case "exempt (lapsed)":
			fmt.Fprintf(tw, "  %s\t%d (%d)\n", row.label, r.Exempt, r.ExemptLapsed)
		case "console users (with MFA)":
			fmt.Fprintf(tw, "  %s\t%d (%d)\n", row.label, r.ConsoleUsers, r.MFAUsers)
		default:
			fmt.Fprintf(tw, "  %s\t%d\n", row.label, row.n)
		}
	}
	tw.Flush()
}
