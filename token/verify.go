package token

import (
	"fmt"
	"slices"
	"time"
)

// Expect is what Verify requires of a token beyond a valid signature.
type Expect struct {
	// Issuer must equal the token's iss. Every token carries iss, so an empty
	// Issuer rejects every token rather than skipping the check.
	Issuer string
	// Audience, when set, must be one of the token's aud values; when empty
	// aud is not checked.
	Audience string
	// Algorithms lists the accepted algs; nil or empty means {EdDSA}. Only
	// EdDSA and ES256 can ever be accepted.
	Algorithms []string
	// Leeway allows for clock skew in the exp, nbf and iat checks; zero means
	// none.
	Leeway time.Duration
	// MaxLifetime, when set, rejects tokens whose exp lies further than
	// now+MaxLifetime+Leeway, bounding the damage of a mis-minted token.
	MaxLifetime time.Duration
	// MaxSize caps the token length in bytes, checked before any parsing;
	// zero means DefaultMaxSize.
	MaxSize int
	// Bound accepts tokens bound to a DPoP key (cnf.jkt, Claims.JKT); the
	// caller must then require a proof signed by that key. Without it such
	// a token is refused (ErrClaims), so that a caller checking no proofs
	// never takes a sender-constrained token for a bearer token.
	Bound bool
}

// Verify checks raw completely and returns its claims: size, compact form and
// canonical base64url, header (alg allowed and matching the key, no key
// material or URLs, no crit, typ at+jwt), the signature with the key named by
// kid, strict JSON, then the claims against e at time now. A token expires
// when now is after exp+Leeway. Every error wraps one of the package's
// sentinels with the reason.
func Verify(raw string, keys KeyLookup, e Expect, now time.Time) (*Claims, error) {
	if limit := e.maxSize(); len(raw) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), limit)
	}
	t, err := splitCompact(raw)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(t.header)
	if err != nil {
		return nil, err
	}
	key, err := h.check(e.Algorithms, keys)
	if err != nil {
		return nil, err
	}
	if err := verifySignature(key, t.signingInput, t.signature); err != nil {
		return nil, err
	}
	c, seen, err := parsePayload(t.payload)
	if err != nil {
		return nil, err
	}
	if err := e.check(c, seen, now); err != nil {
		return nil, err
	}
	return c, nil
}

func (e *Expect) maxSize() int {
	if e.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return e.MaxSize
}

// check applies the claim rules to a payload whose signature is valid.
func (e *Expect) check(c *Claims, seen uint16, now time.Time) error {
	if err := checkRequired(c, seen); err != nil {
		return err
	}
	if c.JKT != "" && !e.Bound {
		return fmt.Errorf("%w: cnf: the token is bound to a DPoP key, and this caller checks no proofs", ErrClaims)
	}
	if c.Issuer != e.Issuer {
		return fmt.Errorf("%w: iss %q, want %q", ErrIssuer, c.Issuer, e.Issuer)
	}
	if e.Audience != "" && len(c.Audience) == 0 {
		return fmt.Errorf("%w: aud is missing, want %q", ErrAudience, e.Audience)
	}
	if e.Audience != "" && !slices.Contains(c.Audience, e.Audience) {
		return fmt.Errorf("%w: aud %q does not contain %q", ErrAudience, c.Audience, e.Audience)
	}
	return e.checkTimes(c, now)
}

// checkRequired insists on the claims every tegata token carries.
func checkRequired(c *Claims, seen uint16) error {
	switch {
	case seen&hasExp == 0:
		return fmt.Errorf("%w: exp is missing", ErrClaims)
	case seen&hasIat == 0:
		return fmt.Errorf("%w: iat is missing", ErrClaims)
	case c.Issuer == "":
		return fmt.Errorf("%w: iss is missing or empty", ErrIssuer)
	case c.Subject == "":
		return fmt.Errorf("%w: sub is missing or empty", ErrClaims)
	case c.SessionID == "":
		return fmt.Errorf("%w: sid is missing or empty", ErrClaims)
	case c.ID == "":
		return fmt.Errorf("%w: jti is missing or empty", ErrClaims)
	}
	return nil
}

// checkTimes applies Verify's time rules to claims at now: exp (expired when
// now is after exp+Leeway), nbf and iat (not after now+Leeway) and
// MaxLifetime. It accepts exactly the instants of validity.Window, which
// the verifier's cache keeps per token (window_test.go pins that).
func (e *Expect) checkTimes(c *Claims, now time.Time) error {
	if now.After(c.Expiry.Add(e.Leeway)) {
		return fmt.Errorf("%w: exp %s is before %s", ErrExpired, stamp(c.Expiry), stamp(now))
	}
	late := now.Add(e.Leeway)
	if !c.NotBefore.IsZero() && c.NotBefore.After(late) {
		return fmt.Errorf("%w: nbf %s is after %s", ErrNotYetValid, stamp(c.NotBefore), stamp(now))
	}
	if c.IssuedAt.After(late) {
		return fmt.Errorf("%w: iat %s is after %s", ErrNotYetValid, stamp(c.IssuedAt), stamp(now))
	}
	if e.MaxLifetime > 0 && c.Expiry.After(late.Add(e.MaxLifetime)) {
		return fmt.Errorf("%w: exp %s is more than %s after %s", ErrClaims, stamp(c.Expiry), e.MaxLifetime, stamp(now))
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
