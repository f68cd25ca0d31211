package revocation

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"strings"
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
// kept as a string. Subjects are kept as 64-bit hashes of their strings,
// not the strings (21 to 32 bytes per entry as the set grows, whatever
// their length; see subjectTable for why a collision could only refuse a
// token, never accept one). Create one with NewSet.
type Set struct {
	max     int64
	count   atomic.Int64
	keySeed uint64
	strSeed maphash.Seed
	subSeed maphash.Seed // of subject keys (see subjectTable)
	shards  [shardCount]shard
}

// NewSet returns an empty set holding at most maxEntries entries (sessions
// and subjects together); 0 means unlimited.
func NewSet(maxEntries int) *Set {
	s := &Set{
		max:     int64(maxEntries),
		keySeed: rand.Uint64(),
		strSeed: maphash.MakeSeed(),
		subSeed: maphash.MakeSeed(),
	}
	for i := range s.shards {
		s.shards[i].init(s)
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
		// A copy: the entry's string may share memory with more (a feed
		// event's whole text) that the set must not keep alive.
		return s.applyString(&strRecord{key: strings.Clone(e.Session), expires: exp})
	case KindSubject:
		if e.Subject == "" {
			return fmt.Errorf("%w: seq %d: subject entry without sub", ErrInvalidEntry, e.Seq)
		}
		return s.applySubject(e.Subject, e.Generation, clampUint32(expirySeconds(e.ExpiresAt)))
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
		// Readers never look at expiries.
		t.exps[i] = max(t.exps[i], exp)
		return nil
	}
	if !s.reserve() {
		return ErrFull
	}
	if tooFull(t.n+1, t.size()) {
		// Grown aside and swapped in whole: readers do not wait.
		t = t.resized(2 * t.size())
		t.insert(k0, k1, h, exp)
		sh.sessions.Store(t)
		return nil
	}
	t.insert(k0, k1, h, exp) // needs no seqlock (see shard)
	return nil
}

func (s *Set) applyString(r *strRecord) error {
	if _, ok := s.putString(r, s.reserve); !ok {
		return ErrFull
	}
	return nil
}

// addString records r in a set that has room reserved for it (ApplyMany)
// and returns 1 if its key is new, else 0.
func (s *Set) addString(r *strRecord) int {
	added, _ := s.putString(r, func() bool { return true })
	if added {
		return 1
	}
	return 0
}

// putString records r, asking reserve for room if its key is new, and
// reports whether the key was new and whether r was recorded.
func (s *Set) putString(r *strRecord, reserve func() bool) (added, ok bool) {
	h := maphash.String(s.strSeed, r.key)
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.otherSessions.Load()
	i, old := t.find(r.key, h)
	if old != nil {
		if r.expires > old.expires {
			// A record is immutable once readers can see it: store a new one.
			t.slots[i].rec.Store(r)
		}
		return false, true
	}
	if !reserve() {
		return false, false
	}
	if tooFull(t.n+1, t.size()) {
		t = t.resized(2 * t.size())
		t.insert(r, h)
		sh.otherSessions.Store(t)
		return true, true
	}
	t.insert(r, h)
	return true, true
}

func (s *Set) applySubject(sub string, gen int64, exp uint32) error {
	k0 := s.subjectKey(sub)
	sh := s.shardOf(k0)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.subjects.Load()
	if i, found := t.find(k0); found {
		t.raise(i, k0, gen, exp)
		return nil
	}
	if !s.reserve() {
		return ErrFull
	}
	if tooFull(t.n+1, t.size()) {
		t = t.grown()
		t.insert(k0, gen, exp)
		sh.subjects.Store(t)
		return nil
	}
	t.insert(k0, gen, exp)
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
// sid and sub may be empty to skip that check. It takes no lock (see the
// package's doc for the one exception).
func (s *Set) Revoked(sid, sub string, gen int64) (Kind, bool) {
	if sid != "" && s.sessionRevoked(sid) {
		return KindSession, true
	}
	if sub != "" {
		k0 := s.subjectKey(sub)
		if cut, ok := s.shardOf(k0).cutoff(k0); ok && gen < cut {
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
	return s.shardOf(h).hasOtherSession(sid, h)
}

// Prune drops every entry whose ExpiresAt is at or before now and returns
// how many went (but for an entry of a tegata session id or a subject
// whose ExpiresAt is past 2106, which it keeps for good). It works one
// shard at a time. A shard with a few expired entries deletes them in
// place, holding its readers for that long (a few microseconds); a shard
// with more is rebuilt aside and swapped in, which its readers do not wait
// for.
func (s *Set) Prune(now time.Time) int {
	cut := now.Unix() // floor; expiries are whole seconds rounded up
	// The tables of 32-bit expiries keep any instant past 2106 as 2106's
	// last second (clampUint32), which then stands for "later": a clock
	// past it drops none of those, since they may cover tokens it still
	// accepts.
	cut32 := min(cut, math.MaxUint32-1)
	total := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n := prune[keyTable, [2]uint64](sh, &sh.sessions, cut32) +
			prune[strTable, string](sh, &sh.otherSessions, cut) +
			prune[subjectTable, uint64](sh, &sh.subjects, cut32)
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

// prunable is what prune needs of a table *T whose entries are named by K.
type prunable[T, K any] interface {
	*T
	expired(cut int64, dst []K) []K
	len() int
	size() int
	without(cut int64, survivors int) *T
	remove(k K)
}

// prune drops the entries of one of sh's tables that expire at or before
// cut; the caller holds sh.mu.
func prune[T, K any, P prunable[T, K]](sh *shard, tab *atomic.Pointer[T], cut int64) int {
	t := P(tab.Load())
	dead := t.expired(cut, nil)
	survivors := t.len() - len(dead)
	switch {
	case len(dead) == 0:
	case len(dead) > inPlaceMax || sparse(survivors, t.size()):
		// The old table stays as it was for readers still in it.
		tab.Store(t.without(cut, survivors))
	default:
		sh.beginWrite()
		for _, k := range dead {
			t.remove(k)
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
		s.shards[i].init(s)
	}
	s.count.Store(0)
	for i := range s.shards {
		s.shards[i].endWrite()
		s.shards[i].mu.Unlock()
	}
}

func (s *Set) shardOf(h uint64) *shard {
	return &s.shards[shardIndex(h)]
}

// shardIndex is the shard of a key hashed to h: its top bits.
func shardIndex(h uint64) uint64 { return h >> (64 - shardBits) }

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
// 2106 as the maximum (which Prune never drops), never wrapping around.
func clampUint32(sec int64) uint32 {
	if sec <= 0 {
		return 0
	}
	if sec >= math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(sec)
}
