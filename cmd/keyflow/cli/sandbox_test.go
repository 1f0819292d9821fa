package cli

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSandboxSeedPersistsAndRefusesASecondSeedWithoutReset(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keyflow.db")
	seed := func(extra ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		args := append([]string{"sandbox", "seed", "--db", db, "--accounts", "2", "--users", "50"}, extra...)
		code := Run(args, nil, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	code, out, errOut := seed()
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "2 member accounts")
	assert.Regexp(t, `users\s+100\n`, out)

	code, _, errOut = seed()
	assert.Equal(t, ExitFailed, code, "the store already holds an Organization")
	assert.Contains(t, errOut, "already has users")

	code, out, errOut = seed("--reset")
	require.Equal(t, ExitOK, code, errOut)
	assert.Regexp(t, `users\s+100\n`, out)
}

func TestUsageErrorsExit2AndFailuresExit1(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, ExitInvalid, Run([]string{"sandbox", "seed", "--bogus"}, nil, &stdout, &stderr))
	assert.Equal(t, ExitInvalid, Run([]string{"no-such-command"}, nil, &stdout, &stderr))
	assert.Equal(t, ExitInvalid, Run([]string{"sandbox", "seed", "--users", "0"}, nil, &stdout, &stderr))
}
