package revocation

import (
	"hash/maphash"
	"sync/atomic"
)

// The set's tables use open addressing with linear probing, kept at most
// 3/4 full, so that a lookup usually reads one cache line; keyTable and
// strTable are sized in powers of two, subjectTable in any size. Readers
// use only atomic loads and never lock (see shard); writers hold the
// shard's mutex. Deletion shifts the following entries back (Knuth's
// Algorithm R) instead of leaving tombstones, so lookups stay short after
// many prunes. Pruning many entries rebuilds a table aside and swaps it in,
// which readers do not wait for.

const minTableSize = 8

// tableSize returns the power-of-two size (for keyTable and strTable) that
// holds n entries at most half full, so that a rebuilt table has room to
// grow.
func tableSize(n int) int {
	size := minTableSize
	for size < 2*n {
		size *= 2
	}
	return size
}

func tooFull(n, size int) bool { return 4*n > 3*size }

// Growing a table, for a batch that would make it too full (ApplyMany) or
// ahead of a bulk (Set.Grow), follows one rule: the new table is the
// smallest that the entries it is grown for do not make too full (3/4),
// and at least half as large again as the old one (a subject table) or
// twice as large (a key table, whose sizes are powers of two). What it is
// grown for is the caller's to say: Grow the entries announced, a shard's
// share of them and two standard deviations, which leaves most tables
// about 60% full once the bulk is in; a batch its entries and half
// as many again (withRoom), which leaves the table half full, since a bulk
// that was not announced comes in many batches and a table grown just
// enough for each would be copied by nearly every one. One fill for both
// costs either path (BenchmarkApplyBulk/Grow/ApplyMany/1000 and
// ApplyMany/1000, 10,000 subject cutoffs to 500 sets, three alternating
// runs on this VM at load 2-8): half full ahead of an announced bulk held
// 59% more memory after it (41.8 → 66.4 bytes per subject cutoff) and took
// 11-28% more CPU to apply it; 3/4 full for a batch took the unannounced
// apply 9-14% more CPU, for 7% less memory (39.7 → 37.0 bytes). A prune's
// rebuild is another matter (tableSize, without).

// withRoom is what a batch grows a table for when its n entries would
// make it too full: them, and half as many again.
func withRoom(n int) int { return n + n/2 }

// grownSubjectSize is the size a subject table of the given size grows to
// for n entries.
func grownSubjectSize(size, n int) int {
	return max(size+size/2, (4*n+2)/3)
}

// grownKeySize is the size a key table of the given size grows to for n
// entries.
func grownKeySize(size, n int) int {
	size *= 2
	for tooFull(n, size) {
		size *= 2
	}
	return size
}

// slots is what deletion needs of a table.
type slots interface {
	size() int
	empty(i int) bool
	home(i int) int
	move(dst, src int)
	clear(i int)
}

// deleteAt removes the entry at i, moving back the entries after it whose
// probe sequence passes through i. Sizes need not be powers of two.
func deleteAt(t slots, i int) {
	size := t.size()
	for j := i; ; {
		if j++; j == size {
			j = 0
		}
		if t.empty(j) {
			t.clear(i)
			return
		}
		k := t.home(j)
		// The entry at j may fill the hole at i unless its home k lies
		// cyclically in (i, j].
		if (i <= j && (k <= i || k > j)) || (i > j && k <= i && k > j) {
			t.move(i, j)
			i = j
		}
	}
}

// keyTable maps 16-byte session keys to expiries. The all-zero key marks an
// empty slot (decodeSID never yields it).
type keyTable struct {
	slots []keySlot
	// exps is only touched under the shard's mutex: readers need presence,
	// not expiry, and keeping it apart keeps a slot at 16 bytes.
	exps []uint32
	mask uint64
	n    int
	seed uint64
}

type keySlot struct{ k0, k1 atomic.Uint64 }

func newKeyTable(size int, seed uint64) *keyTable {
	return &keyTable{slots: make([]keySlot, size), exps: make([]uint32, size), mask: uint64(size - 1), seed: seed}
}

// find returns the slot holding (k0, k1), or the empty slot where it would
// go. It is safe to run concurrently with a writer (the shard's sequence
// then tells the reader to retry), so it is bounded even on a table caught
// mid-change.
func (t *keyTable) find(k0, k1, h uint64) (int, bool) {
	i := h & t.mask
	for range t.slots {
		s := &t.slots[i]
		s0, s1 := s.k0.Load(), s.k1.Load()
		if s0 == k0 && s1 == k1 {
			return int(i), true
		}
		if s0|s1 == 0 {
			return int(i), false
		}
		i = (i + 1) & t.mask
	}
	return -1, false
}

// insert adds a key known to be absent. The caller checked tooFull.
func (t *keyTable) insert(k0, k1, h uint64, exp uint32) {
	i, _ := t.find(k0, k1, h)
	t.insertAt(i, k0, k1, exp)
}

// insertAt fills the empty slot i, which find returned for the key.
func (t *keyTable) insertAt(i int, k0, k1 uint64, exp uint32) {
	t.exps[i] = exp
	t.slots[i].k0.Store(k0)
	t.slots[i].k1.Store(k1)
	t.n++
}

// resized returns a copy of t sized for its entries.
func (t *keyTable) resized(size int) *keyTable {
	nt := newKeyTable(size, t.seed)
	for i := range t.slots {
		k0, k1 := t.slots[i].k0.Load(), t.slots[i].k1.Load()
		if k0|k1 != 0 {
			nt.insert(k0, k1, hashKey(k0, k1, t.seed), t.exps[i])
		}
	}
	return nt
}

// expired appends to dst the keys that expire at or before cut.
func (t *keyTable) expired(cut int64, dst [][2]uint64) [][2]uint64 {
	for i, exp := range t.exps {
		if int64(exp) <= cut && !t.empty(i) {
			dst = append(dst, [2]uint64{t.slots[i].k0.Load(), t.slots[i].k1.Load()})
		}
	}
	return dst
}

// remove deletes a key in place; the caller brackets it with the shard's
// beginWrite and endWrite.
func (t *keyTable) remove(k [2]uint64) {
	if i, found := t.find(k[0], k[1], hashKey(k[0], k[1], t.seed)); found {
		deleteAt(t, i)
		t.n--
	}
}

// without returns a new table of the entries that expire after cut.
func (t *keyTable) without(cut int64, survivors int) *keyTable {
	nt := newKeyTable(tableSize(survivors), t.seed)
	for i := range t.slots {
		k0, k1 := t.slots[i].k0.Load(), t.slots[i].k1.Load()
		if k0|k1 != 0 && int64(t.exps[i]) > cut {
			nt.insert(k0, k1, hashKey(k0, k1, t.seed), t.exps[i])
		}
	}
	return nt
}

func (t *keyTable) len() int  { return t.n }
func (t *keyTable) size() int { return len(t.slots) }

func (t *keyTable) empty(i int) bool {
	return t.slots[i].k0.Load()|t.slots[i].k1.Load() == 0
}

func (t *keyTable) home(i int) int {
	return int(hashKey(t.slots[i].k0.Load(), t.slots[i].k1.Load(), t.seed) & t.mask)
}

func (t *keyTable) move(dst, src int) {
	t.exps[dst] = t.exps[src]
	t.slots[dst].k0.Store(t.slots[src].k0.Load())
	t.slots[dst].k1.Store(t.slots[src].k1.Load())
}

func (t *keyTable) clear(i int) {
	t.exps[i] = 0
	t.slots[i].k0.Store(0)
	t.slots[i].k1.Store(0)
}

// hashKey mixes all 16 bytes of a key (murmur3's finalizer), so that ids
// with a fixed or sequential part still spread over shards and slots.
func hashKey(k0, k1, seed uint64) uint64 {
	x := (k0^seed)*0x9e3779b97f4a7c15 ^ k1
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// strTable maps session ids not in tegata's format to records. A record is
// never changed once published: an update stores a new one, so a reader
// sees either the old or the new record whole.
type strTable struct {
	slots []strSlot
	mask  uint64
	n     int
	seed  maphash.Seed
}

type strSlot struct {
	hash atomic.Uint64
	rec  atomic.Pointer[strRecord]
}

type strRecord struct {
	key     string
	expires int64 // unix seconds
}

func newStrTable(size int, seed maphash.Seed) *strTable {
	return &strTable{slots: make([]strSlot, size), mask: uint64(size - 1), seed: seed}
}

// find returns the slot holding key and its record, or the empty slot where
// it would go and nil. Like keyTable.find, it is bounded.
func (t *strTable) find(key string, h uint64) (int, *strRecord) {
	i := h & t.mask
	for range t.slots {
		s := &t.slots[i]
		r := s.rec.Load()
		if r == nil {
			return int(i), nil
		}
		if s.hash.Load() == h && r.key == key {
			return int(i), r
		}
		i = (i + 1) & t.mask
	}
	return -1, nil
}

func (t *strTable) insert(r *strRecord, h uint64) {
	i, _ := t.find(r.key, h)
	t.slots[i].hash.Store(h)
	t.slots[i].rec.Store(r)
	t.n++
}

func (t *strTable) resized(size int) *strTable {
	nt := newStrTable(size, t.seed)
	for i := range t.slots {
		if r := t.slots[i].rec.Load(); r != nil {
			nt.insert(r, t.slots[i].hash.Load())
		}
	}
	return nt
}

// expired appends to dst the keys that expire at or before cut.
func (t *strTable) expired(cut int64, dst []string) []string {
	for i := range t.slots {
		if r := t.slots[i].rec.Load(); r != nil && r.expires <= cut {
			dst = append(dst, r.key)
		}
	}
	return dst
}

// remove deletes a key in place, under beginWrite and endWrite.
func (t *strTable) remove(key string) {
	if i, r := t.find(key, maphash.String(t.seed, key)); r != nil {
		deleteAt(t, i)
		t.n--
	}
}

// without returns a new table of the records that expire after cut.
func (t *strTable) without(cut int64, survivors int) *strTable {
	nt := newStrTable(tableSize(survivors), t.seed)
	for i := range t.slots {
		if r := t.slots[i].rec.Load(); r != nil && r.expires > cut {
			nt.insert(r, t.slots[i].hash.Load())
		}
	}
	return nt
}

func (t *strTable) len() int         { return t.n }
func (t *strTable) size() int        { return len(t.slots) }
func (t *strTable) empty(i int) bool { return t.slots[i].rec.Load() == nil }
func (t *strTable) home(i int) int   { return int(t.slots[i].hash.Load() & t.mask) }

func (t *strTable) move(dst, src int) {
	t.slots[dst].hash.Store(t.slots[src].hash.Load())
	t.slots[dst].rec.Store(t.slots[src].rec.Load())
}

func (t *strTable) clear(i int) {
	t.slots[i].rec.Store(nil)
	t.slots[i].hash.Store(0)
}
