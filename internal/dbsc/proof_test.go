package dbsc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/keyproof"
)

func newKey(t *testing.T) *ecdsa.PrivateKey { return newBenchKey(t) }

func newBenchKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t *testing.T, k *ecdsa.PrivateKey, typ string, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, err := keyproof.Sign(k, typ, b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckRegistrationAndRefresh(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	device, thief := newKey(t), newKey(t)
	c := Challenge(testRT, now)
	reg := sign(t, device, ProofType, map[string]any{"jti": c, "authorization": "x"})
	key, err := CheckRegistration(reg, testRT, now)
	if err != nil {
		t.Fatalf("CheckRegistration(device's proof) = %v", err)
	}
	want, _ := keyproof.PublicKey(&device.PublicKey)
	if key.Thumbprint != want.Thumbprint {
		t.Fatalf("CheckRegistration key %s, want the device's %s", key.Thumbprint, want.Thumbprint)
	}
	tests := []struct {
		name  string
		proof string
		want  error
	}{
		{"the device's key, current challenge", sign(t, device, ProofType, map[string]any{"jti": c}), nil},
		{"another key", sign(t, thief, ProofType, map[string]any{"jti": c}), ErrProof},
		{"another typ", sign(t, device, "dpop+jwt", map[string]any{"jti": c}), ErrProof},
		{"not a JWS", "garbage", ErrProof},
		{"no jti", sign(t, device, ProofType, map[string]any{"sub": "x"}), ErrChallenge},
		{"a challenge of another token", sign(t, device, ProofType, map[string]any{"jti": Challenge(testRT+"2", now)}), ErrChallenge},
		{"a stale challenge", sign(t, device, ProofType, map[string]any{"jti": Challenge(testRT, now.Add(-ChallengeMaxAge-time.Second))}), ErrChallenge},
	}
	for _, tt := range tests {
		_, err := CheckRefresh(tt.proof, key, testRT, now)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: CheckRefresh = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestRegistrationRefusesUnsigned(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	// alg none, with a key in the header: the specification allows it, tegata does not.
	raw := "eyJhbGciOiJub25lIiwidHlwIjoiZGJzYytqd3QifQ.eyJqdGkiOiJ4In0."
	if _, err := CheckRegistration(raw, testRT, now); !errors.Is(err, ErrProof) {
		t.Errorf("CheckRegistration(alg none) = %v, want ErrProof", err)
	}
}
