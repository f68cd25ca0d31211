package token

import (
	"crypto/rand"
	"fmt"
	"math"
	"strconv"
	"time"
)

// StatusRef is the "status_list" member of the "status" claim
// (draft-ietf-oauth-status-list-21 §6.2): the token's entry in a Token
// Status List, for Relying Parties that check revocation by fetching the
// list at URI rather than by following tegata's feed.
type StatusRef struct {
	Index int64  // idx: the token's position in the list
	URI   string // uri: where the Status List Token is served
}

// maxStatusIndex keeps idx exact in every JSON implementation (2^53).
const maxStatusIndex = 1 << 53

func appendStatus(b []byte, s *StatusRef) []byte {
	if s == nil {
		return b
	}
	b = strconv.AppendInt(append(b, `,"status":{"status_list":{"idx":`...), s.Index, 10)
	b = appendJSONString(append(b, `,"uri":`...), s.URI)
	return append(b, `}}`...)
}

func checkStatus(s *StatusRef) error {
	if s != nil && (s.Index < 0 || s.Index >= maxStatusIndex || s.URI == "") {
		return fmt.Errorf("%w: status needs a non-negative idx below 2^53 and a uri", ErrClaims)
	}
	return nil
}

// readStatus reads the "status" claim. Mechanisms other than status_list
// are skipped; a status_list without a non-negative integer idx or a
// string uri is refused.
func (c *Claims) readStatus(d *decoder) error {
	v, err := d.value()
	if err != nil {
		return err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: status is not an object", ErrClaims)
	}
	sl, present := obj["status_list"]
	if !present {
		return nil
	}
	ref, ok := sl.(map[string]any)
	idx, isNum := ref["idx"].(float64)
	uri, isStr := ref["uri"].(string)
	if !ok || !isNum || !isStr || uri == "" || idx < 0 || idx >= maxStatusIndex || idx != math.Trunc(idx) {
		return fmt.Errorf("%w: status.status_list needs a non-negative integer idx and a uri", ErrClaims)
	}
	c.Status = &StatusRef{Index: int64(idx), URI: uri}
	return nil
}

// StatusListClaims is the payload of a Status List Token in JWT form
// (draft-ietf-oauth-status-list-21 §5.1).
type StatusListClaims struct {
	Issuer   string        // iss (optional in the draft; tegata always sets it)
	Subject  string        // sub: the list's URI, equal to the uri of the tokens it covers
	IssuedAt time.Time     // iat
	Expiry   time.Time     // exp
	TTL      time.Duration // ttl, whole seconds, positive
	Bits     int           // status_list.bits: 1, 2, 4 or 8
	List     string        // status_list.lst: base64url of the zlib-compressed array
}

// SignStatusList signs a Status List Token with k: header
// {"alg":…,"typ":"statuslist+jwt","kid":…}. Verify never accepts it as an
// access token (its typ is not at+jwt).
func SignStatusList(k SigningKey, c StatusListClaims) (string, error) {
	if err := checkSigningKey(k); err != nil {
		return "", err
	}
	ttl := int64(c.TTL / time.Second)
	switch {
	case c.Subject == "" || c.List == "":
		return "", fmt.Errorf("%w: a status list token needs sub and lst", ErrClaims)
	case c.Bits != 1 && c.Bits != 2 && c.Bits != 4 && c.Bits != 8:
		return "", fmt.Errorf("%w: status_list bits must be 1, 2, 4 or 8", ErrClaims)
	case ttl <= 0 || c.IssuedAt.IsZero() || c.Expiry.IsZero():
		return "", fmt.Errorf("%w: a status list token needs iat, exp and a positive ttl", ErrClaims)
	}
	b := []byte(`{`)
	if c.Issuer != "" {
		b = append(appendJSONString(append(b, `"iss":`...), c.Issuer), ',')
	}
	b = appendJSONString(append(b, `"sub":`...), c.Subject)
	b = appendDate(b, "iat", c.IssuedAt)
	b = appendDate(b, "exp", c.Expiry)
	b = strconv.AppendInt(append(b, `,"ttl":`...), ttl, 10)
	b = strconv.AppendInt(append(b, `,"status_list":{"bits":`...), int64(c.Bits), 10)
	b = appendJSONString(append(b, `,"lst":`...), c.List)
	b = append(b, `}}`...)
	header := appendJSONString([]byte(`{"alg":"`+k.Algorithm+`","typ":"statuslist+jwt","kid":`), k.ID)
	return signParts(k, append(header, '}'), b, rand.Reader)
}
