package revocation

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

const benchEntries = 1_000_000

// benchSet returns a set of benchEntries live session entries and a mix of
// session ids to look up: even indexes are present, odd ones are not.
func benchSet(b *testing.B) (*Set, []string) {
	b.Helper()
	s := NewSet(0)
	exp := t0.Add(time.Hour)
	for i := range uint64(benchEntries) {
		if err := s.Apply(session(int64(i+1), sidN(i), exp)); err != nil {
			b.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	probes := make([]string, 1<<16)
	for i := range probes {
		n := r.Uint64N(benchEntries)
		if i%2 == 1 {
			n += benchEntries // never applied
		}
		probes[i] = sidN(n)
	}
	b.ResetTimer()
	return s, probes
}

func BenchmarkRevocationLookup(b *testing.B) {
	s, probes := benchSet(b)
	hits := 0
	for i := 0; b.Loop(); i++ {
		if _, ok := s.Revoked(probes[i&(len(probes)-1)], "alice", 3); ok {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no hits")
	}
}

func BenchmarkRevocationLookupParallel(b *testing.B) {
	s, probes := benchSet(b)
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(probes))
		for pb.Next() {
			s.Revoked(probes[i&(len(probes)-1)], "alice", 3)
			i++
		}
	})
}

// BenchmarkSetMemory reports the heap held per live session entry at
// 1,000,000 entries.
func BenchmarkSetMemory(b *testing.B) {
	exp := t0.Add(time.Hour)
	for b.Loop() {
		before := heapInUse()
		s := NewSet(0)
		for i := range uint64(benchEntries) {
			_ = s.Apply(session(int64(i+1), sidN(i), exp))
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/benchEntries, "B/entry")
		runtime.KeepAlive(s)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
