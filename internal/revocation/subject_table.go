package revocation

import (
	"hash/maphash"
	"math/bits"
	"slices"
	"sync/atomic"
)

// subjectTable maps subjects to their cutoffs (generation and expiry). A
// subject is kept as a 96-bit key, two independent hashes of its string
// under process-random seeds (64 bits and 32), never as the string: an
// entry then costs one 24-byte slot whatever the subject's length, its
// expiry included, and a lookup reads no memory outside the table. A mass
// sign-out is a flood of exactly these entries, which a verifier records
// by writing one slot each.
//
// The key's first word (k0, hashed by the Set) picks the shard and the
// home slot. The second (k1, hashed with the table's seed) is never 0, so
// that k1 == 0 marks an empty slot, and a lookup works it out only when a
// slot's first word matches: almost surely only for a subject present, so
// that looking up one absent costs a single hash.
//
// Two live subjects with the same key would share one cutoff, the higher
// generation and later expiry of the two; and a subject without a cutoff
// whose key is that of one in the table is looked up as that one. A token
// of either could then be refused because of the other's cutoff (failing
// closed), but no token is ever accepted that its own subject's cutoff
// revokes. With random seeds the chance of any such pair among n subjects
// in the table is about n²/2^97, 2^-57 at a million; that of any of m
// subjects verified meeting one of them, m·n/2^96, 2^-53 for ten million
// against a million.
//
// The table probes linearly like keyTable, but its size need not be a
// power of two: a key's home is its first word scaled to the size, so the
// table grows by half instead of doubling and, while growing, stays
// between 1/2 and 3/4 full: about 48 bytes per entry at worst, against 64
// when doubling.
type subjectTable struct {
	slots []subjectSlot
	n     int
	seed  maphash.Seed // of k1
}

type subjectSlot struct {
	k0 atomic.Uint64
	// kx holds k1 in its low half, which marks the slot taken, and the
	// expiry (unix seconds) in its high half: the expiry is only read
	// under the shard's mutex (readers need the generation), but one word
	// for both keeps an entry in one slot, which a writer fills with one
	// cache line (two for the one slot in four that straddles them).
	kx atomic.Uint64
	// gen may be raised in place without the seqlock: a reader sees the old
	// cutoff or the new one, and either is right at that instant.
	gen atomic.Int64
}

// packKX is a slot's kx for key word k1 and expiry exp.
func packKX(k1, exp uint32) uint64 { return uint64(exp)<<32 | uint64(k1) }

func (s *subjectSlot) k1() uint32  { return uint32(s.kx.Load()) }
func (s *subjectSlot) exp() uint32 { return uint32(s.kx.Load() >> 32) }

func newSubjectTable(size int, seed maphash.Seed) *subjectTable {
	// Take all the room the allocator rounds the slots up to anyway.
	slots := slices.Grow([]subjectSlot(nil), size)
	return &subjectTable{slots: slots[:cap(slots)], seed: seed}
}

// secondWord returns k1 of sub's key.
func (t *subjectTable) secondWord(sub string) uint32 {
	return subjectSecondWord(t.seed, sub)
}

// subjectSecondWord is k1 of sub's key under seed: never 0, which marks an
// empty slot.
func subjectSecondWord(seed maphash.Seed, sub string) uint32 {
	return max(uint32(maphash.String(seed, sub)), 1)
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
func (t *subjectTable) find(k0 uint64, k1 uint32, sub string) (int, bool) {
	size := len(t.slots)
	i := t.homeOf(k0)
	for range size {
		s := &t.slots[i]
		s1 := s.k1()
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
func (t *subjectTable) cutoffKey(k0 uint64, k1 uint32) (int64, bool) {
	i, found := t.find(k0, k1, "")
	if !found {
		return 0, false
	}
	return t.slots[i].gen.Load(), true
}

// raise keeps the higher generation and the later expiry at slot i.
func (t *subjectTable) raise(i int, gen int64, exp uint32) {
	s := &t.slots[i]
	if gen > s.gen.Load() {
		s.gen.Store(gen)
	}
	if exp > s.exp() {
		s.kx.Store(packKX(s.k1(), exp))
	}
}

// insert adds a key known to be absent. The caller checked tooFull.
func (t *subjectTable) insert(k0 uint64, k1 uint32, gen int64, exp uint32) {
	i, _ := t.find(k0, k1, "")
	t.insertAt(i, k0, k1, gen, exp)
}

// insertAt fills the empty slot i, which find returned for the key. The
// word that marks the slot taken (kx, with k1) goes last, for readers (see
// shard).
func (t *subjectTable) insertAt(i int, k0 uint64, k1 uint32, gen int64, exp uint32) {
	s := &t.slots[i]
	s.gen.Store(gen)
	s.k0.Store(k0)
	s.kx.Store(packKX(k1, exp))
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
		if k1, exp := s.k1(), s.exp(); k1 != 0 && int64(exp) > cut {
			nt.insert(s.k0.Load(), k1, s.gen.Load(), exp)
		}
	}
	return nt
}

// expired appends to dst the keys that expire at or before cut.
func (t *subjectTable) expired(cut int64, dst [][2]uint64) [][2]uint64 {
	for i := range t.slots {
		s := &t.slots[i]
		if k1 := s.k1(); k1 != 0 && int64(s.exp()) <= cut {
			dst = append(dst, [2]uint64{s.k0.Load(), uint64(k1)})
		}
	}
	return dst
}

// remove deletes a key in place, under beginWrite and endWrite.
func (t *subjectTable) remove(k [2]uint64) {
	if i, found := t.find(k[0], uint32(k[1]), ""); found {
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

func (t *subjectTable) empty(i int) bool { return t.slots[i].k1() == 0 }
func (t *subjectTable) home(i int) int   { return t.homeOf(t.slots[i].k0.Load()) }

func (t *subjectTable) move(dst, src int) {
	d, s := &t.slots[dst], &t.slots[src]
	d.gen.Store(s.gen.Load())
	d.k0.Store(s.k0.Load())
	d.kx.Store(s.kx.Load())
}

func (t *subjectTable) clear(i int) {
	s := &t.slots[i]
	s.gen.Store(0)
	s.k0.Store(0)
	s.kx.Store(0)
}
