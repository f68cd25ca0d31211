package token

import (
	"encoding/base64"
	"fmt"
)

// DefaultMaxSize is the size limit, in bytes, Verify applies when
// Expect.MaxSize is zero. A tegata access token is well under 2 KiB.
const DefaultMaxSize = 8192

var b64 = base64.RawURLEncoding.Strict()

// base64url marks the 64 bytes of the unpadded base64url alphabet. The check
// is needed besides the decoder because encoding/base64 skips '\r' and '\n'.
var base64url = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

// compact is a JWS in compact serialization, split and decoded.
type compact struct {
	signingInput []byte // header "." payload, as sent: what the signature covers
	header       []byte
	payload      []byte
	signature    []byte // may be empty; Verify refuses that once it knows the alg
}

// splitCompact splits raw into its three segments and decodes each one,
// accepting only canonical unpadded base64url so that a token has exactly one
// spelling. It allocates once, for a copy of raw and the decoded bytes.
func splitCompact(raw string) (compact, error) {
	var dots [2]int
	n := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '.' {
			if n < len(dots) {
				dots[n] = i
			}
			n++
			continue
		}
		if !base64url[c] {
			return compact{}, fmt.Errorf("%w: byte %#02x at offset %d is not base64url", ErrMalformed, c, i)
		}
	}
	if n != 2 {
		return compact{}, segmentCountError(n + 1)
	}
	if dots[0] == 0 || dots[1] == dots[0]+1 {
		return compact{}, fmt.Errorf("%w: empty header or payload segment", ErrMalformed)
	}
	buf := make([]byte, len(raw), len(raw)+b64.DecodedLen(len(raw)))
	copy(buf, raw)
	t := compact{signingInput: buf[:dots[1]:dots[1]]}
	var err error
	if t.header, buf, err = decodeSegment(buf, buf[:dots[0]], "header"); err != nil {
		return compact{}, err
	}
	if t.payload, buf, err = decodeSegment(buf, buf[dots[0]+1:dots[1]], "payload"); err != nil {
		return compact{}, err
	}
	if t.signature, _, err = decodeSegment(buf, buf[dots[1]+1:len(raw)], "signature"); err != nil {
		return compact{}, err
	}
	return t, nil
}

func segmentCountError(n int) error {
	if n == 5 {
		return fmt.Errorf("%w: 5 segments: JWE is not accepted", ErrMalformed)
	}
	return fmt.Errorf("%w: want 3 segments, got %d", ErrMalformed, n)
}

// decodeSegment decodes seg into the free capacity of buf and returns the
// decoded bytes and buf extended past them.
func decodeSegment(buf, seg []byte, name string) (decoded, rest []byte, err error) {
	start := len(buf)
	dst := buf[start : start+b64.DecodedLen(len(seg))]
	n, err := b64.Decode(dst, seg)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s segment is not canonical base64url", ErrMalformed, name)
	}
	return dst[:n:n], buf[:start+n], nil
}
