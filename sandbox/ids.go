package sandbox

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
)

const (
	// base32 is the alphabet of the random part of IAM unique ids and
	// access key ids (AKIA + 16 of these).
	base32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	// secretChars is the alphabet of secret access keys: 40 of these.
	secretChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	alnum       = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	lowerAlnum  = "abcdefghijklmnopqrstuvwxyz0123456789"
	hexChars    = "0123456789abcdef"
)

// idSource draws the random characters of identifiers.
type idSource interface {
	pick(n int, alphabet string) string
}

// cryptoIDs is the default: identifiers that nobody can predict, as on AWS.
type cryptoIDs struct{}

func (cryptoIDs) pick(n int, alphabet string) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			// crypto/rand does not fail on the platforms Go supports
			// (it panics itself since Go 1.24); keep a defined value.
			v = big.NewInt(0)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// seededIDs makes a seeded account identical from run to run.
type seededIDs struct{ r *mrand.Rand }

func (s seededIDs) pick(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[s.r.IntN(len(alphabet))]
	}
	return string(b)
}

func (s *Sandbox) accessKeyID() string { return "AKIA" + s.ids.pick(16, base32) }

// secretAccessKey always comes from crypto/rand, even while seeding: a
// secret must never be predictable from a seed.
func secretAccessKey() string { return cryptoIDs{}.pick(40, secretChars) }

func (s *Sandbox) uniqueID(prefix string) string { return prefix + s.ids.pick(17, base32) }

func (s *Sandbox) uuid() string {
	h := s.ids.pick(32, hexChars)
	return fmt.Sprintf("%s-%s-4%s-%s-%s", h[0:8], h[8:12], h[13:16], "a"+h[17:20], h[20:32])
}

// stableID derives an identifier from a name, for ids that must not change
// between runs without being stored first (the Organization's ids).
func stableID(n int, alphabet string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[int(sum[i%len(sum)])%len(alphabet)]
	}
	return string(b)
}

func encodeMarker(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func decodeMarker(m string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil {
		return "", apiError("ValidationError", "invalid pagination marker")
	}
	return string(b), nil
}
