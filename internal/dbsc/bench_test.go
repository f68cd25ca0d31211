package dbsc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/keyproof"
)

// BenchmarkCheckRefresh is what the authority adds to a refresh of a
// DBSC-bound session (inside its transaction): parse the stored key,
// verify the ES256 proof, check the challenge.
//
//	go test -bench . -run '^$' ./internal/dbsc
func BenchmarkCheckRefresh(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	k := newBenchKey(b)
	pub, err := keyproof.PublicKey(&k.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	claims, _ := json.Marshal(map[string]string{"jti": Challenge(testRT, now)})
	proof, err := keyproof.Sign(k, ProofType, claims)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		key, err := keyproof.ParseJWK(pub.JSON)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := CheckRefresh(proof, key, testRT, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChallenge is what the gate spends per 403.
func BenchmarkChallenge(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	for b.Loop() {
		_ = Challenge(testRT, now)
	}
}
