package statuslist

import (
	"encoding/json"
	"fmt"
	"time"
)

// tokenType is the typ of a Status List Token in JWT form.
const tokenType = "statuslist+jwt"

// tokenClaims is the payload of a Status List Token in JWT form
// (draft-ietf-oauth-status-list-21 §5.1).
type tokenClaims struct {
	Issuer     string     `json:"iss,omitempty"` // optional in the draft; tegata always sets it
	Subject    string     `json:"sub"`           // the list's URI, the uri of the tokens it covers
	IssuedAt   int64      `json:"iat"`
	Expiry     int64      `json:"exp"`
	TTL        int64      `json:"ttl"` // seconds, positive
	StatusList statusList `json:"status_list"`
}

type statusList struct {
	Bits int    `json:"bits"` // 1, 2, 4 or 8
	List string `json:"lst"`  // base64url of the zlib-compressed array
}

// newTokenClaims returns the claims of list uri's token with the encoded
// array lst, issued at iat and cached for ttl.
func newTokenClaims(issuer, uri string, bits int, lst string, iat time.Time, ttl time.Duration) (tokenClaims, error) {
	secs := int64(ttl / time.Second)
	switch {
	case uri == "" || lst == "":
		return tokenClaims{}, fmt.Errorf("statuslist: a status list token needs sub and lst")
	case bits != 1 && bits != 2 && bits != 4 && bits != 8:
		return tokenClaims{}, fmt.Errorf("statuslist: bits must be 1, 2, 4 or 8, not %d", bits)
	case secs <= 0 || iat.IsZero():
		return tokenClaims{}, fmt.Errorf("statuslist: a status list token needs iat and a positive ttl")
	}
	return tokenClaims{Issuer: issuer, Subject: uri, IssuedAt: iat.Unix(), Expiry: iat.Add(ttl).Unix(), TTL: secs,
		StatusList: statusList{Bits: bits, List: lst}}, nil
}

// sign signs c with s.
func (c tokenClaims) sign(s Signer) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return s.SignJWT(tokenType, payload)
}
