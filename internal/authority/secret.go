package authority

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/tegata-dev/tegata/internal/secret"
)

const (
	sessionIDBytes = 16 // 128 bits: unguessable, and compact in verifier memory
	apiKeyBytes    = 32
	// APIKeyPrefix marks tegata API keys so secret scanners can find leaked ones.
	APIKeyPrefix = "tgk_"
)

var b64 = base64.RawURLEncoding

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand.Read has returned no error since Go 1.24
	return b64.EncodeToString(b)
}

func newSessionID() string { return randomString(sessionIDBytes) }

func newRefreshToken() string {
	var b [secret.RefreshBytes]byte
	rand.Read(b[:]) // never fails: crypto/rand.Read has returned no error since Go 1.24
	return secret.NewRefreshToken(b)
}
func newTokenID() string { return randomString(16) }

// NewAPIKey returns a fresh API key secret.
func NewAPIKey() string { return APIKeyPrefix + randomString(apiKeyBytes) }

// HashSecret is how refresh tokens and API keys are stored: SHA-256. The
// secrets carry 256 random bits, so a fast hash is enough; no salt is needed
// because nothing low-entropy is hashed.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

var errMalformedRefresh = errors.New("malformed refresh token")

// parseRefresh checks a presented refresh token's shape before any lookup,
// so garbage never reaches the store.
func parseRefresh(tok string) ([32]byte, error) {
	if !secret.IsRefreshToken(tok) {
		return [32]byte{}, errMalformedRefresh
	}
	return HashSecret(tok), nil
}
