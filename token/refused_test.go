package token

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/internal/jws"
)

// TestRefusedParams: an access token carrying any parameter every JWS
// refuses (jws.RefusedParams), or an embedded key (jws.KeyParam), is
// refused with ErrHeader naming it.
func TestRefusedParams(t *testing.T) {
	keys := testKeys(t)
	ks := keys.keySet(t)
	for _, name := range append(slices.Sorted(maps.Keys(jws.RefusedParams)), jws.KeyParam) {
		raw := signRaw(t, keys.edSigner(), headerFor(EdDSA, testEdKID).add(name, `"x"`).json(), basePayload().json())
		if _, err := Verify(raw, ks, testExpect(), testNow); !errors.Is(err, ErrHeader) || !strings.Contains(err.Error(), quote(name)) {
			t.Errorf("Verify(header with %q) = %v, want ErrHeader naming it", name, err)
		}
	}
}
