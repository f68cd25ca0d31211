package revocation

import (
	"math"
	"math/bits"
	"slices"
	"sync/atomic"
)

// subjectTable maps subjects to their cutoffs (generation and expiry). A
// subject is kept as a 64-bit key, a hash of its string under a
// process-random seed (Set.subjectKey), never as the string: an entry then
// costs one 16-byte slot whatever the subject's length, its generation and
// expiry included, and a lookup hashes the subject once and reads no memory
// outside the table. A mass sign-out is a flood of exactly these entries,
// which a verifier records by writing one slot each; four slots fill a
// cache line, and none straddles two.
//
// The key is never 0, which marks an empty slot. Its top bits pick the
// shard, the rest the home slot.
//
// Two live subjects with the same key would share one cutoff, the higher
// generation and later expiry of the two; and a subject without a cutoff
// whose key is that of one in the table is looked up as that one. A token
// of either could then be refused because of the other's cutoff (failing
// closed), but no token is ever accepted that its own subject's cutoff
// revokes. With a random seed the chance of any such pair among n subjects
// in the table is about n²/2^65, 2^-25 at a million; that of any of m
// subjects verified meeting one of them, m·n/2^64, 2^-21 for ten million
// against a million.
//
// A generation takes 32 bits of the slot. One outside [0, 2^32-1) (no
// authority counts a subject's cutoffs that far, but an entry may say so)
// is kept exactly all the same: the slot holds bigGen, and the generation
// is in the table's map of such keys, which a reader reads under the
// shard's lock.
//
// The table probes linearly like keyTable, but its size need not be a
// power of two: a key's home is its bits below the shard's, scaled to the
// size, so the
// table grows by half instead of doubling and, while growing, stays
// between 1/2 and 3/4 full: about 32 bytes per entry at worst, against 43
// when doubling.
type subjectTable struct {
	slots []subjectSlot
	n     int
	// big holds the generations that do not fit a slot, by key, under the
	// shard's lock; nil while there are none.
	big map[uint64]int64
}

type subjectSlot struct {
	// k0 is the key; 0: the slot is empty. A writer stores it last.
	k0 atomic.Uint64
	// gx holds the generation in its low half (bigGen: see the table's
	// big map) and the expiry (unix seconds) in its high half, so that a
	// cutoff is raised with one store and a reader sees it whole.
	gx atomic.Uint64
}

// bigGen in a slot's generation says the generation is in the table's big
// map.
const bigGen = math.MaxUint32

// packGX is a slot's gx for a slot generation g and expiry exp.
func packGX(g, exp uint32) uint64 { return uint64(exp)<<32 | uint64(g) }

func (s *subjectSlot) exp() uint32 { return uint32(s.gx.Load() >> 32) }

func newSubjectTable(size int) *subjectTable {
	// Take all the room the allocator rounds the slots up to anyway.
	slots := slices.Grow([]subjectSlot(nil), size)
	return &subjectTable{slots: slots[:cap(slots)]}
}

// homeOf maps k0 to a slot. The shard took k0's top bits; the rest, a
// uniform hash, is scaled to the size: (rest × size) / 2^64.
func (t *subjectTable) homeOf(k0 uint64) int {
	hi, _ := bits.Mul64(k0<<shardBits, uint64(len(t.slots)))
	return int(hi)
}

// find returns the slot holding k0, or the empty slot where it would go.
// Like keyTable.find, it is bounded even on a table caught mid-change.
func (t *subjectTable) find(k0 uint64) (int, bool) {
	size := len(t.slots)
	i := t.homeOf(k0)
	for range size {
		switch t.slots[i].k0.Load() {
		case k0:
			return i, true
		case 0:
			return i, false
		}
		if i++; i == size {
			i = 0
		}
	}
	return -1, false
}

// cutoff returns the generation stored for the subject of key k0, if any,
// taking no lock; big says the generation is not in the slot, and only
// cutoffLocked has it.
func (t *subjectTable) cutoff(k0 uint64) (gen int64, found, big bool) {
	i, found := t.find(k0)
	if !found {
		return 0, false, false
	}
	g := uint32(t.slots[i].gx.Load())
	return int64(g), true, g == bigGen
}

// cutoffLocked is cutoff for a caller holding the shard's lock, whatever
// the generation.
func (t *subjectTable) cutoffLocked(k0 uint64) (int64, bool) {
	i, found := t.find(k0)
	if !found {
		return 0, false
	}
	return t.genAt(i, k0), true
}

// genAt is the generation of slot i, which holds k0. The caller holds the
// shard's lock.
func (t *subjectTable) genAt(i int, k0 uint64) int64 {
	if g := uint32(t.slots[i].gx.Load()); g != bigGen {
		return int64(g)
	}
	return t.big[k0]
}

// slotGen is what a slot holds for generation gen: gen itself, or bigGen
// when it does not fit.
func slotGen(gen int64) uint32 {
	if gen < 0 || gen >= bigGen {
		return bigGen
	}
	return uint32(gen)
}

// setGen stores gen and exp in slot i for k0: a generation that does not
// fit goes into the big map first, so that a reader that sees bigGen in
// the slot finds it there.
func (t *subjectTable) setGen(i int, k0 uint64, gen int64, exp uint32) {
	g := slotGen(gen)
	if g == bigGen {
		if t.big == nil {
			t.big = map[uint64]int64{}
		}
		t.big[k0] = gen
	}
	t.slots[i].gx.Store(packGX(g, exp))
	if g != bigGen && t.big != nil {
		delete(t.big, k0) // raised from a generation that did not fit
	}
}

// raise keeps the higher generation and the later expiry at slot i, which
// holds k0. The caller holds the shard's lock.
func (t *subjectTable) raise(i int, k0 uint64, gen int64, exp uint32) {
	oldGen, oldExp := t.genAt(i, k0), t.slots[i].exp()
	if gen <= oldGen && exp <= oldExp {
		return
	}
	t.setGen(i, k0, max(gen, oldGen), max(exp, oldExp))
}

// insert adds a key known to be absent. The caller checked tooFull.
func (t *subjectTable) insert(k0 uint64, gen int64, exp uint32) {
	i, _ := t.find(k0)
	t.insertAt(i, k0, gen, exp)
}

// insertAt fills the empty slot i, which find returned for the key. The
// word that marks the slot taken (k0) goes last, for readers (see shard).
func (t *subjectTable) insertAt(i int, k0 uint64, gen int64, exp uint32) {
	t.setGen(i, k0, gen, exp)
	t.slots[i].k0.Store(k0)
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
	nt := newSubjectTable(size)
	for i := range t.slots {
		s := &t.slots[i]
		if k0, exp := s.k0.Load(), s.exp(); k0 != 0 && int64(exp) > cut {
			nt.insert(k0, t.genAt(i, k0), exp)
		}
	}
	return nt
}

// expired appends to dst the keys that expire at or before cut.
func (t *subjectTable) expired(cut int64, dst []uint64) []uint64 {
	for i := range t.slots {
		s := &t.slots[i]
		if k0 := s.k0.Load(); k0 != 0 && int64(s.exp()) <= cut {
			dst = append(dst, k0)
		}
	}
	return dst
}

// remove deletes a key in place, under beginWrite and endWrite.
func (t *subjectTable) remove(k0 uint64) {
	if i, found := t.find(k0); found {
		deleteAt(t, i)
		delete(t.big, k0)
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

func (t *subjectTable) empty(i int) bool { return t.slots[i].k0.Load() == 0 }
func (t *subjectTable) home(i int) int   { return t.homeOf(t.slots[i].k0.Load()) }

// move and clear run under the shard's seqlock (deleteAt), so the order of
// their stores does not matter to readers.
func (t *subjectTable) move(dst, src int) {
	d, s := &t.slots[dst], &t.slots[src]
	d.gx.Store(s.gx.Load())
	d.k0.Store(s.k0.Load())
}

func (t *subjectTable) clear(i int) {
	s := &t.slots[i]
	s.k0.Store(0)
	s.gx.Store(0)
}
