package revocation

import (
	"sync"
	"sync/atomic"
)

// shard is one slice of the set. Writers hold mu and make seq odd while
// they change a table in place (a seqlock); readers take no lock: they read
// seq, look up, and read seq again, retrying if a writer was at work.
// Readers thus write no shared memory and scale across cores, and a lookup
// costs a few plain loads. A reader that keeps meeting a writer (during a
// prune of its shard) waits on mu instead of spinning.
type shard struct {
	mu       sync.Mutex
	seq      atomic.Uint64
	sessions atomic.Pointer[keyTable]
	// otherSessions holds session ids that are not in tegata's format.
	otherSessions atomic.Pointer[strTable]
	subjects      atomic.Pointer[strTable]
	// Pad to two cache lines so that writes to one shard do not disturb
	// readers of its neighbours.
	_ [128 - 40]byte
}

// optimisticReads is how many times a reader tries without the lock.
const optimisticReads = 3

func (sh *shard) init(seed uint64) {
	sh.sessions.Store(newKeyTable(minTableSize, seed))
	sh.otherSessions.Store(newStrTable(minTableSize))
	sh.subjects.Store(newStrTable(minTableSize))
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

// strKind picks one of a shard's string tables.
type strKind int

const (
	otherSessionKind strKind = iota
	subjectKind
)

func (sh *shard) strTable(k strKind) *atomic.Pointer[strTable] {
	if k == subjectKind {
		return &sh.subjects
	}
	return &sh.otherSessions
}

// record returns the record of key in the table of kind k, or nil.
func (sh *shard) record(k strKind, key string, h uint64) *strRecord {
	for range optimisticReads {
		seq := sh.seq.Load()
		if seq&1 == 1 {
			continue
		}
		_, r := sh.strTable(k).Load().find(key, h)
		if sh.seq.Load() == seq {
			return r
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, r := sh.strTable(k).Load().find(key, h)
	return r
}

// beginWrite and endWrite bracket an in-place change; the caller holds mu.
func (sh *shard) beginWrite() { sh.seq.Add(1) }
func (sh *shard) endWrite()   { sh.seq.Add(1) }
