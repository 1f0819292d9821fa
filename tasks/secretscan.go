package tasks

import (
	"regexp"
	"strings"
)

// secretLike is the shape of an AWS secret access key: 40 characters of
// base64 not embedded in a longer run of them (the pattern git-secrets uses).
var secretLike = regexp.MustCompile(`[A-Za-z0-9/+=]{40,}`)

// LooksLikeSecret reports whether s contains something shaped like an AWS
// secret access key. Runs of exactly 40 characters with both upper and lower
// case count; random 40-character base64 has both with near certainty,
// while ids, ARNs and hex digests (which are one case) do not, so ordinary
// messages are not refused.
func LooksLikeSecret(s string) bool {
	for _, m := range secretLike.FindAllString(s, -1) {
		if len(m) != 40 {
			continue
		}
		if strings.ToLower(m) != m && strings.ToUpper(m) != m {
			return true
		}
	}
	return false
}
