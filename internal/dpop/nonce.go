package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Nonces issues and checks server nonces (RFC 9449 §8) without state: a
// nonce is the period it was issued in and an HMAC of it under a key of
// this process. One issued in the current or the previous period is
// accepted, so a nonce lives between one and two periods. Nonces of one
// process are not accepted by another (each has its own key): behind
// several verifiers a client may be asked for a nonce once per verifier.
type Nonces struct {
	key    [32]byte
	period time.Duration
}

// NewNonces returns Nonces with a fresh random key, whose nonces change
// every period.
func NewNonces(period time.Duration) *Nonces {
	n := &Nonces{period: period}
	if _, err := rand.Read(n.key[:]); err != nil {
		panic("dpop: no randomness for the nonce key: " + err.Error())
	}
	return n
}

// Current is the nonce to send in DPoP-Nonce at now.
func (n *Nonces) Current(now time.Time) string {
	return n.of(now.UnixNano() / int64(n.period))
}

func (n *Nonces) of(p int64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(p))
	m := hmac.New(sha256.New, n.key[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (n *Nonces) valid(nonce []byte, now time.Time) bool {
	p := now.UnixNano() / int64(n.period)
	return len(nonce) != 0 && (hmac.Equal(nonce, []byte(n.of(p))) || hmac.Equal(nonce, []byte(n.of(p-1))))
}
