package revocation

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
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

// Many shards keep readers on different cores off each other's lock word
// and keep each Prune step short (at 1,000,000 entries a shard holds about
// 8,000).
const (
	shardBits  = 7
	shardCount = 1 << shardBits
)

// Set is the set of live revocations: revoked sessions and subject cutoffs.
//
// Expiry instants are kept in whole seconds, rounded up, so an entry is never
// dropped before its ExpiresAt. Session ids in tegata's own format are kept
// as 16-byte keys (about 32 bytes of heap per entry); any other session id is
// kept as a string.
type Set struct {
	max    int64
	count  atomic.Int64
	seed   maphash.Seed
	shards [shardCount]shard
}

type shard struct {
	mu sync.RWMutex
	// sessions holds decodable session ids → expiry (unix seconds, clamped
	// to uint32: 4 bytes instead of 8 keeps an entry under 64 bytes).
	sessions map[[16]byte]uint32
	// otherSessions holds session ids that do not decode to 16 bytes.
	otherSessions map[string]int64
	subjects      map[string]cutoff
	// nSubjects mirrors len(subjects) for readers without the lock: most
	// shards hold no subject cutoff, and a lookup there skips the lock.
	nSubjects atomic.Int32
	// Pad to two cache lines so that readers of neighbouring shards do not
	// contend on the same line.
	_ [128 - 56]byte
}

// cutoff is a subject's revocation: tokens with sgen < generation are revoked.
type cutoff struct {
	generation int64
	expires    int64 // unix seconds
}

// NewSet returns an empty set holding at most maxEntries entries (sessions
// and subjects together); 0 means unlimited.
func NewSet(maxEntries int) *Set {
	s := &Set{max: int64(maxEntries), seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].init()
	}
	return s
}

func (sh *shard) init() {
	sh.sessions = make(map[[16]byte]uint32)
	sh.otherSessions = make(map[string]int64)
	sh.subjects = make(map[string]cutoff)
	sh.nSubjects.Store(0)
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
		return s.applySession(e.Session, expirySeconds(e.ExpiresAt))
	case KindSubject:
		if e.Subject == "" {
			return fmt.Errorf("%w: seq %d: subject entry without sub", ErrInvalidEntry, e.Seq)
		}
		return s.applySubject(e.Subject, cutoff{e.Generation, expirySeconds(e.ExpiresAt)})
	default:
		return fmt.Errorf("%w: seq %d: unknown kind %q", ErrInvalidEntry, e.Seq, e.Kind)
	}
}

func (s *Set) applySession(sid string, exp int64) error {
	if k, ok := decodeSID(sid); ok {
		sh := s.keyShard(k)
		sh.mu.Lock()
		defer sh.mu.Unlock()
		old, found := sh.sessions[k]
		if !found && !s.reserve() {
			return ErrFull
		}
		if v := clampUint32(exp); !found || v > old {
			sh.sessions[k] = v
		}
		return nil
	}
	sh := s.stringShard(sid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, found := sh.otherSessions[sid]
	if !found && !s.reserve() {
		return ErrFull
	}
	if !found || exp > old {
		sh.otherSessions[sid] = exp
	}
	return nil
}

func (s *Set) applySubject(sub string, c cutoff) error {
	sh := s.stringShard(sub)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, found := sh.subjects[sub]
	if !found && !s.reserve() {
		return ErrFull
	}
	if found {
		c.generation = max(c.generation, old.generation)
		c.expires = max(c.expires, old.expires)
	}
	sh.subjects[sub] = c
	sh.nSubjects.Store(int32(len(sh.subjects)))
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
// sid and sub may be empty to skip that check.
func (s *Set) Revoked(sid, sub string, gen int64) (Kind, bool) {
	if sid != "" && s.sessionRevoked(sid) {
		return KindSession, true
	}
	if sub != "" && s.subjectRevoked(sub, gen) {
		return KindSubject, true
	}
	return "", false
}

func (s *Set) sessionRevoked(sid string) bool {
	if k, ok := decodeSID(sid); ok {
		sh := s.keyShard(k)
		sh.mu.RLock()
		_, found := sh.sessions[k]
		sh.mu.RUnlock()
		return found
	}
	sh := s.stringShard(sid)
	sh.mu.RLock()
	_, found := sh.otherSessions[sid]
	sh.mu.RUnlock()
	return found
}

func (s *Set) subjectRevoked(sub string, gen int64) bool {
	sh := s.stringShard(sub)
	if sh.nSubjects.Load() == 0 {
		return false
	}
	sh.mu.RLock()
	c, found := sh.subjects[sub]
	sh.mu.RUnlock()
	return found && gen < c.generation
}

// Prune drops every entry whose ExpiresAt is at or before now and returns
// how many went. It locks one shard at a time, so readers wait at most for
// one shard's sweep.
func (s *Set) Prune(now time.Time) int {
	cut := now.Unix() // floor; expiries are whole seconds rounded up
	total := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n := sh.prune(cut)
		s.count.Add(int64(-n))
		sh.mu.Unlock()
		total += n
	}
	return total
}

func (sh *shard) prune(cut int64) int {
	n := 0
	for k, exp := range sh.sessions {
		if int64(exp) <= cut {
			delete(sh.sessions, k)
			n++
		}
	}
	for k, exp := range sh.otherSessions {
		if exp <= cut {
			delete(sh.otherSessions, k)
			n++
		}
	}
	for k, c := range sh.subjects {
		if c.expires <= cut {
			delete(sh.subjects, k)
			n++
		}
	}
	sh.nSubjects.Store(int32(len(sh.subjects)))
	return n
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
	}
	for i := range s.shards {
		s.shards[i].init()
	}
	s.count.Store(0)
	for i := range s.shards {
		s.shards[i].mu.Unlock()
	}
}

// keyShard spreads keys over shards by all of their bytes, not just the
// first: a session id format with a fixed or time-based prefix must not
// pile into one shard.
func (s *Set) keyShard(k [16]byte) *shard {
	x := binary.LittleEndian.Uint64(k[:8]) ^ binary.LittleEndian.Uint64(k[8:])
	x *= 0x9e3779b97f4a7c15
	return &s.shards[x>>(64-shardBits)]
}

func (s *Set) stringShard(str string) *shard {
	return &s.shards[maphash.String(s.seed, str)&(shardCount-1)]
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
