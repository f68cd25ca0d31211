// Package secret is the one rule tegata applies to a secret it is handed
// (an API key, the master key) from the environment, a file or a Config
// field: surrounding whitespace is dropped, since files and Kubernetes
// secrets made from files end in a newline, and a value that cannot be a
// secret as given is refused with a reason instead of failing later as "invalid
// API key". It also holds the shape of a refresh token, which the authority
// and the web gate both check before spending anything on one. It holds no
// state and is safe for concurrent use.
package secret

import (
	"encoding/base64"
	"errors"
	"strings"
)

// ErrBearer: the value starts with "Bearer ", the scheme the client adds.
var ErrBearer = errors.New(`the value starts with "Bearer ": give the key alone, the scheme is added when it is sent`)

// ErrSpace: the value has whitespace or a control character inside it.
var ErrSpace = errors.New("the value contains whitespace or a control character; was something else pasted with it?")

// Clean returns s without surrounding whitespace. It refuses a value that
// starts with "Bearer " (any case) or still contains whitespace or control
// characters. An empty result is not an error: callers say what is missing.
func Clean(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 7 && strings.EqualFold(s[:7], "bearer ") {
		return "", ErrBearer
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return "", ErrSpace
		}
	}
	return s, nil
}

// RefreshBytes is the randomness of a refresh token: 256 bits.
const RefreshBytes = 32

// refreshEncoding writes refresh tokens: unpadded base64url, 43 characters.
var refreshEncoding = base64.RawURLEncoding.Strict()

// NewRefreshToken encodes RefreshBytes random bytes as a refresh token.
func NewRefreshToken(random [RefreshBytes]byte) string {
	return refreshEncoding.EncodeToString(random[:])
}

// IsRefreshToken reports whether s has the shape of a refresh token the
// authority issues (see NewRefreshToken). Anything else cannot be one, so
// it is refused without a lookup or a call to the authority.
func IsRefreshToken(s string) bool {
	if len(s) != refreshEncoding.EncodedLen(RefreshBytes) {
		return false
	}
	var b [RefreshBytes]byte
	n, err := refreshEncoding.Decode(b[:], []byte(s))
	return err == nil && n == RefreshBytes
}
