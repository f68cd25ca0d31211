package verifier

import (
	"crypto"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/token"
)

// cache remembers tokens whose signature and claims already passed
// token.Verify, so that the same token presented again (every request of a
// client until it refreshes) costs one hash and one map lookup instead of a
// signature check. It holds only what is true of the token forever (the
// signature, the claims); everything that changes with time (expiry,
// revocation, staleness, the key still being published) is re-checked by the
// caller on every hit.
//
// It is sharded so that lookups from many goroutines take read locks on
// different mutexes. Each shard is keyed by the token's last 8 bytes (see
// shard) and the entry keeps the token itself, compared on lookup, so two
// tokens sharing a key only miss. Size is bounded per shard; a full shard evicts an expired entry
// if it sees one among a few, else an arbitrary one (Go randomises map
// iteration), which is cheap and good enough for a cache whose entries all die
// within a token lifetime anyway.
type cache struct {
	seed     uint64
	shards   []cacheShard
	mask     uint64
	perShard int
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[uint64]*cached
	// Pads the shard to a cache line so that readers of neighbouring shards
	// do not contend on the same line.
	_ [64 - 32]byte
}

// cached is one verified token. Immutable once stored.
type cached struct {
	raw    string
	claims *Claims
	key    token.PublicKey // the key that verified it
	// keys is the key set it was verified with, when the verifier's key
	// sets are *token.KeySet, which never change once built: while keys is
	// still the current set, the key is still published.
	keys *token.KeySet
	rev  revocation.Key // the token's sid and sub, prepared for the set
	// ath is the token's SHA-256 when it is DPoP-bound: what each of its
	// proofs' ath claim hashes (RFC 9449 §4.2), computed once.
	ath [32]byte
	// from and until (Unix nanoseconds) bound the instants at which the
	// time rules of expect accept the token (validity.Window); when the
	// verifier's rules have changed since, a hit checks the token afresh.
	expect      *token.Expect
	from, until int64
}

// evictScan is how many entries a full shard looks at for an expired one
// before evicting an arbitrary entry.
const evictScan = 8

// newCache returns a cache for up to size tokens, or nil if size < 1.
func newCache(size int) *cache {
	if size < 1 {
		return nil
	}
	n := 1
	for n < 64 && n*2 <= size/16 {
		n *= 2
	}
	c := &cache{
		seed:     rand.Uint64(),
		shards:   make([]cacheShard, n),
		mask:     uint64(n - 1),
		perShard: (size + n - 1) / n,
	}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*cached)
	}
	return c
}

// shard returns the shard of raw and its key there: the token's last 8
// bytes, which are signature (48 random bits of base64url in every valid
// token), so that a lookup costs no hashing of the whole token. Only tokens
// that verified are stored, so no one can make two stored tokens share a
// key; a token made to share one with a stored token only misses, being
// compared whole. The seed keeps which shard a token lands in unknown.
func (c *cache) shard(raw string) (*cacheShard, uint64) {
	var tail [8]byte
	copy(tail[:], raw[max(0, len(raw)-len(tail)):])
	k := binary.LittleEndian.Uint64(tail[:])
	return &c.shards[mix(k^c.seed)&c.mask], k
}

// mix spreads the bits of k (splitmix64's finalizer): the tail's bytes are
// base64url characters, whose low bits alone would pick shards unevenly.
func mix(k uint64) uint64 {
	k ^= k >> 30
	k *= 0xbf58476d1ce4e5b9
	k ^= k >> 27
	k *= 0x94d049bb133111eb
	return k ^ k>>31
}

// get returns the entry for raw, or nil. It does not allocate.
func (c *cache) get(raw string) *cached {
	s, h := c.shard(raw)
	s.mu.RLock()
	e := s.m[h]
	s.mu.RUnlock()
	if e == nil || e.raw != raw {
		return nil
	}
	return e
}

// put stores a verified token, making room if the shard is full. It keeps
// its own copy of raw: the caller's string may share memory with a request
// buffer that is reused.
func (c *cache) put(raw string, e *cached, now time.Time) {
	s, h := c.shard(raw)
	e.raw = strings.Clone(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[h]; !ok && len(s.m) >= c.perShard {
		s.evictOne(now)
	}
	s.m[h] = e
}

// evictOne removes an expired entry among the first few iterated, else the
// first one. Called with s.mu held.
func (s *cacheShard) evictOne(now time.Time) {
	var victim uint64
	seen := 0
	for h, e := range s.m {
		if seen == 0 {
			victim = h
		}
		if !now.Before(e.claims.t.Expiry) {
			victim = h
			break
		}
		if seen++; seen == evictScan {
			break
		}
	}
	delete(s.m, victim)
}

// sameKey reports whether a and b are the same verification key: same kid,
// same alg, same key material. Key sets are rebuilt on every change, so
// identity of the values cannot be relied on; the comparison is a few
// dozen bytes.
func sameKey(a, b token.PublicKey) bool {
	eq, ok := a.Key.(interface{ Equal(crypto.PublicKey) bool })
	return ok && a.ID == b.ID && a.Algorithm == b.Algorithm && eq.Equal(b.Key)
}

// remove drops raw if it is cached.
func (c *cache) remove(raw string) {
	s, h := c.shard(raw)
	s.mu.Lock()
	if e := s.m[h]; e != nil && e.raw == raw {
		delete(s.m, h)
	}
	s.mu.Unlock()
}

// sweep drops every entry whose token expired at or before now and returns
// how many went. It locks one shard at a time.
func (c *cache) sweep(now time.Time) int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for h, e := range s.m {
			if !now.Before(e.claims.t.Expiry) {
				delete(s.m, h)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// len returns the number of cached tokens.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
