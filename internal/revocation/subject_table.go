package revocation

import (
	"hash/maphash"
	"math/bits"
	"slices"
	"sync/atomic"
)

// subjectTable maps subjects to their cutoffs (generation and expiry). A
// subject is kept as a 128-bit key, two independent hashes of its string
// under process-random seeds, never as the string: an entry then costs one
// 28-byte slot whatever the subject's length, and a lookup reads no memory
// outside the table. A mass sign-out is a flood of exactly these entries.
//
// The key's first word (k0, hashed by the Set) picks the shard and the
// home slot. The second (k1, hashed with the table's seed) is never 0, so
// that k1 == 0 marks an empty slot, and a lookup works it out only when a
// slot's first word matches: almost surely only for a subject present, so
// that looking up one absent costs a single hash.
//
// Two live subjects with the same key would share one cutoff, the higher
// generation and later expiry of the two. A token of either could then be
// refused because of the other's cutoff (failing closed), but no token is
// ever accepted that its own subject's cutoff revokes. With random seeds
// the chance of any such pair among n subjects is about n²/2^129, 2^-89 at
// a million.
//
// The table probes linearly like keyTable, but its size need not be a
// power of two: a key's home is its first word scaled to the size, so the
// table grows by half instead of doubling and, while growing, stays
// between 1/2 and 3/4 full: about 56 bytes per entry at worst, against 75
// when doubling.
type subjectTable struct {
	slots []subjectSlot
	// exps is only touched under the shard's mutex: readers need the
	// generation, not the expiry.
	exps []uint32
	n    int
	seed maphash.Seed // of k1
}

type subjectSlot struct {
	k0, k1 atomic.Uint64
	// gen may be raised in place without the seqlock: a reader sees the old
	// cutoff or the new one, and either is right at that instant.
	gen atomic.Int64
}

func newSubjectTable(size int, seed maphash.Seed) *subjectTable {
	// Take all the room the allocator rounds the slots up to anyway.
	slots := slices.Grow([]subjectSlot(nil), size)
	slots = slots[:cap(slots)]
	return &subjectTable{slots: slots, exps: make([]uint32, len(slots)), seed: seed}
}

// secondWord returns k1 of sub's key.
func (t *subjectTable) secondWord(sub string) uint64 {
	return max(maphash.String(t.seed, sub), 1) // 0 marks an empty slot
}

// homeOf maps k0 to a slot. The shard took k0's top bits; the rest, a
// uniform hash, is scaled to the size: (rest × size) / 2^64.
func (t *subjectTable) homeOf(k0 uint64) int {
	hi, _ := bits.Mul64(k0<<shardBits, uint64(len(t.slots)))
	return int(hi)
}

// find returns the slot holding (k0, k1), or the empty slot where it would
// go. When k1 is 0 it is worked out from sub, if a slot needs it. Like
// keyTable.find, it is bounded even on a table caught mid-change.
func (t *subjectTable) find(k0, k1 uint64, sub string) (int, bool) {
	size := len(t.slots)
	i := t.homeOf(k0)
	for range size {
		s := &t.slots[i]
		s1 := s.k1.Load()
		if s1 == 0 {
			return i, false
		}
		if s.k0.Load() == k0 {
			if k1 == 0 {
				k1 = t.secondWord(sub)
			}
			if s1 == k1 {
				return i, true
			}
		}
		if i++; i == size {
			i = 0
		}
	}
	return -1, false
}

// cutoff returns the generation stored for subject sub, whose key's first
// word is k0, if any.
func (t *subjectTable) cutoff(k0 uint64, sub string) (int64, bool) {
	i, found := t.find(k0, 0, sub)
	if !found {
		return 0, false
	}
	return t.slots[i].gen.Load(), true
}

// cutoffKey is cutoff for a subject whose whole key is known.
func (t *subjectTable) cutoffKey(k0, k1 uint64) (int64, bool) {
	i, found := t.find(k0, k1, "")
	if !found {
		return 0, false
	}
	return t.slots[i].gen.Load(), true
}

// raise keeps the higher generation and the later expiry at slot i.
func (t *subjectTable) raise(i int, gen int64, exp uint32) {
	if s := &t.slots[i]; gen > s.gen.Load() {
		s.gen.Store(gen)
	}
	t.exps[i] = max(t.exps[i], exp)
}

// insert adds a key known to be absent. The caller checked tooFull.
func (t *subjectTable) insert(k0, k1 uint64, gen int64, exp uint32) {
	i, _ := t.find(k0, k1, "")
	t.insertAt(i, k0, k1, gen, exp)
}

// insertAt fills the empty slot i, which find returned for the key. The
// word that marks the slot taken (k1) goes last, for readers (see shard).
func (t *subjectTable) insertAt(i int, k0, k1 uint64, gen int64, exp uint32) {
	t.exps[i] = exp
	t.slots[i].gen.Store(gen)
	t.slots[i].k0.Store(k0)
	t.slots[i].k1.Store(k1)
	t.n++
}

// grown returns a copy of t half as large again. It keeps every entry,
// even one stored already expired: expiries are never negative.
func (t *subjectTable) grown() *subjectTable {
	return t.copyLive(t.size()+t.size()/2, -1)
}

// copyLive returns a table of the given size holding t's entries that
// expire after cut.
func (t *subjectTable) copyLive(size int, cut int64) *subjectTable {
	nt := newSubjectTable(size, t.seed)
	for i := range t.slots {
		s := &t.slots[i]
		k0, k1 := s.k0.Load(), s.k1.Load()
		if k1 != 0 && int64(t.exps[i]) > cut {
			nt.insert(k0, k1, s.gen.Load(), t.exps[i])
		}
	}
	return nt
}

// expired appends to dst the keys that expire at or before cut.
func (t *subjectTable) expired(cut int64, dst [][2]uint64) [][2]uint64 {
	for i, exp := range t.exps {
		if int64(exp) <= cut && !t.empty(i) {
			dst = append(dst, [2]uint64{t.slots[i].k0.Load(), t.slots[i].k1.Load()})
		}
	}
	return dst
}

// remove deletes a key in place, under beginWrite and endWrite.
func (t *subjectTable) remove(k [2]uint64) {
	if i, found := t.find(k[0], k[1], ""); found {
		deleteAt(t, i)
		t.n--
	}
}

// without returns a new table, half full, of the entries that expire after
// cut.
func (t *subjectTable) without(cut int64, survivors int) *subjectTable {
	return t.copyLive(max(minTableSize, 2*survivors), cut)
}

func (t *subjectTable) len() int  { return t.n }
func (t *subjectTable) size() int { return len(t.slots) }

func (t *subjectTable) empty(i int) bool { return t.slots[i].k1.Load() == 0 }
func (t *subjectTable) home(i int) int   { return t.homeOf(t.slots[i].k0.Load()) }

func (t *subjectTable) move(dst, src int) {
	d, s := &t.slots[dst], &t.slots[src]
	t.exps[dst] = t.exps[src]
	d.gen.Store(s.gen.Load())
	d.k0.Store(s.k0.Load())
	d.k1.Store(s.k1.Load())
}

func (t *subjectTable) clear(i int) {
	t.exps[i] = 0
	t.slots[i].gen.Store(0)
	t.slots[i].k0.Store(0)
	t.slots[i].k1.Store(0)
}
