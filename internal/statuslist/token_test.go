package statuslist

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// recordSigner keeps what it was asked to sign.
type recordSigner struct {
	typ     string
	payload []byte
}

func (s *recordSigner) SignJWT(typ string, payload []byte) (string, error) {
	s.typ, s.payload = typ, payload
	return "signed", nil
}

// TestTokenClaims: the Status List Token's payload is the draft's §5.1,
// and claims the draft requires are checked before signing.
func TestTokenClaims(t *testing.T) {
	iat := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := newTokenClaims("https://auth.test.example", "https://auth.test.example/v1/statuslists/1", 1, "eNrbuRgAAhcBXQ", iat, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var s recordSigner
	if tok, err := c.sign(&s); err != nil || tok != "signed" {
		t.Fatalf("sign = %q, %v", tok, err)
	}
	var got map[string]any
	if err := json.Unmarshal(s.payload, &got); err != nil {
		t.Fatal(err)
	}
	want := `{"exp":1767225660,"iat":1767225600,"iss":"https://auth.test.example","status_list":{"bits":1,"lst":"eNrbuRgAAhcBXQ"},"sub":"https://auth.test.example/v1/statuslists/1","ttl":60}`
	if b, _ := json.Marshal(got); string(b) != want || s.typ != "statuslist+jwt" {
		t.Errorf("signed %s %s, want statuslist+jwt %s", s.typ, b, want)
	}
	for _, bad := range []struct {
		name, uri, lst string
		bits           int
		ttl            time.Duration
	}{
		{"no sub", "", "l", 1, time.Minute},
		{"no lst", "u", "", 1, time.Minute},
		{"3 bits", "u", "l", 3, time.Minute},
		{"no ttl", "u", "l", 1, 0},
	} {
		if _, err := newTokenClaims("i", bad.uri, bad.bits, bad.lst, iat, bad.ttl); err == nil || !strings.Contains(err.Error(), "statuslist:") {
			t.Errorf("newTokenClaims(%s) = %v, want an error", bad.name, err)
		}
	}
}
