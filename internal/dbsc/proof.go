package dbsc

import (
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/keyproof"
	"github.com/tegata-dev/tegata/internal/strictjson"
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
	var c challengeClaim
	p, err := keyproof.Parse(raw, keyproof.Expect{Type: ProofType, Algorithms: Algorithms}, c.read)
	if err != nil {
		return keyproof.Key{}, fmt.Errorf("%w: %w", ErrProof, err)
	}
	_, err = c.check(refresh, now)
	return p.Key, err
}

// CheckRefresh verifies a refresh proof: signed by key, the session's
// (a jwk header, which the specification leaves out, must name the same
// key), over a current challenge of the session whose refresh token is
// refresh. It returns when the challenge was issued, which the caller
// accepts once (CheckChallenge). Errors wrap ErrProof or ErrChallenge.
func CheckRefresh(raw string, key keyproof.Key, refresh string, now time.Time) (time.Time, error) {
	var c challengeClaim
	if _, err := keyproof.Parse(raw, keyproof.Expect{Type: ProofType, Algorithms: Algorithms, Key: &key}, c.read); err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", ErrProof, err)
	}
	return c.check(refresh, now)
}

// challengeClaim is the proof's jti claim, which carries the challenge.
type challengeClaim struct {
	jti string
	ok  bool // present as a string
}

func (c *challengeClaim) read(d *strictjson.Decoder, name []byte) error {
	if string(name) != "jti" {
		_, err := d.Value()
		return err
	}
	s, ok, err := d.StringValue()
	c.jti, c.ok = string(s), ok
	return err
}

func (c *challengeClaim) check(refresh string, now time.Time) (time.Time, error) {
	if !c.ok {
		return time.Time{}, fmt.Errorf("%w: the proof has no jti (the challenge) string", ErrChallenge)
	}
	return CheckChallenge(c.jti, refresh, now)
}
