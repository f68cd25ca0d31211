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
// nonce is the period it was issued in and an HMAC of it under a key.
// One issued in the current or the previous period is accepted, so a
// nonce lives between one and two periods. With NewNonces the key is this
// process's own, and nonces of one process are not accepted by another:
// behind several verifiers a client may be asked for a nonce once per
// verifier. With NewSharedNonces every process given the same key accepts
// the nonces of the others.
type Nonces struct {
	keys   [][32]byte // the first issues; every one is accepted
	period time.Duration
}

// NewNonces returns Nonces with a fresh random key, whose nonces change
// every period.
func NewNonces(period time.Duration) *Nonces {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		panic("dpop: no randomness for the nonce key: " + err.Error())
	}
	return NewSharedNonces(period, key)
}

// NewSharedNonces returns Nonces whose nonces change every period, issued
// under key and accepted under key or any of others (a key being replaced
// on some processes and not yet on others).
func NewSharedNonces(period time.Duration, key [32]byte, others ...[32]byte) *Nonces {
	return &Nonces{keys: append([][32]byte{key}, others...), period: period}
}

// Current is the nonce to send in DPoP-Nonce at now.
func (n *Nonces) Current(now time.Time) string {
	return n.of(n.keys[0], now.UnixNano()/int64(n.period))
}

func (n *Nonces) of(key [32]byte, p int64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(p))
	m := hmac.New(sha256.New, key[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (n *Nonces) valid(nonce []byte, now time.Time) bool {
	if len(nonce) == 0 {
		return false
	}
	p := now.UnixNano() / int64(n.period)
	for _, k := range n.keys {
		if hmac.Equal(nonce, []byte(n.of(k, p))) || hmac.Equal(nonce, []byte(n.of(k, p-1))) {
			return true
		}
	}
	return false
}
