package token

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/internal/strictjson"
)

// Bits recording which registered claims a payload carried.
const (
	hasIss = 1 << iota
	hasSub
	hasAud
	hasExp
	hasNbf
	hasIat
	hasJti
	hasSid
	hasSgen
	hasStatus
	hasCnf
)

// claimBit returns the bit of a registered claim Verify reads, or 0.
func claimBit(name []byte) uint16 {
	switch string(name) {
	case "iss":
		return hasIss
	case "sub":
		return hasSub
	case "aud":
		return hasAud
	case "exp":
		return hasExp
	case "nbf":
		return hasNbf
	case "iat":
		return hasIat
	case "jti":
		return hasJti
	case "sid":
		return hasSid
	case "sgen":
		return hasSgen
	case "status":
		return hasStatus
	case "cnf":
		return hasCnf
	}
	return 0
}

// maxNumericDate is 9999-12-31T23:59:59Z; larger dates are refused so that
// conversion to time.Time cannot overflow.
const maxNumericDate = 253402300799

// parsePayload reads the claims JSON. Malformed JSON is ErrMalformed; a
// registered claim of the wrong type is ErrClaims. It returns which
// registered claims were present.
func parsePayload(data []byte) (*Claims, uint16, error) {
	c := &Claims{}
	var seen uint16
	err := strictjson.DecodeObject(data, "payload", ErrMalformed, func(d *strictjson.Decoder, name []byte) error {
		bit := claimBit(name)
		if bit == 0 {
			return c.extra(d, name)
		}
		if seen&bit != 0 {
			return d.Errorf("duplicate member %q", name)
		}
		seen |= bit
		return c.registered(d, bit)
	})
	if err != nil {
		return nil, 0, err
	}
	return c, seen, nil
}

// extra reads an application claim into c.Extra.
func (c *Claims) extra(d *strictjson.Decoder, name []byte) error {
	if c.Extra == nil {
		c.Extra = map[string]any{}
	}
	return d.Member(c.Extra, name)
}

// registered reads the registered claim marked by bit into c.
func (c *Claims) registered(d *strictjson.Decoder, bit uint16) error {
	switch bit {
	case hasIss:
		return readString(d, "iss", &c.Issuer)
	case hasSub:
		return readString(d, "sub", &c.Subject)
	case hasJti:
		return readString(d, "jti", &c.ID)
	case hasSid:
		return readString(d, "sid", &c.SessionID)
	case hasAud:
		return c.readAudience(d)
	case hasExp:
		return readNumericDate(d, "exp", &c.Expiry)
	case hasNbf:
		return readNumericDate(d, "nbf", &c.NotBefore)
	case hasIat:
		return readNumericDate(d, "iat", &c.IssuedAt)
	case hasStatus:
		return c.readStatus(d)
	case hasCnf:
		return c.readConfirmation(d)
	default:
		return c.readGeneration(d)
	}
}

func readString(d *strictjson.Decoder, name string, dst *string) error {
	s, ok, err := d.StringValue()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s is not a string", ErrClaims, name)
	}
	*dst = string(s)
	return nil
}

// readAudience accepts a string or an array of strings (RFC 7519 4.1.3).
func (c *Claims) readAudience(d *strictjson.Decoder) error {
	d.SkipSpace()
	if d.Peek() == '"' {
		c.Audience = make([]string, 1)
		return readString(d, "aud", &c.Audience[0])
	}
	v, err := d.Value()
	if err != nil {
		return err
	}
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("%w: aud is neither a string nor an array", ErrClaims)
	}
	c.Audience = make([]string, len(list))
	for i, a := range list {
		if c.Audience[i], ok = a.(string); !ok {
			return fmt.Errorf("%w: aud has a member that is not a string", ErrClaims)
		}
	}
	return nil
}

// readNumericDate accepts a JSON number of seconds since the epoch, whole or
// fractional (RFC 7519 2), within [0, maxNumericDate].
func readNumericDate(d *strictjson.Decoder, name string, dst *time.Time) error {
	raw, ok, err := d.NumberValue()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s is not a number", ErrClaims, name)
	}
	if sec, ok := parseUint(raw); ok && sec <= maxNumericDate {
		*dst = time.Unix(int64(sec), 0).UTC()
		return nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > maxNumericDate {
		return fmt.Errorf("%w: %s %s is out of range", ErrClaims, name, raw)
	}
	sec, frac := math.Modf(f)
	*dst = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// readGeneration accepts sgen only as a non-negative JSON integer that fits
// an int64: it is compared exactly against revocation cutoffs, so 1.5 or
// 1e3 are refused rather than rounded.
func (c *Claims) readGeneration(d *strictjson.Decoder) error {
	raw, ok, err := d.NumberValue()
	if err != nil {
		return err
	}
	n, isUint := parseUint(raw)
	if !ok || !isUint || n > math.MaxInt64 {
		return fmt.Errorf("%w: sgen is not a non-negative integer", ErrClaims)
	}
	c.Generation = int64(n)
	return nil
}

// parseUint parses a string of decimal digits, reporting false for anything
// else (sign, fraction, exponent) or on overflow.
func parseUint(raw []byte) (uint64, bool) {
	if len(raw) == 0 || len(raw) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// readConfirmation reads cnf (RFC 7800), which must hold jkt alone (RFC
// 9449 §6.1): a thumbprint of 43 base64url characters. Other confirmation
// methods (jwk, x5t#S256) would bind the token to a key nothing here
// checks, so they are refused rather than ignored.
func (c *Claims) readConfirmation(d *strictjson.Decoder) error {
	v, err := d.Value()
	if err != nil {
		return err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: cnf is not an object", ErrClaims)
	}
	for name := range obj {
		if name != "jkt" {
			return fmt.Errorf("%w: cnf member %q is not supported (only jkt)", ErrClaims, name)
		}
	}
	jkt, _ := obj["jkt"].(string)
	if !validJKT(jkt) {
		return fmt.Errorf("%w: cnf.jkt is not a SHA-256 thumbprint in base64url", ErrClaims)
	}
	c.JKT = jkt
	return nil
}

// validJKT reports whether s is a SHA-256 thumbprint as base64url without
// padding: 43 characters of the alphabet, the last one encoding 2 bits.
func validJKT(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := b64.DecodeString(s)
	return err == nil && len(b) == 32
}
