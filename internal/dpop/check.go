package dpop

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/tegata-dev/tegata/internal/keyproof"
)

// Type is the typ of a DPoP proof.
const Type = "dpop+jwt"

// Defaults of Config.
const (
	DefaultWindow    = time.Minute
	DefaultMaxProofs = 100_000
	maxJTI           = 256
)

// Sentinels. Every error Check returns wraps ErrInvalidProof, or is
// ErrUseNonce; errFull also wraps ErrInvalidProof.
var (
	// ErrInvalidProof: answer invalid_dpop_proof (RFC 9449 §7.1).
	ErrInvalidProof = errors.New("invalid DPoP proof")
	// ErrUseNonce: the proof lacks the server's current nonce; answer
	// use_dpop_nonce with a DPoP-Nonce header (RFC 9449 §8).
	ErrUseNonce = errors.New("DPoP proof needs the server's nonce")
	// ErrReplay: the proof was accepted before.
	ErrReplay = fmt.Errorf("%w: proof replayed (jti seen before)", ErrInvalidProof)
	errFull   = fmt.Errorf("%w: too many recent proofs to remember; try again", ErrInvalidProof)
)

// Config configures a Checker. Zero values mean the defaults.
type Config struct {
	// Algorithms a proof may be signed with; nil: ES256 and EdDSA.
	Algorithms []string
	// Window is how far a proof's iat may lie from now, either way (clock
	// skew and transit); a proof's jti is remembered for twice as long.
	// Zero: DefaultWindow.
	Window time.Duration
	// MaxProofs bounds the replay cache: the proofs accepted within the
	// last 2×Window this Checker can remember (about 100 bytes each).
	// Past it new proofs are refused until old ones expire. Zero:
	// DefaultMaxProofs.
	MaxProofs int
	// Nonces, when set, requires every proof to carry a nonce it issued.
	Nonces *Nonces
}

// Checker checks DPoP proofs and remembers them.
type Checker struct {
	algs   []string
	window time.Duration
	replay *replayCache
	nonces *Nonces
}

// NewChecker returns a Checker for cfg.
func NewChecker(cfg Config) *Checker {
	w := cfg.Window
	if w <= 0 {
		w = DefaultWindow
	}
	maxProofs := cfg.MaxProofs
	if maxProofs <= 0 {
		maxProofs = DefaultMaxProofs
	}
	return &Checker{algs: cfg.Algorithms, window: w, replay: newReplayCache(2*w, maxProofs), nonces: cfg.Nonces}
}

// Request is what a proof must match.
type Request struct {
	Method string // htm
	// URL is the request's absolute URL as the client addressed it (behind
	// a proxy, the public one); query and fragment are ignored.
	URL string
	// AccessToken, when set, must be what ath hashes (at a resource
	// server); when empty, the proof must carry no ath (at the
	// authority's sign-in and refresh).
	AccessToken string
}

// Proof is what a valid proof proves.
type Proof struct {
	JKT string // the key's RFC 7638 thumbprint
	Key keyproof.Key
}

// Check verifies proof for r at now: signature by the jwk in its header
// (keyproof), htm, htu, iat within the window, ath, jti not seen before,
// and the nonce when one is required. The proof's jti is remembered only
// if everything else holds.
func (c *Checker) Check(proof string, r Request, now time.Time) (Proof, error) {
	p, err := keyproof.Parse(proof, keyproof.Expect{Type: Type, Algorithms: c.algs})
	if err != nil {
		return Proof{}, fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	jti, err := c.checkClaims(p.Claims, r, now)
	if err != nil {
		return Proof{}, err
	}
	fresh, err := c.replay.add(replayKey(p.Key.Thumbprint, jti), p.Key.Thumbprint, now)
	if err != nil {
		return Proof{}, err
	}
	if !fresh {
		return Proof{}, ErrReplay
	}
	return Proof{JKT: p.Key.Thumbprint, Key: p.Key}, nil
}

// checkClaims applies the rules of RFC 9449 §4.3 to the payload and
// returns its jti.
func (c *Checker) checkClaims(cl map[string]any, r Request, now time.Time) (string, error) {
	jti, _ := cl["jti"].(string)
	if jti == "" || len(jti) > maxJTI || !utf8.ValidString(jti) {
		return "", fmt.Errorf("%w: jti must be a string of 1 to %d bytes", ErrInvalidProof, maxJTI)
	}
	if htm, _ := cl["htm"].(string); htm != r.Method {
		return "", fmt.Errorf("%w: htm %q does not match the request's method %s", ErrInvalidProof, htm, r.Method)
	}
	if err := checkHTU(cl["htu"], r.URL); err != nil {
		return "", err
	}
	if err := c.checkIAT(cl["iat"], now); err != nil {
		return "", err
	}
	if err := checkATH(cl["ath"], r.AccessToken); err != nil {
		return "", err
	}
	if c.nonces != nil {
		if n, _ := cl["nonce"].(string); !c.nonces.valid(n, now) {
			return "", ErrUseNonce
		}
	}
	return jti, nil
}

func checkHTU(v any, want string) error {
	htu, _ := v.(string)
	got, err := NormalizeURL(htu)
	if err != nil {
		return fmt.Errorf("%w: htu: %v", ErrInvalidProof, err)
	}
	w, err := NormalizeURL(want)
	if err != nil || got != w {
		return fmt.Errorf("%w: htu %q does not match the request's URL", ErrInvalidProof, htu)
	}
	return nil
}

func (c *Checker) checkIAT(v any, now time.Time) error {
	f, ok := v.(float64)
	if !ok || f < 0 || f > math.MaxInt32*4 {
		return fmt.Errorf("%w: iat must be a NumericDate", ErrInvalidProof)
	}
	iat := time.Unix(int64(f), 0)
	if d := now.Sub(iat); d > c.window || d < -c.window {
		return fmt.Errorf("%w: iat %s is more than %s from now", ErrInvalidProof, iat.UTC().Format(time.RFC3339), c.window)
	}
	return nil
}

// checkATH requires ath to be the base64url SHA-256 of the access token
// presented with the proof, and absent when none is.
func checkATH(v any, token string) error {
	ath, present := v.(string)
	switch {
	case token == "" && v == nil:
		return nil
	case token == "":
		return fmt.Errorf("%w: ath where no access token is presented", ErrInvalidProof)
	case !present:
		return fmt.Errorf("%w: ath is missing", ErrInvalidProof)
	}
	sum := sha256.Sum256([]byte(token))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(ath), []byte(want)) != 1 {
		return fmt.Errorf("%w: ath is not the hash of the access token", ErrInvalidProof)
	}
	return nil
}
