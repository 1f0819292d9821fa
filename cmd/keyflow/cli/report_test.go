package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/report"
	"github.com/keyflow/keyflow/sandbox"
)

// TestReportEstate reads a seeded Organization, whole and one account at a
// time: the figures are the seed's own counts.
func TestReportEstate(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	sb, err := sandbox.New(sandbox.Options{Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	rep, err := sandbox.Seed(sb, sandbox.SeedOptions{Accounts: 3, UsersPerAccount: 20, Seed: 11, Now: t0})
	require.NoError(t, err)
	accounts := local.SandboxAccounts{Sandbox: sb}
	ctx := context.Background()

	whole, err := gatherEstate(ctx, accounts, "", report.DefaultPolicy, t0)
	require.NoError(t, err)
	perAccount := 0
	for _, id := range rep.MemberAccounts {
		e, err := gatherEstate(ctx, accounts, id, report.DefaultPolicy, t0)
		require.NoError(t, err)
		perAccount += e.Keys
	}
	cases := []struct {
		what      string
		got, want int
	}{
		{"accounts (members and the management account)", len(whole.Accounts), len(rep.MemberAccounts) + 1},
		{"users", whole.Users, rep.Users},
		{"keys", whole.Keys, rep.Keys},
		{"keys, account by account", perAccount, rep.Keys},
		{"users with two keys", len(whole.TwoKeys), rep.UsersWithTwoKeys},
		{"console users without MFA", len(whole.NoMFA), rep.ConsoleUsers - rep.MFAUsers},
		{"keys under 45 days", whole.Buckets[0].Count, rep.KeysUnder45},
		{"inactive keys", len(whole.Inactive), rep.Keys - rep.ActiveKeys},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, c.got, c.what)
	}

	var out bytes.Buffer
	writeEstate(&out, whole)
	assert.Contains(t, out.String(), "keys due: ")
	assert.Contains(t, out.String(), "KEY AGE (DAYS)")
	assert.False(t, audit.LooksLikeSecret(out.String()))
}

// TestReportCommand: seed a store, report it as a table and a page.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "k.db")
	page := filepath.Join(dir, "r.html")
	var o, e bytes.Buffer
	require.Equal(t, ExitOK, Run([]string{"sandbox", "seed", "--db", db, "--accounts", "2", "--users", "15"}, nil, &o, &e), e.String())
	o.Reset()
	require.Equal(t, ExitOK, Run([]string{"report", "--db", db, "--html", page}, nil, &o, &e), e.String())
	assert.Contains(t, o.String(), "3 account(s), 30 user(s)")
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(b), `<svg class="chart" id="key-ages"`), "no key-age chart")
	assert.False(t, audit.LooksLikeSecret(string(b)))
}

// TestReportAWSNeedsTheMFAPolicy: on AWS the central stack's MFA policy has
// a name CloudFormation chose, so --aws without it is refused before any
// AWS call.
func TestReportAWSNeedsTheMFAPolicy(t *testing.T) {
	var o, e bytes.Buffer
	require.Equal(t, ExitInvalid, Run([]string{"report", "--aws"}, nil, &o, &e))
	assert.Contains(t, e.String(), "--mfa-policy-arn")
	assert.Contains(t, e.String(), "MFARequiredPolicyArn")
}
