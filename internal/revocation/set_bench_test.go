package revocation

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

const benchEntries = 1_000_000

// benchSubjects is how many subject cutoffs the benchmark set also holds.
const benchSubjects = 10_000

type probe struct{ sid, sub string }

// benchSet returns a set of benchEntries live session entries and
// benchSubjects subject cutoffs, and a mix of lookups: half of the session
// ids are present, and half of the subjects (never at a revoked generation,
// so that the subject is looked up too).
func benchSet(b *testing.B) (*Set, []probe) {
	b.Helper()
	s := NewSet(0)
	exp := t0.Add(time.Hour)
	for i := range uint64(benchEntries) {
		if err := s.Apply(session(int64(i+1), sidN(i), exp)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range benchSubjects {
		if err := s.Apply(subject(int64(i+1), fmt.Sprint("user-", i), 3, exp)); err != nil {
			b.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	probes := make([]probe, 1<<16)
	for i := range probes {
		n := r.Uint64N(benchEntries)
		if i%2 == 1 {
			n += benchEntries // never applied
		}
		probes[i] = probe{sidN(n), fmt.Sprint("user-", r.IntN(2*benchSubjects))}
	}
	b.ResetTimer()
	return s, probes
}

func BenchmarkRevocationLookup(b *testing.B) {
	s, probes := benchSet(b)
	hits := 0
	for i := 0; b.Loop(); i++ {
		p := &probes[i&(len(probes)-1)]
		if _, ok := s.Revoked(p.sid, p.sub, 3); ok {
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
			p := &probes[i&(len(probes)-1)]
			s.Revoked(p.sid, p.sub, 3)
			i++
		}
	})
}

// BenchmarkRevocationLookupSubjects checks subjects only, in a set holding
// 1,000,000 subject cutoffs (what a mass sign-out leaves): half of the
// subjects probed are present.
func BenchmarkRevocationLookupSubjects(b *testing.B) {
	s := NewSet(0)
	exp := t0.Add(time.Hour)
	for i := range benchEntries {
		if err := s.Apply(subject(int64(i+1), fmt.Sprint("user-", i), 3, exp)); err != nil {
			b.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	subs := make([]string, 1<<16)
	for i := range subs {
		subs[i] = fmt.Sprint("user-", r.IntN(2*benchEntries))
	}
	hits := 0
	for i := 0; b.Loop(); i++ {
		if _, ok := s.Revoked("", subs[i&(len(subs)-1)], 2); ok {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no hits")
	}
}

// BenchmarkSetMemory reports the heap held per live session entry at
// 1,000,000 entries.
func BenchmarkSetMemory(b *testing.B) {
	exp := t0.Add(time.Hour)
	benchMemory(b, benchEntries, func(i int) Entry { return session(int64(i+1), sidN(uint64(i)), exp) })
}

// BenchmarkSetMemorySubjects reports the heap held per live subject cutoff,
// as a mass sign-out leaves them, at 100,000 and 1,000,000 subjects. Each
// subject string is made fresh, as decoding the feed makes it, so that a
// set keeping the strings pays for them.
func BenchmarkSetMemorySubjects(b *testing.B) {
	exp := t0.Add(time.Hour)
	for _, n := range []int{100_000, benchEntries} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			benchMemory(b, n, func(i int) Entry { return subject(int64(i+1), fmt.Sprint("user-", i), 3, exp) })
		})
	}
}

// benchMemory reports the heap a set holds per entry once entry(i) has been
// applied for every i below n.
func benchMemory(b *testing.B, n int, entry func(i int) Entry) {
	for b.Loop() {
		before := heapInUse()
		s := NewSet(0)
		for i := range n {
			if err := s.Apply(entry(i)); err != nil {
				b.Fatal(err)
			}
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(n), "B/entry")
		runtime.KeepAlive(s)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkPrune drops half of 1,000,000 entries: every shard is rebuilt
// aside, and readers do not wait.
func BenchmarkPrune(b *testing.B) {
	benchPrune(b, 2)
}

// BenchmarkPruneInPlace drops 1 in 200 of 1,000,000 entries (about 40 a
// shard): deleted in place, under the seqlock. Readers of a shard wait for
// at most its part, reported as ns/shard.
func BenchmarkPruneInPlace(b *testing.B) {
	benchPrune(b, 200)
}

func benchPrune(b *testing.B, every uint64) {
	s := NewSet(0)
	var expiring []string
	for i := range uint64(benchEntries) {
		if i%every == 0 {
			expiring = append(expiring, sidN(i))
			continue
		}
		_ = s.Apply(session(int64(i+1), sidN(i), t0.Add(2*time.Hour)))
	}
	for b.Loop() {
		b.StopTimer()
		for i, sid := range expiring {
			_ = s.Apply(session(int64(i+1), sid, t0.Add(time.Hour)))
		}
		b.StartTimer()
		if n := s.Prune(t0.Add(time.Hour)); n != len(expiring) {
			b.Fatalf("Prune() = %d, want %d", n, len(expiring))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/shardCount, "ns/shard")
}
