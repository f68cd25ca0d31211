package revocation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestApplyManyAsApply: a set given entries in batches (ApplyMany) answers
// every lookup, holds the same count and prunes the same entries as one
// given them one by one (Apply), across tables that grow within a batch,
// repeated keys (in one batch and across batches), raised generations and
// expiries, and session ids in and out of tegata's format.
func TestApplyManyAsApply(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var es []Entry
	for i := range 6000 {
		seq := int64(i + 1)
		exp := t0.Add(time.Duration(1+r.IntN(4)) * time.Hour)
		switch k := r.IntN(10); {
		case k < 5:
			es = append(es, subject(seq, fmt.Sprint("user-", r.IntN(3000)), int64(r.IntN(5)), exp))
		case k < 9:
			es = append(es, session(seq, sidN(uint64(r.IntN(2000))), exp))
		default:
			es = append(es, session(seq, fmt.Sprint("other ", r.IntN(100)), exp))
		}
	}
	one, many := NewSet(0), NewSet(0)
	for _, e := range es {
		if err := one.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	for rest := es; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(1500))
		if got, err := many.ApplyMany(rest[:n]); got != n || err != nil {
			t.Fatalf("ApplyMany(%d entries) = %d, %v, want %d, nil", n, got, err, n)
		}
		rest = rest[n:]
	}
	if one.Len() != many.Len() {
		t.Fatalf("Len() = %d after ApplyMany, %d after Apply", many.Len(), one.Len())
	}
	check := func(when string) {
		t.Helper()
		for i := range 3000 {
			sub := fmt.Sprint("user-", i)
			for gen := range int64(6) {
				k1, ok1 := one.Revoked("", sub, gen)
				k2, ok2 := many.Revoked("", sub, gen)
				if k1 != k2 || ok1 != ok2 {
					t.Fatalf("%s: Revoked(%q, %d) = %q, %v after ApplyMany, %q, %v after Apply", when, sub, gen, k2, ok2, k1, ok1)
				}
			}
		}
		for i := range 2100 {
			for _, sid := range []string{sidN(uint64(i)), fmt.Sprint("other ", i)} {
				_, ok1 := one.Revoked(sid, "", 0)
				_, ok2 := many.Revoked(sid, "", 0)
				if ok1 != ok2 {
					t.Fatalf("%s: Revoked(%q) = %v after ApplyMany, %v after Apply", when, sid, ok2, ok1)
				}
			}
		}
	}
	check("applied")
	for h := 1; h <= 4; h++ {
		now := t0.Add(time.Duration(h) * time.Hour)
		if n1, n2 := one.Prune(now), many.Prune(now); n1 != n2 {
			t.Fatalf("Prune(+%dh) = %d after ApplyMany, %d after Apply", h, n2, n1)
		}
		check(fmt.Sprintf("pruned at +%dh", h))
	}
}

// TestApplyManyStops: ApplyMany records exactly the entries before the
// first that Apply would refuse, a malformed one or one that would
// overfill the set, and returns that entry's error.
func TestApplyManyStops(t *testing.T) {
	exp := t0.Add(time.Hour)
	tests := []struct {
		name    string
		max     int
		es      []Entry
		wantN   int
		wantErr error
	}{
		{"malformed", 0, []Entry{subject(1, "a", 1, exp), session(2, "", exp), subject(3, "b", 1, exp)}, 1, ErrInvalidEntry},
		{"unknown kind", 0, []Entry{subject(1, "a", 1, exp), {Seq: 2, Kind: "device", Session: "x"}}, 1, ErrInvalidEntry},
		{"full", 3, []Entry{subject(1, "a", 1, exp), subject(2, "a", 2, exp), subject(3, "b", 1, exp), session(4, sidN(1), exp),
			subject(5, "c", 1, exp), subject(6, "b", 3, exp)}, 4, ErrFull},
		{"room of repeats given back", 4, []Entry{subject(1, "a", 1, exp), subject(2, "a", 2, exp), subject(3, "b", 1, exp),
			subject(4, "b", 3, exp)}, 4, nil},
		{"other session ids", 4, []Entry{session(1, "other 1", exp), session(2, "other 1", exp.Add(time.Hour)), subject(3, "c", 1, exp)}, 3, nil},
		{"fits, repeats counted once", 3, []Entry{subject(1, "a", 1, exp), subject(2, "a", 2, exp), subject(3, "b", 1, exp),
			session(4, sidN(1), exp), subject(5, "b", 3, exp)}, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, want := NewSet(tt.max), NewSet(tt.max)
			n, err := s.ApplyMany(tt.es)
			if n != tt.wantN || !errors.Is(err, tt.wantErr) {
				t.Fatalf("ApplyMany() = %d, %v, want %d, %v", n, err, tt.wantN, tt.wantErr)
			}
			for _, e := range tt.es[:n] {
				if err := want.Apply(e); err != nil {
					t.Fatal(err)
				}
			}
			if s.Len() != want.Len() {
				t.Fatalf("Len() = %d, want %d (the entries before the refused one)", s.Len(), want.Len())
			}
			for _, sub := range []string{"a", "b", "c"} {
				for gen := range int64(4) {
					k1, ok1 := want.Revoked("", sub, gen)
					k2, ok2 := s.Revoked("", sub, gen)
					if k1 != k2 || ok1 != ok2 {
						t.Fatalf("Revoked(%q, %d) = %q, %v, want %q, %v", sub, gen, k2, ok2, k1, ok1)
					}
				}
			}
		})
	}
}

// TestApplyManyConcurrentReaders: readers looking up subjects and sessions
// while batches, and Grow ahead of them, grow the tables never miss an entry recorded before their
// lookup began, nor see one that was never recorded (run with -race).
func TestApplyManyConcurrentReaders(t *testing.T) {
	s := NewSet(0)
	exp := t0.Add(time.Hour)
	const n = 20_000
	if _, err := s.ApplyMany([]Entry{subject(1, "early", 1, exp), session(2, sidN(1<<40), exp)}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, ok := s.Revoked("", "early", 0); !ok {
					errs <- "the early subject went missing"
					return
				}
				if _, ok := s.Revoked(sidN(1<<40), "", 0); !ok {
					errs <- "the early session went missing"
					return
				}
				if _, ok := s.Revoked(sidN(uint64(n+i)), fmt.Sprint("never-", i), 0); ok {
					errs <- "an entry never recorded was found"
					return
				}
			}
		}()
	}
	for i := 0; i < n; i += 1000 {
		batch := make([]Entry, 0, 1000)
		for j := i; j < i+1000; j++ {
			if j%2 == 0 {
				batch = append(batch, subject(int64(j+3), fmt.Sprint("user-", j), 1, exp))
			} else {
				batch = append(batch, session(int64(j+3), sidN(uint64(j)), exp))
			}
		}
		if i%4000 == 0 {
			s.Grow(KindSubject, 2000)
			s.Grow(KindSession, 2000)
		}
		if _, err := s.ApplyMany(batch); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if s.Len() != n+2 {
		t.Fatalf("Len() = %d, want %d", s.Len(), n+2)
	}
}

// TestGrow: a set grown ahead of a bulk keeps every entry it held, and the
// bulk's entries then land in the tables Grow made (nearly every shard's
// table stays the one Grow made; without Grow every one is replaced) and
// are found; a set with a maximum makes room for no more than it has left.
func TestGrow(t *testing.T) {
	exp := t0.Add(time.Hour)
	for _, k := range []Kind{KindSubject, KindSession} {
		t.Run(string(k), func(t *testing.T) {
			const n = 10_000
			entry := func(i int) Entry {
				if k == KindSubject {
					return subject(int64(i+1), fmt.Sprint("bulk-", i), 2, exp)
				}
				return session(int64(i+1), sidN(uint64(i+1)), exp)
			}
			s := NewSet(0)
			mustApply(t, s, subject(1, "before", 1, exp))
			mustApply(t, s, session(2, sidN(1<<50), exp))
			s.Grow(k, n)
			if _, ok := s.Revoked("", "before", 0); !ok || s.Len() != 2 {
				t.Fatalf("after Grow: Revoked(before) = %v, Len() = %d, want true, 2", ok, s.Len())
			}
			if _, ok := s.Revoked(sidN(1<<50), "", 0); !ok {
				t.Fatal("after Grow: the session recorded before is not revoked")
			}
			before := tables(s, k)
			es := make([]Entry, n)
			for i := range es {
				es[i] = entry(i)
			}
			for ev := range slices.Chunk(es, 1000) {
				if _, err := s.ApplyMany(ev); err != nil {
					t.Fatal(err)
				}
			}
			replaced := 0
			for i, p := range tables(s, k) {
				if p != before[i] {
					replaced++
				}
			}
			if replaced > shardCount/16 {
				t.Errorf("applying %d entries after Grow(%d) replaced %d of %d tables", n, n, replaced, shardCount)
			}
			for _, e := range es {
				if _, ok := s.Revoked(e.Session, e.Subject, 1); !ok {
					t.Fatalf("Revoked(%q, %q) = false after Grow and ApplyMany", e.Session, e.Subject)
				}
			}
			if s.Len() != n+2 {
				t.Fatalf("Len() = %d, want %d", s.Len(), n+2)
			}
		})
	}
	t.Run("maximum", func(t *testing.T) {
		s := NewSet(100)
		mustApply(t, s, subject(1, "before", 1, exp))
		s.Grow(KindSubject, 1_000_000)
		total := 0
		for i := range s.shards {
			total += s.shards[i].subjects.Load().size()
		}
		if total > 2*shardCount*minTableSize {
			t.Fatalf("Grow(1,000,000) on a set of at most 100 entries made %d slots", total)
		}
	})
}

// TestGrowSizesAsApplyDoes: a table grown ahead of a bulk (Grow) is the
// table a batch grows it to when the batch is grown for as many entries
// (a batch is grown for its own and half as many again): one sizing rule,
// for subject and session tables alike.
func TestGrowSizesAsApplyDoes(t *testing.T) {
	for _, k := range []Kind{KindSubject, KindSession} {
		for _, n := range []int{1000, 10_000, 100_000} {
			for bulkShare(n)%3 != 0 {
				n++
			}
			grown := NewSet(0)
			grown.Grow(k, n)
			applied := NewSet(0)
			sh := &applied.shards[0]
			m := 2 * bulkShare(n) / 3
			keys := make([]batchKey, m)
			for i := range keys {
				k0, k1 := uint64(i+1)<<20, uint64(i+1)
				keys[i] = batchKey{h: hashKey(k0, k1, sh.sessions.Load().seed), k0: k0, k1: k1, gen: 1, exp: 1, subject: k == KindSubject}
			}
			sh.mu.Lock()
			if k == KindSubject {
				applySubjects(sh, keys, m)
			} else {
				applySessions(sh, keys, m)
			}
			sh.mu.Unlock()
			if got, want := tableSize0(grown, k), tableSize0(applied, k); got != want {
				t.Errorf("%s table grown for a bulk of %d (%d in the shard): %d slots; a batch of %d grows it to %d", k, n, bulkShare(n), got, m, want)
			}
		}
	}
}

// TestGrowByHalfAtLeast: Grow with a hint that only just makes a table
// too full grows it by half at least, as a batch does, not by the few
// slots the hint asks for (the bulk's entries would then copy it again).
func TestGrowByHalfAtLeast(t *testing.T) {
	for _, k := range []Kind{KindSubject, KindSession} {
		s := NewSet(0)
		sh := &s.shards[0]
		var keys []batchKey
		for i := 0; !tooFull(len(keys)+bulkShare(shardCount), tableSize0(s, k)) || len(keys) < 64; i++ {
			k0, k1 := uint64(i+1)<<20, uint64(i+1)
			key := batchKey{h: hashKey(k0, k1, sh.sessions.Load().seed), k0: k0, k1: k1, gen: 1, exp: 1, subject: k == KindSubject}
			keys = append(keys, key)
			sh.mu.Lock()
			if k == KindSubject {
				applySubjects(sh, keys[i:], 1)
			} else {
				applySessions(sh, keys[i:], 1)
			}
			sh.mu.Unlock()
		}
		before := tableSize0(s, k)
		s.Grow(k, shardCount) // a shard's share: 1 and some slack
		if after := tableSize0(s, k); after < before+before/2 {
			t.Errorf("%s table of %d slots holding %d, grown for a bulk of %d: %d slots, want at least %d", k, before, len(keys), shardCount, after, before+before/2)
		}
	}
}

// tableSize0 is the size of shard 0's table of kind k.
func tableSize0(s *Set, k Kind) int {
	if k == KindSubject {
		return s.shards[0].subjects.Load().size()
	}
	return s.shards[0].sessions.Load().size()
}

// tables returns the identity of each shard's table of kind k.
func tables(s *Set, k Kind) []any {
	out := make([]any, len(s.shards))
	for i := range s.shards {
		if k == KindSubject {
			out[i] = s.shards[i].subjects.Load()
		} else {
			out[i] = s.shards[i].sessions.Load()
		}
	}
	return out
}
