package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/httpguard"
)

// Why a feed stream was ended by this package (the context cause).
var (
	errKeyRevoked = errors.New("the stream's API key was revoked")
	errMaxAge     = errors.New("the stream reached its maximum age")
)

// DefaultFeedMaxAge is how long a feed stream lives at most (Config.FeedMaxAge).
const DefaultFeedMaxAge = time.Hour

// streams keeps the open feed streams by API key and by client address:
// to cap them (each holds a goroutine and a write buffer, tens of KiB) and
// to end those of a key when it is revoked. Safe for concurrent use.
type streams struct {
	perKey, perAddr int           // caps; 0: none
	maxAge          time.Duration // 0: none
	recheck         time.Duration // how often a stream's key is checked again

	mu     sync.Mutex
	byKey  map[string]map[*stream]struct{}
	byAddr map[string]int
}

type stream struct {
	key, addr string
	cancel    context.CancelCauseFunc
}

func newStreams(l Limits, maxAge time.Duration) *streams {
	return &streams{perKey: l.FeedStreamsPerKey, perAddr: l.FeedStreamsPerAddress, maxAge: maxAge,
		recheck: authority.APIKeyCacheTTL, byKey: map[string]map[*stream]struct{}{}, byAddr: map[string]int{}}
}

// admit registers a stream, or refuses it when the key or the address is
// at its cap.
func (ss *streams) admit(st *stream) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.perKey > 0 && len(ss.byKey[st.key]) >= ss.perKey {
		return tooManyStreams(fmt.Sprintf("this API key has %d feed streams open on this node, the most it may", ss.perKey))
	}
	if ss.perAddr > 0 && ss.byAddr[st.addr] >= ss.perAddr {
		return tooManyStreams(fmt.Sprintf("this address has %d feed streams open on this node, the most it may", ss.perAddr))
	}
	if ss.byKey[st.key] == nil {
		ss.byKey[st.key] = map[*stream]struct{}{}
	}
	ss.byKey[st.key][st] = struct{}{}
	ss.byAddr[st.addr]++
	return nil
}

func (ss *streams) remove(st *stream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byKey[st.key], st)
	if len(ss.byKey[st.key]) == 0 {
		delete(ss.byKey, st.key)
	}
	if ss.byAddr[st.addr]--; ss.byAddr[st.addr] <= 0 {
		delete(ss.byAddr, st.addr)
	}
}

// closeKey ends every stream opened with the API key id.
func (ss *streams) closeKey(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for st := range ss.byKey[id] {
		st.cancel(errKeyRevoked)
	}
}

func tooManyStreams(desc string) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_streams",
		Description: desc + "; close one first (every verifier needs one stream)",
		Header:      [2]string{"Retry-After", strconv.Itoa(5)}}
}

// feed wraps the feed handler, which requireKey guards: it caps the
// streams per key and per address, ends a stream when its key is revoked
// (at once on this node; on the others when a periodic check of the key
// finds it revoked, within about twice APIKeyCacheTTL), and ends every
// stream after a maximum age (jittered so that verifiers that connected
// together do not reconnect together). A verifier whose stream ends
// reconnects with Last-Event-ID, authenticating again.
func (s *server) feed(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := callerOf(r).key
		secret, _ := bearer(r)
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		st := &stream{key: key.ID, addr: httpguard.AddrKey(clientAddr(r, s.trusted)), cancel: cancel}
		if err := s.streams.admit(st); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		defer s.streams.remove(st)
		if age := s.streams.maxAge; age > 0 {
			if age >= 4 {
				age -= rand.N(age / 4)
			}
			defer s.clock.AfterFunc(age, func() { cancel(errMaxAge) }).Stop()
		}
		stop := s.watchKey(ctx, secret, cancel)
		defer stop()
		ctx = feed.WithRequester(ctx, feed.Requester{Key: key.ID, Addr: st.addr})
		h.ServeHTTP(w, r.WithContext(ctx))
		if cause := context.Cause(ctx); cause == errKeyRevoked || cause == errMaxAge {
			s.log.InfoContext(r.Context(), "feed stream ended", "reason", cause.Error(), "key", key.Name, "remote", r.RemoteAddr)
		}
	}
}

// reports wraps the report stream handler, which requireKey guards: like
// a feed stream it ends when its key is revoked and after the maximum age.
// It is not counted against the stream caps: the hub holds at most two per
// verifier record, and the records are capped per key and address.
func (s *server) reports(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secret, _ := bearer(r)
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		if age := s.streams.maxAge; age > 0 {
			defer s.clock.AfterFunc(age, func() { cancel(errMaxAge) }).Stop()
		}
		stop := s.watchKey(ctx, secret, cancel)
		defer stop()
		h.ServeHTTP(w, r.WithContext(ctx))
	}
}

// watchKey checks the stream's key again every recheck until ctx ends,
// cancelling the stream once the key is refused. A failed check for any
// other reason (the store unreachable) keeps the stream: the feed itself
// goes quiet then, and its verifiers fail over.
func (s *server) watchKey(ctx context.Context, secret string, cancel context.CancelCauseFunc) (stop func()) {
	var (
		mu      sync.Mutex
		t       clock.Timer
		stopped bool
	)
	check := func() {
		if _, err := s.a.Authenticate(ctx, secret); errors.Is(err, authority.ErrUnauthorized) {
			cancel(errKeyRevoked)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			t.Reset(s.streams.recheck)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t = s.clock.AfterFunc(s.streams.recheck, check)
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}
