package revocation

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

var (
	// ErrFull is returned by Apply when storing a new key would exceed the
	// set's maximum number of entries. The set is left unchanged.
	ErrFull = errors.New("revocation: set is full")
	// ErrInvalidEntry is returned by Apply for an entry of unknown kind or
	// without the key its kind needs. Such an entry is never ignored
	// silently: a verifier that cannot apply it stops advancing and goes
	// stale, which fails closed.
	ErrInvalidEntry = errors.New("revocation: invalid entry")
)

// Many shards keep each writer's critical section, and so any reader's
// wait, short: at 1,000,000 entries a shard holds about 8,000.
const (
	shardBits  = 7
	shardCount = 1 << shardBits
)

// Set is the set of live revocations: revoked sessions and subject cutoffs.
//
// Expiry instants are kept in whole seconds, rounded up, so an entry is never
// dropped before its ExpiresAt. Session ids in tegata's format are kept as
// 16-byte keys (about 40 bytes of heap per entry); any other session id is
// kept as a string. Create one with NewSet.
type Set struct {
	max     int64
	count   atomic.Int64
	keySeed uint64
	strSeed maphash.Seed
	shards  [shardCount]shard
}

// NewSet returns an empty set holding at most maxEntries entries (sessions
// and subjects together); 0 means unlimited.
func NewSet(maxEntries int) *Set {
	s := &Set{max: int64(maxEntries), keySeed: rand.Uint64(), strSeed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].init(s.keySeed)
	}
	return s
}

// Apply records e. It is idempotent: applying an entry again changes
// nothing. A session keeps the latest ExpiresAt seen for it; a subject keeps
// the highest Generation and the latest ExpiresAt seen, so an entry arriving
// late never weakens a cutoff. Entries already expired are stored anyway
// (Prune decides). Apply returns ErrFull, changing nothing, when e would add
// a key to a full set, and ErrInvalidEntry for a malformed entry.
func (s *Set) Apply(e Entry) error {
	switch e.Kind {
	case KindSession:
		if e.Session == "" {
			return fmt.Errorf("%w: seq %d: session entry without sid", ErrInvalidEntry, e.Seq)
		}
		exp := expirySeconds(e.ExpiresAt)
		if k0, k1, ok := decodeSID(e.Session); ok {
			return s.applyKey(k0, k1, clampUint32(exp))
		}
		return s.applyString(otherSessionKind, &strRecord{key: e.Session, expires: exp})
	case KindSubject:
		if e.Subject == "" {
			return fmt.Errorf("%w: seq %d: subject entry without sub", ErrInvalidEntry, e.Seq)
		}
		return s.applyString(subjectKind, &strRecord{key: e.Subject, generation: e.Generation, expires: expirySeconds(e.ExpiresAt)})
	default:
		return fmt.Errorf("%w: seq %d: unknown kind %q", ErrInvalidEntry, e.Seq, e.Kind)
	}
}

func (s *Set) applyKey(k0, k1 uint64, exp uint32) error {
	h := hashKey(k0, k1, s.keySeed)
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.sessions.Load()
	if i, found := t.find(k0, k1, h); found {
		// Readers never look at expiries: no need to bracket the write.
		t.exps[i] = max(t.exps[i], exp)
		return nil
	}
	if !s.reserve() {
		return ErrFull
	}
	sh.beginWrite()
	defer sh.endWrite()
	if tooFull(t.n+1, t.size()) {
		t = t.resized(2 * t.size())
		sh.sessions.Store(t)
	}
	t.insert(k0, k1, h, exp)
	return nil
}

func (s *Set) applyString(k strKind, r *strRecord) error {
	h := maphash.String(s.strSeed, r.key)
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.strTable(k).Load()
	i, old := t.find(r.key, h)
	if old != nil {
		if r.generation <= old.generation && r.expires <= old.expires {
			return nil
		}
		// A record is immutable once readers can see it: store a new one.
		r.generation, r.expires = max(r.generation, old.generation), max(r.expires, old.expires)
		t.slots[i].rec.Store(r)
		return nil
	}
	if !s.reserve() {
		return ErrFull
	}
	sh.beginWrite()
	defer sh.endWrite()
	if tooFull(t.n+1, t.size()) {
		t = t.resized(2 * t.size())
		sh.strTable(k).Store(t)
	}
	t.insert(r, h)
	return nil
}

// reserve counts one more entry unless the set is full. It runs under the
// lock of the shard that will hold the entry.
func (s *Set) reserve() bool {
	if s.max <= 0 {
		s.count.Add(1)
		return true
	}
	for {
		n := s.count.Load()
		if n >= s.max {
			return false
		}
		if s.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Revoked reports whether a token of session sid, subject sub and subject
// generation gen is revoked, and by which kind of entry: the session was
// revoked, or the subject was cut off at a generation above gen. Either of
// sid and sub may be empty to skip that check. It takes no lock.
func (s *Set) Revoked(sid, sub string, gen int64) (Kind, bool) {
	if sid != "" && s.sessionRevoked(sid) {
		return KindSession, true
	}
	if sub != "" {
		h := maphash.String(s.strSeed, sub)
		if r := s.shardOf(h).record(subjectKind, sub, h); r != nil && gen < r.generation {
			return KindSubject, true
		}
	}
	return "", false
}

func (s *Set) sessionRevoked(sid string) bool {
	if k0, k1, ok := decodeSID(sid); ok {
		h := hashKey(k0, k1, s.keySeed)
		return s.shardOf(h).hasSession(k0, k1, h)
	}
	h := maphash.String(s.strSeed, sid)
	return s.shardOf(h).record(otherSessionKind, sid, h) != nil
}

// Prune drops every entry whose ExpiresAt is at or before now and returns
// how many went. It works one shard at a time. A shard with a few expired
// entries deletes them in place, holding its readers for that long (a few
// microseconds); a shard with more is rebuilt aside and swapped in, which
// its readers do not wait for.
func (s *Set) Prune(now time.Time) int {
	cut := now.Unix() // floor; expiries are whole seconds rounded up
	total := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n := s.pruneKeys(sh, cut) + s.pruneStrings(sh, otherSessionKind, cut) + s.pruneStrings(sh, subjectKind, cut)
		sh.mu.Unlock()
		s.count.Add(int64(-n))
		total += n
	}
	return total
}

// inPlaceMax is the most expired entries of one table deleted in place
// (shifting entries under the shard's seqlock); beyond it, rebuilding aside
// costs readers nothing.
const inPlaceMax = 64

func (s *Set) pruneKeys(sh *shard, cut int64) int {
	t := sh.sessions.Load()
	dead := t.expired(cut, nil)
	survivors := t.n - len(dead)
	switch {
	case len(dead) == 0:
	case len(dead) > inPlaceMax || sparse(survivors, t.size()):
		// The old table stays as it was for readers still in it.
		sh.sessions.Store(t.without(cut, survivors))
	default:
		sh.beginWrite()
		for _, k := range dead {
			t.remove(k[0], k[1])
		}
		sh.endWrite()
	}
	return len(dead)
}

func (s *Set) pruneStrings(sh *shard, k strKind, cut int64) int {
	t := sh.strTable(k).Load()
	dead := t.expired(cut, nil)
	survivors := t.n - len(dead)
	switch {
	case len(dead) == 0:
	case len(dead) > inPlaceMax || sparse(survivors, t.size()):
		sh.strTable(k).Store(t.without(cut, survivors))
	default:
		sh.beginWrite()
		for _, r := range dead {
			t.remove(r.key, maphash.String(s.strSeed, r.key))
		}
		sh.endWrite()
	}
	return len(dead)
}

// sparse says a table of size slots holding n entries should shrink, to
// give memory back after a wave of expiries.
func sparse(n, size int) bool {
	return size > minTableSize && 8*n < size
}

// Len returns the number of entries (sessions and subjects).
func (s *Set) Len() int {
	return int(s.count.Load())
}

// Reset empties the set and releases its memory, as when the feed says the
// log was replaced. It holds every shard's lock at once so that no reader
// sees a half-emptied set.
func (s *Set) Reset() {
	for i := range s.shards {
		s.shards[i].mu.Lock()
		s.shards[i].beginWrite()
	}
	for i := range s.shards {
		s.shards[i].init(s.keySeed)
	}
	s.count.Store(0)
	for i := range s.shards {
		s.shards[i].endWrite()
		s.shards[i].mu.Unlock()
	}
}

func (s *Set) shardOf(h uint64) *shard {
	return &s.shards[h>>(64-shardBits)]
}

// expirySeconds converts t to unix seconds, rounding up so that an entry is
// kept at least until t.
func expirySeconds(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

// clampUint32 keeps instants before 1970 as 0 (already expired) and after
// 2106 as the maximum (kept until then), never wrapping around.
func clampUint32(sec int64) uint32 {
	if sec <= 0 {
		return 0
	}
	if sec >= math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(sec)
}
