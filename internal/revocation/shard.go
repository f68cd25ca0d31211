package revocation

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// shard is one slice of the set. Writers hold mu. A writer that moves
// entries in place (pruning a few) makes seq odd meanwhile (a seqlock);
// readers take no lock: they read seq, look up, and read seq again,
// retrying if a writer was at work. Readers thus write no shared memory and
// scale across cores, and a lookup costs a few plain loads. A reader that
// keeps meeting a writer (during a prune of its shard) waits on mu instead
// of spinning.
//
// Adding an entry needs no seqlock, so applying revocations, however many,
// never makes a reader retry or wait: a table that is full enough to grow is
// copied aside and swapped in whole, and an insert in place is safe for
// readers as it is. Tables probe linearly and only deletion moves entries;
// an insert fills the first empty slot of the new key's probe sequence,
// writing the word that marks the slot occupied last (keySlot: k0 then k1, a
// key never being all zero; subjectSlot: gx, the word holding the generation
// and the expiry, then the key; strSlot: hash, then rec), and Go's atomics
// are sequentially consistent. So a concurrent reader sees the slot either
// empty, or occupied by a key that does not match its own (the new key half
// written), or whole; and no key it may look for lies past that slot, which
// was empty when that key was added. Either way its answer is right at that
// instant: the new entry counts from when it is whole. Raising a cutoff in
// place stores one word, gx (a generation that does not fit a slot goes into
// the table's map of them first, which readers read under mu): a reader
// sees the old cutoff or the new one, and either is right at that instant.
type shard struct {
	shardFields
	// Pad to two cache lines so that writes to one shard do not disturb
	// readers of its neighbours. The fields' size depends on the word
	// size, so the padding is computed, not written down.
	_ [(shardSize - unsafe.Sizeof(shardFields{})%shardSize) % shardSize]byte
}

// shardSize is two cache lines of 64 bytes.
const shardSize = 128

type shardFields struct {
	mu       sync.Mutex
	seq      atomic.Uint64
	sessions atomic.Pointer[keyTable]
	// otherSessions holds session ids that are not in tegata's format.
	otherSessions atomic.Pointer[strTable]
	subjects      atomic.Pointer[subjectTable]
}

// optimisticReads is how many times a reader tries without the lock.
const optimisticReads = 3

// init empties the shard's tables, which hash with s's seeds.
func (sh *shard) init(s *Set) {
	sh.sessions.Store(newKeyTable(minTableSize, s.keySeed))
	sh.otherSessions.Store(newStrTable(minTableSize, s.strSeed))
	sh.subjects.Store(newSubjectTable(minTableSize))
}

func (sh *shard) hasSession(k0, k1, h uint64) bool {
	for range optimisticReads {
		seq := sh.seq.Load()
		if seq&1 == 1 {
			continue
		}
		_, found := sh.sessions.Load().find(k0, k1, h)
		if sh.seq.Load() == seq {
			return found
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, found := sh.sessions.Load().find(k0, k1, h)
	return found
}

// hasOtherSession reports whether a session id not in tegata's format is
// revoked.
func (sh *shard) hasOtherSession(sid string, h uint64) bool {
	for range optimisticReads {
		seq := sh.seq.Load()
		if seq&1 == 1 {
			continue
		}
		_, r := sh.otherSessions.Load().find(sid, h)
		if sh.seq.Load() == seq {
			return r != nil
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, r := sh.otherSessions.Load().find(sid, h)
	return r != nil
}

// cutoff returns the generation below which the subject of key k0 is
// revoked, if it has a cutoff. A generation that does not fit a slot is
// read under mu.
func (sh *shard) cutoff(k0 uint64) (int64, bool) {
	for range optimisticReads {
		seq := sh.seq.Load()
		if seq&1 == 1 {
			continue
		}
		gen, found, big := sh.subjects.Load().cutoff(k0)
		if big {
			break
		}
		if sh.seq.Load() == seq {
			return gen, found
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.subjects.Load().cutoffLocked(k0)
}

// beginWrite and endWrite bracket an in-place change that moves entries
// (deletion); the caller holds mu.
func (sh *shard) beginWrite() { sh.seq.Add(1) }
func (sh *shard) endWrite()   { sh.seq.Add(1) }
