package states

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// invalidCase is one file of testdata/invalid: a definition and the exact
// problems Parse reports for it, in order.
type invalidCase struct {
	Definition json.RawMessage `json:"definition"`
	Problems   []string        `json:"problems"`
}

// parseGuarded runs Parse, turning a "not implemented" panic of a
// subpackage stub into a skip while those packages are being written.
func parseGuarded(t *testing.T, doc []byte) (def *Definition, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if s := fmt.Sprint(r); strings.Contains(s, "not implemented") {
				t.Skip(s)
			}
			panic(r)
		}
	}()
	return Parse(doc)
}

func TestInvalidDefinitions(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			require.NoError(t, err)
			var tc invalidCase
			require.NoError(t, json.Unmarshal(raw, &tc))
			_, err = parseGuarded(t, tc.Definition)
			require.Error(t, err)
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			assert.Equal(t, tc.Problems, problemStrings(verr.Problems))
		})
	}
}

func TestValidateNil(t *testing.T) {
	err := Validate(nil)
	require.Error(t, err)
	assert.Equal(t, "states: invalid definition: states: definition is nil", err.Error())
}

func TestValidationErrorCapped(t *testing.T) {
	states := map[string]any{}
	for i := range 600 {
		states[fmt.Sprintf("S%03d", i)] = map[string]any{"Type": "Pass", "Next": "Nowhere"}
	}
	doc, err := json.Marshal(map[string]any{"StartAt": "S000", "States": states})
	require.NoError(t, err)
	_, err = parseGuarded(t, doc)
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	assert.Len(t, verr.Problems, maxProblems)
	assert.Equal(t, `/States/S000/Next: no state named "Nowhere"`, verr.Problems[0].String())
}
