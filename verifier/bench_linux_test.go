//go:build linux

package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/keyproof"
	"github.com/tegata-dev/tegata/token"
)

// BenchmarkDPoPCPURatio runs a DPoP-bound verification (as
// BenchmarkVerifyDPoP: cached token, fresh proof) and the bare signature
// check of an access token of the same algorithm (token's
// BenchmarkEd25519Verify and BenchmarkES256Verify) in alternating batches
// on one locked thread, and reports the ratio of the thread CPU time each
// took (cpu-ratio). On a loaded machine the wall-clock medians of separate
// benchmarks move with everyone else's work; CPU time taken side by side
// does much less.
func BenchmarkDPoPCPURatio(b *testing.B) {
	b.Run("Ed25519", func(b *testing.B) {
		benchCPURatio(b, func(b *testing.B) crypto.Signer {
			k, err := token.GenerateKey(token.EdDSA)
			if err != nil {
				b.Fatal(err)
			}
			return k
		}, token.EdDSA)
	})
	b.Run("ES256", func(b *testing.B) {
		benchCPURatio(b, func(b *testing.B) crypto.Signer {
			k, err := token.GenerateKey(token.ES256)
			if err != nil {
				b.Fatal(err)
			}
			return k
		}, token.ES256)
	})
}

func benchCPURatio(b *testing.B, newKey func(*testing.B) crypto.Signer, alg string) {
	l := benchLocal(b, 0)
	l.v.proofs = dpop.NewChecker(dpop.Config{MaxProofs: 1 << 24})
	key := newKey(b)
	bound, proofs := boundWithProofs(b, l, key, b.N)
	floor := bareVerify(b, l, alg)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx := context.Background()
	const batch = 64
	var dpopCPU, floorCPU time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		t0 := threadCPU()
		for i := done; i < done+n; i++ {
			if _, err := l.v.VerifyDPoP(ctx, bound, proofs[i], "GET", benchURL); err != nil {
				b.Fatalf("VerifyDPoP = %v", err)
			}
		}
		t1 := threadCPU()
		for range n {
			floor()
		}
		dpopCPU, floorCPU = dpopCPU+t1-t0, floorCPU+threadCPU()-t1
	}
	b.ReportMetric(float64(dpopCPU)/float64(floorCPU), "cpu-ratio")
	b.ReportMetric(float64(dpopCPU.Nanoseconds())/float64(b.N), "dpop-cpu-ns/op")
	b.ReportMetric(float64(floorCPU.Nanoseconds())/float64(b.N), "bare-cpu-ns/op")
}

const benchURL = "https://api.example/orders"

// boundWithProofs signs a token bound to key and n fresh proofs for it.
func boundWithProofs(b *testing.B, l *local, key crypto.Signer, n int) (string, []string) {
	b.Helper()
	jkt, err := keyproof.PublicKey(key.Public())
	if err != nil {
		b.Fatal(err)
	}
	c := l.claims("alice")
	c.JKT = jkt.Thumbprint
	raw := sign(b, l.key, c)
	proofs := make([]string, n)
	for i := range proofs {
		if proofs[i], err = dpop.NewProof(key, "GET", benchURL, raw, "", l.clock.Now()); err != nil {
			b.Fatal(err)
		}
	}
	return raw, proofs
}

// bareVerify returns the bare signature check of an access token signed
// with alg, as token's floor benchmarks make it.
func bareVerify(b *testing.B, l *local, alg string) func() {
	b.Helper()
	k := newSigningKey(b, "floor", alg)
	c := l.claims("bob")
	c.Extra = map[string]any{"roles": []any{"reader"}}
	raw := sign(b, k, c)
	dot := strings.LastIndexByte(raw, '.')
	input := []byte(raw[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(raw[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	switch pub := k.Private.Public().(type) {
	case ed25519.PublicKey:
		return func() {
			if !ed25519.Verify(pub, input, sig) {
				b.Fatal("ed25519.Verify = false")
			}
		}
	case *ecdsa.PublicKey:
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return func() {
			digest := sha256.Sum256(input)
			if !ecdsa.Verify(pub, digest[:], r, s) {
				b.Fatal("ecdsa.Verify = false")
			}
		}
	}
	b.Fatalf("no bare check for %s", alg)
	return nil
}

// threadCPU is the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
