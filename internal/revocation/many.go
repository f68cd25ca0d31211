package revocation

import (
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ApplyMany records es as Apply would record each of them in turn, and
// returns how many it recorded: all of them, or those before the first
// that Apply would refuse (ErrInvalidEntry, ErrFull), with that error. The
// set is then as if Apply had been called on each entry before it.
//
// It is Apply for a bulk revocation, which a verifier receives thousands
// of entries at a time: the entries are hashed first, then recorded shard
// by shard, under one hold of each shard's lock, into tables grown at most
// once for all of them, instead of each entry taking its shard's lock and
// the table growing step by step. As with Apply, readers never wait, and
// see each entry from when it is recorded (those of a table grown aside
// together, when it is swapped in).
func (s *Set) ApplyMany(es []Entry) (int, error) {
	valid := len(es)
	for i := range es {
		if !wellFormed(&es[i]) {
			valid = i
			break
		}
	}
	if !s.reserveN(int64(valid)) {
		// The set may fill up part way: Apply, in order, refuses exactly
		// the first entry that does not fit.
		return s.applyEach(es)
	}
	added := s.applyBatch(es[:valid])
	if s.max > 0 {
		s.count.Add(int64(added - valid)) // give back the room of repeats
	} else {
		s.count.Add(int64(added))
	}
	if valid < len(es) {
		return valid, s.Apply(es[valid])
	}
	return valid, nil
}

// reserveN counts n more entries unless that would pass the maximum; a
// set without one counts as it goes instead.
func (s *Set) reserveN(n int64) bool {
	if s.max <= 0 {
		return true
	}
	for {
		c := s.count.Load()
		if c+n > s.max {
			return false
		}
		if s.count.CompareAndSwap(c, c+n) {
			return true
		}
	}
}

// applyEach applies es one by one, in order, up to the first error.
func (s *Set) applyEach(es []Entry) (int, error) {
	for i := range es {
		if err := s.Apply(es[i]); err != nil {
			return i, err
		}
	}
	return len(es), nil
}

// wellFormed reports whether Apply would take e (set aside a full set).
func wellFormed(e *Entry) bool {
	switch e.Kind {
	case KindSession:
		return e.Session != ""
	case KindSubject:
		return e.Subject != ""
	}
	return false
}

// batchKey is one entry of a batch, hashed: a subject's key (h and k0),
// or a session's 16-byte key and its hash (h, which places it).
type batchKey struct {
	h       uint64 // the hash that picks the shard (and the home slot)
	k0, k1  uint64
	gen     int64
	exp     uint32
	subject bool
}

// batchScratch is applyBatch's memory, reused: a bulk revocation reaches a
// verifier in events of a thousand entries or more.
type batchScratch struct{ keys, byShard []batchKey }

var batchPool = sync.Pool{New: func() any { return new(batchScratch) }}

// applyBatch records well-formed entries into a set that has room for
// them all, and returns how many keys were new.
func (s *Set) applyBatch(es []Entry) int {
	sc := batchPool.Get().(*batchScratch)
	defer batchPool.Put(sc)
	keys, added := sc.keys[:0], 0
	var counts [shardCount + 1]int
	for i := range es {
		e := &es[i]
		exp := expirySeconds(e.ExpiresAt)
		var k batchKey
		if e.Kind == KindSubject {
			k0 := s.subjectKey(e.Subject)
			k = batchKey{h: k0, k0: k0, gen: e.Generation, exp: clampUint32(exp), subject: true}
		} else {
			k0, k1, ok := decodeSID(e.Session)
			if !ok {
				// Not in tegata's format: rare, and kept by string (a
				// copy, as Apply keeps it).
				added += s.addString(&strRecord{key: strings.Clone(e.Session), expires: exp})
				continue
			}
			k = batchKey{h: hashKey(k0, k1, s.keySeed), k0: k0, k1: k1, exp: clampUint32(exp)}
		}
		keys = append(keys, k)
		counts[shardIndex(k.h)+1]++
	}
	// Group the keys by shard (a counting sort), so that each shard is
	// locked, and its tables grown, once.
	for i := 1; i <= shardCount; i++ {
		counts[i] += counts[i-1]
	}
	byShard := slices.Grow(sc.byShard[:0], len(keys))[:len(keys)]
	next := counts
	for _, k := range keys {
		i := shardIndex(k.h)
		byShard[next[i]] = k
		next[i]++
	}
	for i := range shardCount {
		if lo, hi := counts[i], counts[i+1]; lo < hi {
			added += applyShard(&s.shards[i], byShard[lo:hi])
		}
	}
	sc.keys, sc.byShard = keys, byShard
	return added
}

// applyShard records keys, all of shard sh, under one hold of its lock,
// and returns how many were new.
func applyShard(sh *shard, keys []batchKey) int {
	subjects, sessions := 0, 0
	for i := range keys {
		if keys[i].subject {
			subjects++
		} else {
			sessions++
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	added := 0
	if subjects > 0 {
		added += applySubjects(sh, keys, subjects)
	}
	if sessions > 0 {
		added += applySessions(sh, keys, sessions)
	}
	return added
}

// applySubjects records the subject keys among keys (n of them) into sh's
// table, grown first if they could make it too full, and returns how many
// were new. The caller holds sh.mu.
func applySubjects(sh *shard, keys []batchKey, n int) int {
	t := sh.subjects.Load()
	grown := false
	if tooFull(t.n+n, t.size()) {
		// Grown for its entries and half as many again (see
		// grownSubjectSize). Filled aside and swapped in whole: readers
		// do not wait.
		t, grown = t.copyLive(grownSubjectSize(t.size(), withRoom(t.n+n)), -1), true
	}
	t.touch(keys)
	added := 0
	for i := range keys {
		k := &keys[i]
		if !k.subject {
			continue
		}
		j, found := t.find(k.k0)
		if found {
			t.raise(j, k.k0, k.gen, k.exp)
			continue
		}
		t.insertAt(j, k.k0, k.gen, k.exp)
		added++
	}
	if grown {
		sh.subjects.Store(t)
	}
	return added
}

// applySessions is applySubjects for the session keys among keys.
func applySessions(sh *shard, keys []batchKey, n int) int {
	t := sh.sessions.Load()
	grown := false
	if tooFull(t.n+n, t.size()) {
		t, grown = t.resized(grownKeySize(t.size(), withRoom(t.n+n))), true
	}
	t.touch(keys)
	added := 0
	for i := range keys {
		k := &keys[i]
		if k.subject {
			continue
		}
		j, found := t.find(k.k0, k.k1, k.h)
		if found {
			t.exps[j] = max(t.exps[j], k.exp)
			continue
		}
		t.insertAt(j, k.k0, k.k1, k.exp)
		added++
	}
	if grown {
		sh.sessions.Store(t)
	}
	return added
}

// touch reads the home slot of each subject key among keys, so that their
// cache misses overlap: the processor keeps many loads in flight, but an
// insert's atomic stores (on amd64 each a locked exchange, a full fence)
// wait for every load before them, so that inserting key after key, each
// into a slot not in the cache, waits for one miss after another. The
// keys of a batch in one shard are few (an event's thousand over 128
// shards), and their slots stay in the cache until they are inserted.
func (t *subjectTable) touch(keys []batchKey) {
	var sum uint64
	for i := range keys {
		if keys[i].subject {
			sum += t.slots[t.homeOf(keys[i].k0)].k0.Load()
		}
	}
	touched.Store(sum)
}

// touch is subjectTable.touch for the session keys among keys.
func (t *keyTable) touch(keys []batchKey) {
	var sum uint64
	for i := range keys {
		if !keys[i].subject {
			sum += t.slots[keys[i].h&t.mask].k1.Load()
		}
	}
	touched.Store(sum)
}

// touched keeps the loads of touch from being left out as unused; no one
// reads it. Every set of the process stores to it, once per shard and
// batch, from any goroutine (each under its own shard's lock, not one
// lock): hence an atomic.
var touched atomic.Uint64

// Grow makes room, in advance, for about n more entries of kind k. A
// follower told that a bulk revocation's entries are on their way sizes
// the set for all of them at once, instead of each shard's table growing
// step by step as they arrive (each step a new table, the entries copied
// into it, the old one left to the collector). It records nothing, and
// readers do not wait. n is a hint: a set with a maximum makes room for
// no more than it has left, and entries beyond the room made are applied
// as ever.
func (s *Set) Grow(k Kind, n int) {
	if s.max > 0 {
		n = min(n, int(s.max-s.count.Load()))
	}
	if n <= 0 || k != KindSubject && k != KindSession {
		return
	}
	per := bulkShare(n)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if k == KindSubject {
			if t := sh.subjects.Load(); tooFull(t.n+per, t.size()) {
				sh.subjects.Store(t.copyLive(grownSubjectSize(t.size(), t.n+per), -1))
			}
		} else if t := sh.sessions.Load(); tooFull(t.n+per, t.size()) {
			sh.sessions.Store(t.resized(grownKeySize(t.size(), t.n+per)))
		}
		sh.mu.Unlock()
	}
}

// bulkShare is how many of n new keys Grow makes room for in each shard.
// Hashing spreads them over the shards unevenly: a shard's share plus two
// standard deviations covers all but about one shard in forty, whose table
// a batch grows once more as the entries come (a copy into one half as
// large again). Three deviations, which cover nearly every shard, held 12%
// more memory per entry of a 10,000-entry bulk once it was in, and took 5%
// more CPU to apply it, the first touch of memory being dear on this VM
// (BenchmarkApplyBulk/Grow/ApplyMany/1000: 27.9 against 24.9 bytes, 123
// against 117 ns per entry, two alternating runs, load 5).
func bulkShare(n int) int {
	per := n / shardCount
	return per + 2*int(math.Sqrt(float64(per))) + 1
}
