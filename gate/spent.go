package gate

import (
	"container/list"
	"crypto/sha256"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// tokenKey identifies a refresh token in the refresher's maps: its SHA-256,
// so that no map holds a live token as a key and two tokens share an
// entry only if they are the same token.
type tokenKey [sha256.Size]byte

func keyOf(rt string) tokenKey { return sha256.Sum256([]byte(rt)) }

// spentMemory bounds how many exchanges spentTokens remembers: each holds
// the answer's tokens, about 1 KB with small claims and under 4 KB (what
// fits a cookie), so about 10 MB, 40 MB at worst. Past it the oldest is
// forgotten early, which costs only the rescue it offered.
const spentMemory = 10_000

// spentTokens remembers, for each refresh token this gate exchanged, the
// answer, until the new access token expires: a browser that went away
// while the app worked on the request that refreshed never received the
// new cookies, and comes back with the spent token. Asking the authority
// again past its grace window would revoke the session as theft; the gate
// hands out the same successor instead.
//
// An answer is given only to the holder that made the exchange (holderOf:
// the browser's binding cookie and its client address), and only while
// its successor has not been exchanged in turn: a thief presenting a
// copied, spent token without the browser's binding value, from elsewhere,
// or after the owner moved on, still reaches the authority and is caught
// as reuse. Behind a proxy every browser may share one address; the
// binding value still tells them apart. spentTokens is not safe for concurrent use: the refresher holds
// its lock around every call.
type spentTokens struct {
	max   int
	byKey map[tokenKey]*list.Element // of *spentEntry
	order list.List                  // oldest first
}

type spentEntry struct {
	key   tokenKey
	who   string // holderOf
	tok   client.Tokens
	until time.Time // when tok's access token expires, by the gate's clock
}

func newSpentTokens(max int) *spentTokens {
	return &spentTokens{max: max, byKey: make(map[tokenKey]*list.Element)}
}

// get returns what the token with key k was exchanged for, if it was
// exchanged for holder (never "") and the new access token has not expired.
// ExpiresIn is what is left of its lifetime at now.
func (s *spentTokens) get(k tokenKey, holder string, now time.Time) (client.Tokens, bool) {
	el, ok := s.byKey[k]
	if !ok {
		return client.Tokens{}, false
	}
	e := el.Value.(*spentEntry)
	if !now.Before(e.until) {
		s.remove(el)
		return client.Tokens{}, false
	}
	if holder == "" || e.who != holder {
		return client.Tokens{}, false
	}
	tok := e.tok
	tok.ExpiresIn = int64(e.until.Sub(now) / time.Second)
	return tok, true
}

// has reports whether the token with key k was exchanged (and is still
// remembered).
func (s *spentTokens) has(k tokenKey) bool {
	_, ok := s.byKey[k]
	return ok
}

// put remembers that the token with key k was exchanged for tok by
// holder, forgetting expired entries and, past max, the oldest.
func (s *spentTokens) put(k tokenKey, holder string, tok client.Tokens, now time.Time) {
	if tok.ExpiresIn <= 0 || s.max <= 0 || holder == "" {
		return
	}
	if el, ok := s.byKey[k]; ok {
		s.remove(el)
	}
	for el := s.order.Front(); el != nil && (s.order.Len() >= s.max || !now.Before(el.Value.(*spentEntry).until)); el = s.order.Front() {
		s.remove(el)
	}
	until := now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	s.byKey[k] = s.order.PushBack(&spentEntry{key: k, who: holder, tok: tok, until: until})
}

func (s *spentTokens) remove(el *list.Element) {
	delete(s.byKey, el.Value.(*spentEntry).key)
	s.order.Remove(el)
}
