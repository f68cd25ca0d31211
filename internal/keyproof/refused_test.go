package keyproof

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/internal/jws"
)

// TestRefusedParams: a proof carrying any parameter every JWS refuses
// (jws.RefusedParams) is refused with ErrHeader naming it, while the key
// it proves (jws.KeyParam) is what it must carry.
func TestRefusedParams(t *testing.T) {
	s := newSigners(t)
	e := Expect{Type: "dpop+jwt"}
	withKey := `{"typ":"dpop+jwt","alg":"EdDSA","` + jws.KeyParam + `":` + jwkOf(t, s.ed)
	for _, name := range slices.Sorted(maps.Keys(jws.RefusedParams)) {
		proof := signRaw(t, s.ed, EdDSA, withKey+`,"`+name+`":"x"}`, testPayload)
		if _, err := Parse(proof, e, nil); !errors.Is(err, ErrHeader) || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("Parse(header with %q) = %v, want ErrHeader naming it", name, err)
		}
	}
	if _, err := Parse(signRaw(t, s.ed, EdDSA, withKey+`}`, testPayload), e, nil); err != nil {
		t.Errorf("Parse(header with its key) = %v, want nil", err)
	}
	if _, err := Parse(signRaw(t, s.ed, EdDSA, `{"typ":"dpop+jwt","alg":"EdDSA"}`, testPayload), e, nil); !errors.Is(err, ErrKey) {
		t.Errorf("Parse(header without its key) = %v, want ErrKey", err)
	}
}
