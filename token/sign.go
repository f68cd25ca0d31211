package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tegata-dev/tegata/internal/jws"
)

// Sign mints an access token for c with k. The header is exactly
// {"alg":…,"typ":"at+jwt","kid":…}. Sign refuses claims Verify would refuse
// whatever the time: iss, sub, sid and jti must be non-empty, exp and iat set,
// Generation non-negative, and Extra must not use a reserved name (see
// IsReserved). Times are truncated to whole seconds; aud is omitted when
// Audience is empty and written as a string when it has one value. ES256
// signatures are emitted in low-S form.
func Sign(k SigningKey, c Claims) (string, error) {
	return signWith(k, c, rand.Reader)
}

func signWith(k SigningKey, c Claims, rnd io.Reader) (string, error) {
	if err := checkSigningKey(k); err != nil {
		return "", err
	}
	payload, err := encodeClaims(c)
	if err != nil {
		return "", err
	}
	header := appendJSONString([]byte(`{"alg":"`+k.Algorithm+`","typ":"at+jwt","kid":`), k.ID)
	header = append(header, '}')
	return signParts(k, header, payload, rnd)
}

// signParts signs already-encoded header and payload JSON.
func signParts(k SigningKey, header, payload []byte, rnd io.Reader) (string, error) {
	raw, err := jws.Sign(jws.Key{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private}, header, payload, rnd)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return raw, nil
}

// checkSigningKey checks that k's private key is of the type its alg needs.
func checkSigningKey(k SigningKey) error {
	if k.ID == "" || !utf8.ValidString(k.ID) {
		return errors.New("token: sign: signing key needs a kid of valid UTF-8")
	}
	if k.Private == nil {
		return errors.New("token: sign: signing key has no private key")
	}
	var ok bool
	switch pub := k.Private.Public(); k.Algorithm {
	case EdDSA:
		_, ok = pub.(ed25519.PublicKey)
	case ES256:
		p, isEC := pub.(*ecdsa.PublicKey)
		ok = isEC && p.Curve == elliptic.P256()
	default:
		return fmt.Errorf("%w: cannot sign with %q", ErrAlgorithm, k.Algorithm)
	}
	if !ok {
		return fmt.Errorf("%w: %s needs another key type than %T", ErrAlgorithm, k.Algorithm, k.Private.Public())
	}
	return nil
}

// encodeClaims writes the payload: registered claims in a fixed order, then
// Extra sorted by name. The result is checked with Verify's own parser, so
// Sign never mints a token Verify would find malformed (too deep, say).
func encodeClaims(c Claims) ([]byte, error) {
	if err := checkClaims(c); err != nil {
		return nil, err
	}
	b := appendJSONString([]byte(`{"iss":`), c.Issuer)
	b = appendJSONString(append(b, `,"sub":`...), c.Subject)
	b = appendAudience(b, c.Audience)
	b = appendDate(b, "exp", c.Expiry)
	if !c.NotBefore.IsZero() {
		b = appendDate(b, "nbf", c.NotBefore)
	}
	b = appendDate(b, "iat", c.IssuedAt)
	b = appendJSONString(append(b, `,"jti":`...), c.ID)
	b = appendJSONString(append(b, `,"sid":`...), c.SessionID)
	b = strconv.AppendInt(append(b, `,"sgen":`...), c.Generation, 10)
	b = appendStatus(b, c.Status)
	if c.JKT != "" {
		b = append(append(append(b, `,"cnf":{"jkt":"`...), c.JKT...), `"}`...)
	}
	b, err := appendExtra(b, c.Extra)
	if err != nil {
		return nil, err
	}
	b = append(b, '}')
	if _, _, err := parsePayload(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClaims, err)
	}
	return b, nil
}

func checkClaims(c Claims) error {
	for _, s := range []struct{ name, v string }{
		{"iss", c.Issuer}, {"sub", c.Subject}, {"jti", c.ID}, {"sid", c.SessionID},
	} {
		if s.v == "" || !utf8.ValidString(s.v) {
			return fmt.Errorf("%w: %s must be a non-empty UTF-8 string", ErrClaims, s.name)
		}
	}
	for _, a := range c.Audience {
		if !utf8.ValidString(a) {
			return fmt.Errorf("%w: aud must be UTF-8", ErrClaims)
		}
	}
	switch {
	case c.Expiry.IsZero() || c.IssuedAt.IsZero():
		return fmt.Errorf("%w: exp and iat are required", ErrClaims)
	case c.Generation < 0:
		return fmt.Errorf("%w: sgen must not be negative", ErrClaims)
	}
	if err := checkStatus(c.Status); err != nil {
		return err
	}
	if c.JKT != "" && !validJKT(c.JKT) {
		return fmt.Errorf("%w: JKT must be a SHA-256 thumbprint in base64url", ErrClaims)
	}
	for name := range c.Extra {
		if IsReserved(name) {
			return fmt.Errorf("%w: Extra must not set reserved claim %q", ErrClaims, name)
		}
	}
	return nil
}

func appendAudience(b []byte, aud []string) []byte {
	switch len(aud) {
	case 0:
		return b
	case 1:
		return appendJSONString(append(b, `,"aud":`...), aud[0])
	}
	b = append(b, `,"aud":[`...)
	for i, a := range aud {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a)
	}
	return append(b, ']')
}

func appendDate(b []byte, name string, t time.Time) []byte {
	b = append(append(append(b, `,"`...), name...), `":`...)
	return strconv.AppendInt(b, t.Unix(), 10)
}

func appendExtra(b []byte, extra map[string]any) ([]byte, error) {
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v, err := json.Marshal(extra[name])
		if err != nil {
			return nil, fmt.Errorf("%w: claim %q: %w", ErrClaims, name, err)
		}
		b = append(appendJSONString(append(b, ','), name), ':')
		b = append(b, v...)
	}
	return b, nil
}

// appendJSONString appends s, which must be valid UTF-8, as a JSON string.
func appendJSONString(b []byte, s string) []byte { return jws.AppendString(b, s) }
