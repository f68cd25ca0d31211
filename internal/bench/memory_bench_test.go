package bench_test

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkRandomRead32MiB is a reference, not a tegata figure: one
// dependent random 8-byte read in a 32 MiB array, about the footprint of a
// 1,000,000-entry revocation set's tables. It is the floor under any
// lookup that must touch a random place in a table of that size on this
// machine (cache and TLB misses), which BenchmarkRevocationLookup is set
// against.
func BenchmarkRandomRead32MiB(b *testing.B) {
	const n = 32 << 20 / 8
	next := make([]uint64, n)
	// One random cycle through every slot (Sattolo's algorithm), so each
	// read depends on the previous one and the prefetcher cannot guess.
	for i := range next {
		next[i] = uint64(i)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := n - 1; i > 0; i-- {
		j := r.IntN(i)
		next[i], next[j] = next[j], next[i]
	}
	p := uint64(0)
	for b.Loop() {
		p = next[p]
	}
	if p == n {
		b.Fatal("impossible")
	}
}
