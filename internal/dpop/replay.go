package dpop

import (
	"crypto/sha256"
	"sync"
	"time"
)

// replayCache remembers the proofs a Checker accepted, by a hash of key
// and jti, until they could no longer be accepted (iat window passed), so
// that each proof is good once. Its size is bounded: when it holds max
// proofs that could still be replayed, new proofs are refused rather than
// old ones forgotten (forgetting would let a replay through). One key may
// hold at most a share of it (perKey), so that a client signing proofs as
// fast as it can fills only its own share and is refused alone, not every
// client of the verifier.
//
// Entries expire in the order they were added (each lives for the same
// span from when it was seen), so a FIFO queue finds the expired ones in
// O(1) each.
type replayCache struct {
	mu     sync.Mutex
	keep   time.Duration
	max    int
	perKey int
	seen   map[[16]byte]struct{}
	owners map[string]int // live entries per key thumbprint
	queue  []replayEntry  // oldest first, from head
	head   int
}

type replayEntry struct {
	key     [16]byte
	owner   string
	expires time.Time
}

// replayShare is the fraction of the cache one key may hold: 1/replayShare,
// at least minPerKey proofs.
const (
	replayShare = 16
	minPerKey   = 64
)

func newReplayCache(keep time.Duration, limit int) *replayCache {
	return &replayCache{keep: keep, max: limit, perKey: max(limit/replayShare, min(minPerKey, limit)),
		seen: make(map[[16]byte]struct{}), owners: make(map[string]int)}
}

// replayKey is the first 16 bytes of SHA-256(jkt NUL jti): 128 bits leave
// no room for a collision by chance or on purpose (the attacker would need
// a second preimage of a proof the victim sent).
func replayKey(jkt string, jti []byte) [16]byte {
	var in [43 + 1 + maxJTI]byte // a SHA-256 thumbprint, NUL, the jti
	n := copy(in[:43], jkt)
	n += copy(in[n+1:], jti) + 1
	sum := sha256.Sum256(in[:n])
	return [16]byte(sum[:16])
}

// add records a proof seen at now; it reports false for a replay, and
// errFull when the cache is full of proofs that could still be replayed.
func (c *replayCache) add(key [16]byte, owner string, now time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if _, ok := c.seen[key]; ok {
		return false, nil
	}
	if len(c.seen) >= c.max || c.owners[owner] >= c.perKey {
		return false, errFull
	}
	c.seen[key] = struct{}{}
	c.owners[owner]++
	c.queue = append(c.queue, replayEntry{key: key, owner: owner, expires: now.Add(c.keep)})
	return true, nil
}

// expire drops the entries expired at now and compacts the queue once
// half of it is spent.
func (c *replayCache) expire(now time.Time) {
	for c.head < len(c.queue) && !c.queue[c.head].expires.After(now) {
		e := c.queue[c.head]
		delete(c.seen, e.key)
		if c.owners[e.owner]--; c.owners[e.owner] <= 0 {
			delete(c.owners, e.owner)
		}
		c.head++
	}
	if c.head > 1024 && c.head*2 > len(c.queue) {
		c.queue = append(c.queue[:0], c.queue[c.head:]...)
		c.head = 0
	}
}

func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
