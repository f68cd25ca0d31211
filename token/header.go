package token

import (
	"bytes"
	"fmt"
	"maps"

	"github.com/tegata-dev/tegata/internal/jws"
	"github.com/tegata-dev/tegata/internal/strictjson"
)

// headerParam is one header parameter as read: present, and whether its
// value was a string (the only type alg, kid and typ may have).
type headerParam struct {
	present, isString bool
	value             []byte
}

// header holds the JOSE header parameters Verify acts on.
type header struct {
	alg, kid, typ headerParam
	refused       string // first parameter that makes the token unacceptable
}

// refusedParams are the parameters refused in every JWS (jws.RefusedParams)
// and the embedded key: an access token's key comes from the caller's key
// set by kid alone, never from the token.
var refusedParams = func() map[string]string {
	m := maps.Clone(jws.RefusedParams)
	m[jws.KeyParam] = jws.KeyRefused
	return m
}()

// parseHeader reads the header JSON. It fails only on malformed JSON; what
// the parameters say is judged by check.
func parseHeader(data []byte) (header, error) {
	var h header
	var others map[string]any // other parameters, kept only to refuse duplicates
	err := strictjson.DecodeObject(data, "header", ErrMalformed, func(d *strictjson.Decoder, name []byte) error {
		var p *headerParam
		switch string(name) {
		case "alg":
			p = &h.alg
		case "kid":
			p = &h.kid
		case "typ":
			p = &h.typ
		default:
			if _, refused := refusedParams[string(name)]; refused && h.refused == "" {
				h.refused = string(name)
			}
			if others == nil {
				others = map[string]any{}
			}
			return d.Member(others, name)
		}
		if p.present {
			return d.Errorf("duplicate member %q", name)
		}
		var err error
		p.value, p.isString, err = d.StringValue()
		p.present = true
		return err
	})
	return h, err
}

// check applies Expect's algorithms and the rules for parameters and typ,
// then finds the key by kid, whose alg must be the header's.
func (h *header) check(allowed []string, keys KeyLookup) (PublicKey, error) {
	alg, err := h.algorithm(allowed)
	if err != nil {
		return PublicKey{}, err
	}
	if h.refused != "" {
		return PublicKey{}, fmt.Errorf("%w: parameter %q %s", ErrHeader, h.refused, refusedParams[h.refused])
	}
	if err := h.checkType(); err != nil {
		return PublicKey{}, err
	}
	key, err := h.key(keys)
	if err != nil {
		return PublicKey{}, err
	}
	if key.Algorithm != alg {
		return PublicKey{}, fmt.Errorf("%w: header alg %s does not match alg %q of key %q", ErrAlgorithm, alg, key.Algorithm, key.ID)
	}
	return key, nil
}

// algorithm returns the header's alg if it is one this package implements
// and the caller allows. Comparison is exact: "eddsa" is not EdDSA.
func (h *header) algorithm(allowed []string) (string, error) {
	if !h.alg.present || !h.alg.isString {
		return "", fmt.Errorf("%w: header has no alg string", ErrAlgorithm)
	}
	var alg string
	switch string(h.alg.value) {
	case EdDSA:
		alg = EdDSA
	case ES256:
		alg = ES256
	default:
		if bytes.EqualFold(h.alg.value, []byte("none")) {
			return "", fmt.Errorf("%w: alg %q: unsigned tokens are never accepted", ErrAlgorithm, h.alg.value)
		}
		return "", fmt.Errorf("%w: alg %q is not supported", ErrAlgorithm, h.alg.value)
	}
	if len(allowed) == 0 {
		allowed = defaultAlgorithms
	}
	for _, a := range allowed {
		if a == alg {
			return alg, nil
		}
	}
	return "", fmt.Errorf("%w: alg %s is not allowed", ErrAlgorithm, alg)
}

var defaultAlgorithms = []string{EdDSA}

// checkType requires the RFC 9068 media type, with or without the
// "application/" prefix; media types compare case-insensitively.
func (h *header) checkType() error {
	if !h.typ.present || !h.typ.isString {
		return fmt.Errorf("%w: header has no typ string, want \"at+jwt\"", ErrType)
	}
	if isAccessType(h.typ.value) {
		return nil
	}
	return fmt.Errorf("%w: typ %q, want \"at+jwt\"", ErrType, h.typ.value)
}

// isAccessType reports whether typ names an access token: at+jwt (RFC 9068
// §2.1), case-insensitive, with or without the "application/" prefix.
func isAccessType(typ []byte) bool {
	return bytes.EqualFold(typ, []byte("at+jwt")) || bytes.EqualFold(typ, []byte("application/at+jwt"))
}

// key looks up the kid. The kid is attacker-chosen bytes and is used for
// nothing but this lookup.
func (h *header) key(keys KeyLookup) (PublicKey, error) {
	if !h.kid.present || !h.kid.isString || len(h.kid.value) == 0 {
		return PublicKey{}, fmt.Errorf("%w: header has no kid string", ErrHeader)
	}
	if keys == nil {
		return PublicKey{}, fmt.Errorf("%w: no key set", ErrUnknownKey)
	}
	key, ok := keys.Lookup(string(h.kid.value))
	if !ok {
		return PublicKey{}, fmt.Errorf("%w: kid %q", ErrUnknownKey, h.kid.value)
	}
	return key, nil
}
