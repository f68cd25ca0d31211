package dbsc

import (
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/keyproof"
)

// ProofType is the typ of every DBSC proof.
const ProofType = "dbsc+jwt"

// Algorithms a proof may be signed with: those the specification names
// but "none", which proves nothing. (Browsers sign ES256 with a TPM or
// secure enclave key; some TPMs only do RS256.)
var Algorithms = []string{keyproof.ES256, keyproof.RS256}

// ErrProof: the proof is not signed by the key it must be signed by (or
// is not a proof at all). For a bound session, whoever sent it holds the
// session's cookies but not its key.
var ErrProof = errors.New("dbsc: proof not signed by the session's key")

// CheckRegistration verifies a registration proof: signed by the key in
// its own jwk header, over a current challenge of the session whose
// refresh token is refresh. It returns that key. Errors wrap ErrProof or
// ErrChallenge.
func CheckRegistration(raw, refresh string, now time.Time) (keyproof.Key, error) {
	p, err := keyproof.Parse(raw, keyproof.Expect{Type: ProofType, Algorithms: Algorithms})
	if err != nil {
		return keyproof.Key{}, fmt.Errorf("%w: %w", ErrProof, err)
	}
	_, err = checkJTI(p, refresh, now)
	return p.Key, err
}

// CheckRefresh verifies a refresh proof: signed by key, the session's
// (a jwk header, which the specification leaves out, must name the same
// key), over a current challenge of the session whose refresh token is
// refresh. It returns when the challenge was issued, which the caller
// accepts once (CheckChallenge). Errors wrap ErrProof or ErrChallenge.
func CheckRefresh(raw string, key keyproof.Key, refresh string, now time.Time) (time.Time, error) {
	p, err := keyproof.Parse(raw, keyproof.Expect{Type: ProofType, Algorithms: Algorithms, Key: &key})
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", ErrProof, err)
	}
	return checkJTI(p, refresh, now)
}

// checkJTI: the challenge travels as the proof's jti claim.
func checkJTI(p *keyproof.Proof, refresh string, now time.Time) (time.Time, error) {
	jti, ok := p.Claims["jti"].(string)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: the proof has no jti (the challenge) string", ErrChallenge)
	}
	return CheckChallenge(jti, refresh, now)
}
