package keyproof

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/tegata-dev/tegata/internal/jws"
	"github.com/tegata-dev/tegata/internal/strictjson"
)

// header holds the parameters of a proof's header Parse acts on, read in
// one pass without building a map: alg and typ when they are strings, the
// jwk's members, and the first parameter that makes the proof
// unacceptable.
type header struct {
	alg, typ          []byte
	algOK, typOK      bool
	jwkPresent, jwkOK bool // jwkOK: it is an object
	jwk               jwkFields
	refused           string
}

// refusedParams are the parameters refused in every JWS. Unlike an access
// token, a proof must carry its key, in jws.KeyParam.
var refusedParams = jws.RefusedParams

// readHeader reads the header JSON. It fails only on malformed JSON (a
// member twice at any depth included); what the parameters say is judged
// by check.
func readHeader(data []byte) (header, error) {
	var h header
	var seen memberNames
	err := strictjson.DecodeObject(data, "header", ErrMalformed, func(d *strictjson.Decoder, name []byte) error {
		if !seen.add(name) {
			return d.Errorf("duplicate member %q", name)
		}
		switch string(name) {
		case "alg":
			return readString(d, &h.alg, &h.algOK)
		case "typ":
			return readString(d, &h.typ, &h.typOK)
		case "jwk":
			h.jwkPresent = true
			if d.SkipSpace(); d.Peek() != '{' {
				_, err := d.Value()
				return err
			}
			h.jwkOK = true
			return h.jwk.readObject(d)
		}
		if _, refused := refusedParams[string(name)]; refused && h.refused == "" {
			h.refused = string(name)
		}
		_, err := d.Value()
		return err
	})
	return h, err
}

func readString(d *strictjson.Decoder, dst *[]byte, ok *bool) error {
	s, isString, err := d.StringValue()
	*dst, *ok = s, isString
	return err
}

// check applies the algorithm allow-list, the refused parameters and typ,
// and finds the key, which must suit the algorithm.
func (h *header) check(e Expect) (string, Key, error) {
	alg, err := h.algorithm(e.Algorithms)
	if err != nil {
		return "", Key{}, err
	}
	if h.refused != "" {
		return "", Key{}, fmt.Errorf("%w: parameter %q %s", ErrHeader, h.refused, refusedParams[h.refused])
	}
	if err := h.checkType(e.Type); err != nil {
		return "", Key{}, err
	}
	key, err := h.key(e.Key)
	if err != nil {
		return "", Key{}, err
	}
	if !key.suits(alg) {
		return "", Key{}, fmt.Errorf("%w: alg %s does not suit the key", ErrAlgorithm, alg)
	}
	return alg, key, nil
}

// algorithm returns the header's alg, as one of this package's constants,
// if the caller allows it.
func (h *header) algorithm(allowed []string) (string, error) {
	switch {
	case !h.algOK:
		return "", fmt.Errorf("%w: header has no alg string", ErrAlgorithm)
	case bytes.EqualFold(h.alg, []byte("none")):
		return "", fmt.Errorf("%w: alg %q: unsigned proofs are never accepted", ErrAlgorithm, h.alg)
	}
	var alg string
	switch string(h.alg) {
	case EdDSA:
		alg = EdDSA
	case Ed25519:
		alg = Ed25519
	case ES256:
		alg = ES256
	case RS256:
		alg = RS256
	default:
		return "", fmt.Errorf("%w: alg %q is not allowed", ErrAlgorithm, h.alg)
	}
	if allowed == nil {
		allowed = DefaultAlgorithms
	}
	for _, a := range allowed {
		if a == alg || (a == EdDSA && alg == Ed25519) {
			return alg, nil
		}
	}
	return "", fmt.Errorf("%w: alg %q is not allowed", ErrAlgorithm, alg)
}

// checkType compares typ as media types compare: case-insensitively, with
// or without "application/".
func (h *header) checkType(want string) error {
	if !h.typOK {
		return fmt.Errorf("%w: header has no typ string, want %q", ErrType, want)
	}
	typ := h.typ
	if len(typ) > len("application/") && strings.EqualFold(string(typ[:len("application/")]), "application/") {
		typ = typ[len("application/"):]
	}
	if want == "" || !strings.EqualFold(string(typ), want) {
		return fmt.Errorf("%w: typ %q, want %q", ErrType, h.typ, want)
	}
	return nil
}

// key returns the key the proof is to be verified with: the jwk header's,
// or the caller's (which a jwk header present must match).
func (h *header) key(known *Key) (Key, error) {
	switch {
	case !h.jwkPresent && known == nil:
		return Key{}, fmt.Errorf("%w: header has no jwk", ErrKey)
	case !h.jwkPresent:
		return *known, nil
	case !h.jwkOK:
		return Key{}, fmt.Errorf("%w: header jwk is not an object", ErrKey)
	}
	key, err := h.jwk.key()
	if err != nil {
		return Key{}, err
	}
	if known != nil && key.Thumbprint != known.Thumbprint {
		return Key{}, fmt.Errorf("%w: header jwk is not the key expected", ErrKey)
	}
	return key, nil
}

// memberNames refuses a member name twice in one object without
// allocating for the dozen members a proof's objects hold; past that it
// keeps them in a map. The names alias the JSON being read, which must
// outlive it.
type memberNames struct {
	few  [12][]byte
	n    int
	many map[string]bool
}

// add reports false if name was added before.
func (s *memberNames) add(name []byte) bool {
	if s.many != nil {
		if s.many[string(name)] {
			return false
		}
		s.many[string(name)] = true
		return true
	}
	for _, f := range s.few[:s.n] {
		if bytes.Equal(f, name) {
			return false
		}
	}
	if s.n < len(s.few) {
		s.few[s.n] = name
		s.n++
		return true
	}
	s.many = make(map[string]bool, 2*len(s.few))
	for _, f := range s.few {
		s.many[string(f)] = true
	}
	s.many[string(name)] = true
	return true
}
