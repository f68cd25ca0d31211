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
	clock           clock.Clock
	// authenticate checks a key's secret again (Authority.Authenticate).
	authenticate func(ctx context.Context, secret string) error

	mu     sync.Mutex
	byKey  map[string]map[*stream]struct{}
	byAddr map[string]int
	// watched are the keys of the open streams, feed and report streams
	// alike, each checked again every recheck (see watch).
	watched map[string]*keyWatch
}

type stream struct {
	key, addr string
	cancel    context.CancelCauseFunc
}

func newStreams(l Limits, maxAge time.Duration, clk clock.Clock, authenticate func(ctx context.Context, secret string) error) *streams {
	return &streams{perKey: l.FeedStreamsPerKey, perAddr: l.FeedStreamsPerAddress, maxAge: maxAge,
		recheck: authority.APIKeyCacheTTL, clock: clk, authenticate: authenticate,
		byKey: map[string]map[*stream]struct{}{}, byAddr: map[string]int{}, watched: map[string]*keyWatch{}}
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

// closeKey ends every stream opened with the API key id, feed and report
// streams alike.
func (ss *streams) closeKey(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for st := range ss.byKey[id] {
		st.cancel(errKeyRevoked)
	}
	if w := ss.watched[id]; w != nil {
		for st := range w.streams {
			st.cancel(errKeyRevoked)
		}
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
	// What a stream does once is done in functions of their own, so that
	// the frames it keeps on its goroutine's stack are small (see
	// feed.Hub.ServeHTTP).
	return func(w http.ResponseWriter, r *http.Request) {
		r, fs, err := s.openStream(w, r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		defer fs.served()
		h.ServeHTTP(w, r)
	}
}

// feedStream is a feed stream admitted by openStream.
type feedStream struct {
	// end unregisters the stream and records its request; it does its
	// work once, whoever calls it first.
	end func()
	// unfollow stops the request's context from ending the stream's.
	unfollow func() bool
	// detached is set, on the handler's goroutine, once the stream went on
	// on a goroutine of its own (feed.WithDetachHook).
	detached bool
}

// served ends the stream once the hub's handler returned, unless it
// went on after it.
func (fs *feedStream) served() {
	if !fs.detached {
		fs.end()
	}
}

// openStream admits a feed stream and arms what ends it (its key revoked,
// its maximum age); it returns the request to serve it with and the
// stream, whose served the caller calls once the hub's handler returned,
// and records the request's metrics (the answer w's) at the stream's end.
//
// The stream's context ends with the request's until the stream detaches
// from its handler (feed.WithDetachHook): net/http ends a request's
// context once its handler returned, and a detached stream outlives it.
func (s *server) openStream(w http.ResponseWriter, r *http.Request) (*http.Request, *feedStream, error) {
	key := callerOf(r).key
	secret, _ := httpguard.Bearer(r)
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	st := &stream{key: key.ID, addr: httpguard.AddrKey(clientAddr(r, s.trusted)), cancel: cancel}
	if err := s.streams.admit(st); err != nil {
		cancel(nil)
		return r, nil, err
	}
	// What the stream keeps until it ends is taken from r and w here: a
	// detached stream holds neither the request nor net/http's answer.
	rctx, sw, remote := r.Context(), instrumented(w), r.RemoteAddr
	fs := &feedStream{unfollow: context.AfterFunc(rctx, func() { cancel(context.Cause(rctx)) })}
	var aged clock.Timer
	if age := s.streams.maxAge; age > 0 {
		if age >= 4 {
			age -= rand.N(age / 4)
		}
		aged = s.clock.AfterFunc(age, func() { cancel(errMaxAge) })
	}
	unwatch := s.streams.watch(st, secret)
	fs.end = sync.OnceFunc(func() {
		fs.unfollow()
		unwatch()
		if aged != nil {
			aged.Stop()
		}
		s.streams.remove(st)
		if cause := context.Cause(ctx); cause == errKeyRevoked || cause == errMaxAge {
			s.log.InfoContext(ctx, "feed stream ended", "reason", cause.Error(), "key", key.Name, "remote", remote)
		}
		cancel(nil)
		if sw != nil {
			sw.record()
		}
	})
	ctx = feed.WithRequester(ctx, feed.Requester{Key: key.ID, Addr: st.addr})
	// A stream that took its connection over ends its answer before the
	// hub's handler returns, or after (detached): its place is freed, its
	// end logged and its request counted before its client can reconnect.
	ctx = feed.WithEndHook(ctx, fs.end)
	ctx = feed.WithDetachHook(ctx, func() {
		fs.unfollow()
		fs.detached = true
		if sw != nil {
			sw.hold()
		}
	})
	return r.WithContext(ctx), fs, nil
}

// reports wraps the report stream handler, which requireKey guards: like
// a feed stream it ends when its key is revoked and after the maximum age.
// It is not counted against the stream caps: the hub holds at most two per
// verifier record, and the records are capped per key and address.
func (s *server) reports(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r, end := s.openReports(r)
		defer end()
		h.ServeHTTP(w, r)
	}
}

// openReports arms what ends a report stream; it returns the request to
// serve it with and the func that disarms it once served.
func (s *server) openReports(r *http.Request) (*http.Request, func()) {
	secret, _ := httpguard.Bearer(r)
	ctx, cancel := context.WithCancelCause(r.Context())
	var aged clock.Timer
	if age := s.streams.maxAge; age > 0 {
		aged = s.clock.AfterFunc(age, func() { cancel(errMaxAge) })
	}
	unwatch := s.streams.watch(&stream{key: callerOf(r).key.ID, cancel: cancel}, secret)
	return r.WithContext(ctx), func() {
		unwatch()
		if aged != nil {
			aged.Stop()
		}
		cancel(nil)
	}
}

// keyWatch checks one API key again for the streams open with it: one
// check per key every recheck, however many streams it has open (a
// timer and a check per stream would cost a node a wake-up per stream
// every few seconds, most of what idle verifiers cost it).
type keyWatch struct {
	secret  string
	streams map[*stream]struct{}
	t       clock.Timer
}

// watch has st's key (whose secret is secret) checked again every
// recheck until the returned func is called, cancelling st once the key
// is refused. A failed check for any other reason (the store
// unreachable) keeps the stream: the feed itself goes quiet then, and its
// verifiers fail over.
func (ss *streams) watch(st *stream, secret string) (stop func()) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	w := ss.watched[st.key]
	if w == nil {
		w = &keyWatch{secret: secret, streams: map[*stream]struct{}{}}
		ss.watched[st.key] = w
		key := st.key
		w.t = ss.clock.AfterFunc(ss.recheck, func() { ss.check(key, w) })
	}
	w.streams[st] = struct{}{}
	return func() { ss.unwatch(st, w) }
}

// check checks w's key once and ends its streams if it is refused.
func (ss *streams) check(key string, w *keyWatch) {
	ctx, cancel := context.WithTimeout(context.Background(), ss.recheck)
	defer cancel()
	err := ss.authenticate(ctx, w.secret)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.watched[key] != w {
		return // its streams all ended meanwhile
	}
	if errors.Is(err, authority.ErrUnauthorized) {
		for st := range w.streams {
			st.cancel(errKeyRevoked)
		}
	}
	w.t.Reset(ss.recheck)
}

func (ss *streams) unwatch(st *stream, w *keyWatch) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(w.streams, st)
	if len(w.streams) == 0 && ss.watched[st.key] == w {
		w.t.Stop()
		delete(ss.watched, st.key)
	}
}
