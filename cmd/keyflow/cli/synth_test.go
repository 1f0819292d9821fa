package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/cfn"
)

func synth(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(append([]string{"synth"}, args...), nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestSynthWritesTheCentralTemplate(t *testing.T) {
	code, out, errOut := synth(t)
	require.Equal(t, ExitOK, code, errOut)
	want, err := cfn.Central(cfn.Options{})
	require.NoError(t, err)
	assert.Equal(t, string(want), out, "stdout is the template as cfn builds it")
	assert.Contains(t, errOut, "make lambda", "without a zip, synth says why the versions carry no hash")
}

func TestSynthMember(t *testing.T) {
	code, out, errOut := synth(t, "--member")
	require.Equal(t, ExitOK, code, errOut)
	var doc struct {
		Resources map[string]struct{ Type string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Equal(t, "AWS::IAM::Role", doc.Resources["MemberRole"].Type)
	assert.Empty(t, errOut)
}

// With the zip next to the output file, its hash goes into every version,
// so a new build publishes new versions.
func TestSynthHashesTheZipNextToTheTemplate(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, cfn.DefaultCodeURI), []byte("zip bytes"), 0o644))
	file := filepath.Join(dir, "keyflow.template.json")
	code, out, errOut := synth(t, "-o", file)
	require.Equal(t, ExitOK, code, errOut)
	assert.Empty(t, out)
	assert.Empty(t, errOut)
	doc, err := os.ReadFile(file)
	require.NoError(t, err)
	var tpl struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	require.NoError(t, json.Unmarshal(doc, &tpl))
	versions := 0
	for name, r := range tpl.Resources {
		if r.Type == "AWS::Lambda::Version" {
			versions++
			// sha256("zip bytes"), base64.
			assert.Equal(t, "W3onVLOJEw4TjVe6g/Hq5/BaQcZr7Kz6LdIGAUOuZts=", r.Properties["CodeSha256"], name)
		}
	}
	assert.Equal(t, len(cfn.Handlers), versions)
}

func TestSynthRejectsArguments(t *testing.T) {
	code, _, _ := synth(t, "extra")
	assert.Equal(t, ExitInvalid, code)
}
