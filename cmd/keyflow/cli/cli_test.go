package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cliCase is one command line and what it must print; the cases live in
// testdata/cases.json so that a new behaviour is a new entry, not new code.
type cliCase struct {
	Name       string            `json:"name"`
	Args       []string          `json:"args"`
	Stdin      string            `json:"stdin"`
	Exit       int               `json:"exit"`
	Stdout     []json.RawMessage `json:"stdout"`      // one JSON value per line, compared as JSON
	StdoutText []string          `json:"stdout_text"` // substrings of stdout
	Stderr     []string          `json:"stderr"`      // substrings of stderr
}

func TestCLI(t *testing.T) {
	doc, err := os.ReadFile("testdata/cases.json")
	require.NoError(t, err)
	var cases []cliCase
	require.NoError(t, json.Unmarshal(doc, &cases))
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(c.Args, strings.NewReader(c.Stdin), &stdout, &stderr)
			assert.Equal(t, c.Exit, code, "exit code; stderr: %s", stderr.String())
			if c.Stdout != nil {
				lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
				require.Len(t, lines, len(c.Stdout), "stdout: %s", stdout.String())
				for i, want := range c.Stdout {
					assert.JSONEq(t, string(want), lines[i])
				}
			}
			for _, s := range c.StdoutText {
				assert.Contains(t, stdout.String(), s)
			}
			for _, s := range c.Stderr {
				assert.Contains(t, stderr.String(), s)
			}
			if c.Exit != 0 && c.Stdout == nil && c.StdoutText == nil {
				assert.Empty(t, stdout.String(), "a refused command prints nothing on stdout")
			}
		})
	}
}

func TestRunWritesTheHistoryAsGetExecutionHistory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "history.json")
	var stdout, stderr bytes.Buffer
	code := Run([]string{"run", "--definition", "../../../examples/key-lifecycle/definition.asl.json",
		"--input", "../../../examples/key-lifecycle/input.json",
		"--mock-config", "../../../examples/key-lifecycle/mocks.json", "--test-case", "HappyPath",
		"--history", file}, nil, &stdout, &stderr)
	require.Equal(t, ExitOK, code, stderr.String())

	doc, err := os.ReadFile(file)
	require.NoError(t, err)
	var h struct {
		Events []struct {
			ID              int64  `json:"id"`
			PreviousEventID int64  `json:"previousEventId"`
			Type            string `json:"type"`
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal(doc, &h))
	require.NotEmpty(t, h.Events)
	assert.Equal(t, "ExecutionStarted", h.Events[0].Type)
	assert.Equal(t, "ExecutionSucceeded", h.Events[len(h.Events)-1].Type)
	for i, e := range h.Events {
		assert.Equal(t, int64(i+1), e.ID, "ids are contiguous")
		assert.Less(t, e.PreviousEventID, e.ID)
	}
}
