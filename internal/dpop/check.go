package dpop

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/internal/keyproof"
	"github.com/tegata-dev/tegata/internal/strictjson"
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
	// AccessTokenHash, when not nil, is SHA-256(AccessToken), computed
	// once by a caller that sees the same token again and again (the
	// verifier's cache), so that Check does not hash it per proof.
	AccessTokenHash *[32]byte
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
	var cl claims
	p, err := keyproof.Parse(proof, keyproof.Expect{Type: Type, Algorithms: c.algs}, cl.read)
	if err != nil {
		return Proof{}, fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	if err := c.checkClaims(&cl, r, now); err != nil {
		return Proof{}, err
	}
	fresh, err := c.replay.add(replayKey(p.Key.Thumbprint, cl.jti.v), p.Key.Thumbprint, now)
	if err != nil {
		return Proof{}, err
	}
	if !fresh {
		return Proof{}, ErrReplay
	}
	return Proof{JKT: p.Key.Thumbprint, Key: p.Key}, nil
}

// claims are the payload members Check reads, as read by keyproof in one
// pass: others are checked for syntax and dropped.
type claims struct {
	jti, htm, htu, ath, nonce, iat claim
}

// claim is one member: present, and its value when it has the type the
// member must have (a string; a number for iat, as its text).
type claim struct {
	v           []byte
	present, ok bool
}

func (c *claims) read(d *strictjson.Decoder, name []byte) error {
	var m *claim
	switch string(name) {
	case "jti":
		m = &c.jti
	case "htm":
		m = &c.htm
	case "htu":
		m = &c.htu
	case "ath":
		m = &c.ath
	case "nonce":
		m = &c.nonce
	case "iat":
		var err error
		c.iat.v, c.iat.ok, err = d.NumberValue()
		c.iat.present = true
		return err
	default:
		_, err := d.Value()
		return err
	}
	var err error
	m.v, m.ok, err = d.StringValue()
	m.present = true
	return err
}

// checkClaims applies the rules of RFC 9449 §4.3 to the payload.
func (c *Checker) checkClaims(cl *claims, r Request, now time.Time) error {
	if jti := cl.jti.v; !cl.jti.ok || len(jti) == 0 || len(jti) > maxJTI {
		return fmt.Errorf("%w: jti must be a string of 1 to %d bytes", ErrInvalidProof, maxJTI)
	}
	if !cl.htm.ok || string(cl.htm.v) != r.Method {
		return fmt.Errorf("%w: htm %q does not match the request's method %s", ErrInvalidProof, cl.htm.v, r.Method)
	}
	if err := checkHTU(cl.htu, r.URL); err != nil {
		return err
	}
	if err := c.checkIAT(cl.iat, now); err != nil {
		return err
	}
	if err := checkATH(cl.ath, r.AccessToken, r.AccessTokenHash); err != nil {
		return err
	}
	if c.nonces != nil && !c.nonces.valid(cl.nonce.v, now) {
		return ErrUseNonce
	}
	return nil
}

func checkHTU(htu claim, want string) error {
	if !htu.ok {
		return fmt.Errorf("%w: htu must be a string", ErrInvalidProof)
	}
	w, err := normalize(want)
	if err != nil {
		return fmt.Errorf("%w: the request's URL: %v", ErrInvalidProof, err)
	}
	if isNormal(htu.v) {
		if string(htu.v) != w {
			return fmt.Errorf("%w: htu %q does not match the request's URL", ErrInvalidProof, htu.v)
		}
		return nil
	}
	got, err := NormalizeURL(string(htu.v))
	if err != nil {
		return fmt.Errorf("%w: htu: %v", ErrInvalidProof, err)
	}
	if got != w {
		return fmt.Errorf("%w: htu %q does not match the request's URL", ErrInvalidProof, htu.v)
	}
	return nil
}

func (c *Checker) checkIAT(v claim, now time.Time) error {
	var f float64
	var err error
	if v.ok {
		f, err = strconv.ParseFloat(string(v.v), 64)
	}
	if !v.ok || err != nil || f < 0 || f > math.MaxInt32*4 {
		return fmt.Errorf("%w: iat must be a NumericDate", ErrInvalidProof)
	}
	iat := time.Unix(int64(f), 0)
	if d := now.Sub(iat); d > c.window || d < -c.window {
		return fmt.Errorf("%w: iat %s is more than %s from now", ErrInvalidProof, iat.UTC().Format(time.RFC3339), c.window)
	}
	return nil
}

// checkATH requires ath to be the base64url SHA-256 of the access token
// presented with the proof (sum, when known), and absent when none is.
func checkATH(ath claim, token string, sum *[32]byte) error {
	switch {
	case token == "" && !ath.present:
		return nil
	case token == "":
		return fmt.Errorf("%w: ath where no access token is presented", ErrInvalidProof)
	case !ath.ok:
		return fmt.Errorf("%w: ath is missing", ErrInvalidProof)
	}
	if sum == nil {
		h := sha256.Sum256([]byte(token))
		sum = &h
	}
	var want [43]byte
	base64.RawURLEncoding.Encode(want[:], sum[:])
	if subtle.ConstantTimeCompare(ath.v, want[:]) != 1 {
		return fmt.Errorf("%w: ath is not the hash of the access token", ErrInvalidProof)
	}
	return nil
}
