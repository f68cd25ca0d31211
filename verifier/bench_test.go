package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/keyproof"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// benchLocal is a local verifier whose revocation set holds entries, as a
// busy one would, so lookups are not against empty maps.
func benchLocal(b *testing.B, cacheSize int) *local {
	b.Helper()
	l := newLocal(b, cacheSize)
	for i := 0; i < 10_000; i++ {
		e := revocation.Entry{Seq: int64(i + 1), Kind: revocation.KindSession, Session: randomID(),
			ExpiresAt: l.clock.In(time.Hour)}
		if err := l.set.Apply(e); err != nil {
			b.Fatalf("Apply = %v", err)
		}
	}
	return l
}

// tokens signs n distinct valid tokens.
func (l *local) tokens(b *testing.B, n int) []string {
	b.Helper()
	out := make([]string, n)
	for i := range out {
		c := l.claims("user-" + randomID())
		c.Extra = map[string]any{"roles": []any{"reader"}}
		out[i] = sign(b, l.key, c)
	}
	return out
}

// BenchmarkVerifyNew measures a token never seen before: the cache is
// disabled, so every call checks the signature and parses the claims.
func BenchmarkVerifyNew(b *testing.B) {
	l := benchLocal(b, -1)
	pool := l.tokens(b, 1024)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.v.Verify(ctx, pool[i%len(pool)]); err != nil {
			b.Fatalf("Verify = %v", err)
		}
	}
}

// BenchmarkVerifyCached measures the same token again: the cache hit path,
// which still checks expiry, the key and the revocation set, and hands out
// the cached (immutable) claims.
func BenchmarkVerifyCached(b *testing.B) {
	benchCached(b, (*Verifier).Verify)
}

func benchCached(b *testing.B, verify func(*Verifier, context.Context, string) (*Claims, error)) {
	l := benchLocal(b, 0)
	raw := l.tokens(b, 1)[0]
	ctx := context.Background()
	if _, err := verify(l.v, ctx, raw); err != nil {
		b.Fatalf("Verify = %v", err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := verify(l.v, ctx, raw); err != nil {
			b.Fatalf("Verify = %v", err)
		}
	}
}

// BenchmarkVerifyParallel measures cache hits from all cores over a mix of
// tokens, which spreads them over cache and revocation set shards.
func BenchmarkVerifyParallel(b *testing.B) {
	l := benchLocal(b, 0)
	pool := l.tokens(b, 256)
	ctx := context.Background()
	for _, raw := range pool {
		if _, err := l.v.Verify(ctx, raw); err != nil {
			b.Fatalf("Verify = %v", err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine starts elsewhere in the pool, as independent clients
		// would; in lockstep they would contend on the same shards.
		i := int(next.Add(97))
		for pb.Next() {
			if _, err := l.v.Verify(ctx, pool[i%len(pool)]); err != nil {
				b.Errorf("Verify = %v", err)
				return
			}
			i += 7
		}
	})
}

// BenchmarkClaimsCopy measures Claims.Copy, the deep copy an app asks for
// when it wants claims of its own to change. The claims are those of the
// tokens above.
func BenchmarkClaimsCopy(b *testing.B) {
	l := benchLocal(b, 0)
	c, err := l.v.Verify(context.Background(), l.tokens(b, 1)[0])
	if err != nil {
		b.Fatalf("Verify = %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Copy()
	}
}

// BenchmarkVerifyDPoP measures a DPoP-bound token seen before (a cache
// hit) presented with a fresh proof, as every DPoP request is: the proof's
// signature (Ed25519, as BenchmarkEd25519Verify's floor), its claims, the
// htu comparison and the replay cache. The proofs are signed before the
// timer starts.
func BenchmarkVerifyDPoP(b *testing.B) {
	benchDPoP(b, func(b *testing.B) crypto.Signer {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		return k
	})
}

// BenchmarkVerifyDPoPES256 is BenchmarkVerifyDPoP with a P-256 key, whose
// floor is token's BenchmarkES256Verify.
func BenchmarkVerifyDPoPES256(b *testing.B) {
	benchDPoP(b, func(b *testing.B) crypto.Signer {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		return k
	})
}

func benchDPoP(b *testing.B, newKey func(*testing.B) crypto.Signer) {
	l := benchLocal(b, 0)
	l.v.proofs = dpop.NewChecker(dpop.Config{MaxProofs: 1 << 24})
	key := newKey(b)
	jkt, err := keyproof.PublicKey(key.Public())
	if err != nil {
		b.Fatal(err)
	}
	c := l.claims("alice")
	c.JKT = jkt.Thumbprint
	raw := sign(b, l.key, c)
	ctx := context.Background()
	const url = "https://api.example/orders"
	proofs := make([]string, min(b.N, 1<<16))
	for i := range proofs {
		if proofs[i], err = dpop.NewProof(key, "GET", url, raw, "", l.clock.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%len(proofs) == 0 {
			// Past the pool, the proofs would be replays: forget them, out
			// of the timer.
			b.StopTimer()
			l.v.proofs = dpop.NewChecker(dpop.Config{MaxProofs: 1 << 24})
			b.StartTimer()
		}
		if _, err := l.v.VerifyDPoP(ctx, raw, proofs[i%len(proofs)], "GET", url); err != nil {
			b.Fatalf("VerifyDPoP = %v", err)
		}
	}
}
