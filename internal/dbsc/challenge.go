package dbsc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ChallengeMaxAge is how old a challenge a proof may sign: long enough for
// a browser to answer the challenge of a refresh or a registration (it
// signs at once, with a TPM that may take a second), short enough that a
// proof captured in flight is soon useless.
const ChallengeMaxAge = 5 * time.Minute

// challengeSkew is how far in the future a challenge's time may lie: the
// gate that issued it and the authority node that checks it read different
// clocks.
const challengeSkew = time.Minute

// ErrChallenge: the proof signs no challenge issued for this refresh token
// and session within ChallengeMaxAge (stale, made for another token, or
// not a challenge at all). The browser is asked to sign a fresh one; it is
// not a sign of theft.
var ErrChallenge = errors.New("dbsc: not a current challenge for this session")

const (
	challengeLabel = "tegata dbsc challenge v1\x00"
	macLen         = 16 // 128 bits: forging one means guessing them blind
	challengeLen   = 8 + macLen
)

// Challenge returns the challenge for the session whose current refresh
// token is refresh, at now. Its time is in milliseconds, so that two
// challenges for one token are never the same: the authority accepts each
// once (see CheckChallenge).
func Challenge(refresh string, now time.Time) string {
	b := make([]byte, 8, challengeLen)
	binary.BigEndian.PutUint64(b, uint64(now.UnixMilli()))
	b = append(b, challengeMAC(refresh, b[:8])...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CheckChallenge reports whether c is a challenge Challenge(refresh, t)
// for a t within ChallengeMaxAge before now (or a minute after, for clock
// skew), and returns t; an error wrapping ErrChallenge otherwise. Whoever
// accepts a proof over it remembers t with the refresh token and accepts
// with that token only proofs over later challenges, which makes a
// challenge single use (store.Rotation.Check).
func CheckChallenge(c, refresh string, now time.Time) (time.Time, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != challengeLen {
		return time.Time{}, fmt.Errorf("%w: not shaped like one", ErrChallenge)
	}
	if !hmac.Equal(b[8:], challengeMAC(refresh, b[:8])) {
		return time.Time{}, fmt.Errorf("%w: issued for another refresh token", ErrChallenge)
	}
	at := time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8])))
	if age := now.Sub(at); age > ChallengeMaxAge || age < -challengeSkew {
		return time.Time{}, fmt.Errorf("%w: issued %v ago, accepted for %v", ErrChallenge, age.Round(time.Second), ChallengeMaxAge)
	}
	return at, nil
}

func challengeMAC(refresh string, stamp []byte) []byte {
	m := hmac.New(sha256.New, []byte(refresh))
	m.Write([]byte(challengeLabel))
	m.Write(stamp)
	return m.Sum(nil)[:macLen]
}
