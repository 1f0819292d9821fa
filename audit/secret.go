package audit

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
)

// secretRun is a maximal run of the characters of a secret access key.
// '=' belongs to the run (so that padded base64 is one run, not a secret
// plus a tail) although AWS never puts one in a secret key.
var secretRun = regexp.MustCompile(`[A-Za-z0-9/+=]+`)

// LooksLikeSecret reports whether s contains something shaped like an AWS
// secret access key.
//
// A secret access key is 40 random characters of [A-Za-z0-9/+]. A candidate
// is a run of exactly 40 such characters (longer runs are tokens, base64
// blobs or padded data) that:
//   - has no '=' (AWS never issues one; base64 padding has it);
//   - has upper and lower case letters (hex digests, account ids and key ids
//     are one case);
//   - has a digit, '/' or '+' (40 random characters lack all of them with
//     odds of 1 in 4,000; a long CamelCase name lacks them always);
//   - is not base64 of printable text: 30 random bytes are all printable with
//     odds of 1 in 10^13, while base64 of ids and names always is.
//
// The rules are tested both ways: AWS's documented example key is found, and
// ARNs, execution names, task tokens, hashes and base64 of ids are not.
func LooksLikeSecret(s string) bool {
	return len(secretSpans(s)) > 0
}

func secretSpans(s string) [][]int {
	var spans [][]int
	for _, loc := range secretRun.FindAllStringIndex(s, -1) {
		if loc[1]-loc[0] == 40 && secretShaped(s[loc[0]:loc[1]]) {
			spans = append(spans, loc)
		}
	}
	return spans
}

func secretShaped(c string) bool {
	if strings.Contains(c, "=") {
		return false
	}
	var upper, lower, other bool
	for _, r := range c {
		switch {
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= 'a' && r <= 'z':
			lower = true
		default:
			other = true
		}
	}
	if !upper || !lower || !other {
		return false
	}
	if b, err := base64.StdEncoding.DecodeString(c); err == nil && printable(b) {
		return false
	}
	return true
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// Redacted replaces a secret-like string in a record.
const Redacted = "[REDACTED]"

// Redact returns s with every secret-like run replaced by Redacted. Every
// string Build copies from a history passes through it, so that a record
// never carries a secret that a history leaked.
func Redact(s string) string {
	spans := secretSpans(s)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp[0]])
		b.WriteString(Redacted)
		last = sp[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// scanText reports whether text, or any string inside it when it is JSON,
// looks like a secret. Decoding matters: JSON may escape a '/' as "\/",
// which splits the raw run in two.
func scanText(text string) bool {
	if LooksLikeSecret(text) {
		return true
	}
	t := strings.TrimSpace(text)
	if t == "" || (t[0] != '{' && t[0] != '[' && t[0] != '"') {
		return false
	}
	var v any
	if json.Unmarshal([]byte(t), &v) != nil {
		return false
	}
	return scanValue(v, 0)
}

// maxScanDepth stops a pathological document; encoding/json already
// refuses nesting deeper than 10,000.
const maxScanDepth = 10000

func scanValue(v any, depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	switch t := v.(type) {
	case string:
		return LooksLikeSecret(t) || (depth < 4 && strings.Contains(t, "\\") && scanText(t))
	case map[string]any:
		for k, e := range t {
			if LooksLikeSecret(k) || scanValue(e, depth+1) {
				return true
			}
		}
	case []any:
		for _, e := range t {
			if scanValue(e, depth+1) {
				return true
			}
		}
	}
	return false
}
