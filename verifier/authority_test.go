package verifier

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/token"
)

// This file builds a small authority for the tests out of real parts: the
// token package signs and publishes keys, feed.Hub serves the feed over an
// in-memory log, and introspection answers from the same log. The real
// authority lives in package authority; end-to-end tests run against it.

const (
	testIssuer   = "https://auth.test"
	testAudience = "app"
	testAPIKey   = "feed-key"
	maxLifetime  = 15 * time.Minute
)

// fakeClock is a fake clock shared by the authority and the verifier.
type fakeClock = testtime.Clock

func newClock() *fakeClock { return testtime.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

// memLog is an in-memory revocation log: the feed.Source of the fake
// authority.
type memLog struct {
	mu      sync.Mutex
	entries []revocation.Entry
	subs    map[chan struct{}]struct{}
}

func newMemLog() *memLog { return &memLog{subs: make(map[chan struct{}]struct{})} }

func (l *memLog) EntriesAfter(_ context.Context, after int64, limit int) ([]revocation.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []revocation.Entry
	for _, e := range l.entries {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *memLog) Head(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.entries)), nil
}

func (l *memLog) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	l.subs[ch] = struct{}{}
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		delete(l.subs, ch)
		l.mu.Unlock()
	}
}

// append adds e with the next seq and wakes subscribers.
func (l *memLog) append(e revocation.Entry) revocation.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Seq = int64(len(l.entries)) + 1
	l.entries = append(l.entries, e)
	for ch := range l.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return e
}

// replace swaps the whole log, as when an authority is restored from a
// backup or a verifier moves to another cluster, and wakes subscribers.
func (l *memLog) replace(entries []revocation.Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = entries
	for ch := range l.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// authority is the fake authority.
type authority struct {
	t      *testing.T
	clock  *fakeClock
	log    *memLog
	truth  *revocation.Set // every entry, for introspection
	srv    *httptest.Server
	cancel context.CancelFunc

	mu        sync.Mutex
	signing   token.SigningKey
	published []token.PublicKey
	// lifetime and leeway are what discovery publishes (0: the defaults,
	// maxLifetime and no leeway published).
	lifetime, leeway time.Duration

	jwksHits       atomic.Int64
	introspectHits atomic.Int64
	feedDown       atomic.Bool // the feed answers 503
	feedMute       atomic.Bool // the feed opens (200) and says nothing
	introspectDown atomic.Bool // introspection answers 503
	jwksDown       atomic.Bool // the key set answers 503

	connMu sync.Mutex
	conns  map[*trackedConn]struct{} // client connections open on srv
}

// trackedListener keeps the connections the server accepted until they
// are closed, whoever closes them: net/http, or a feed stream that took
// its connection over from it (which net/http then forgets).
type trackedListener struct {
	net.Listener
	a *authority
}

func (l *trackedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &trackedConn{Conn: nc, a: l.a}
	l.a.connMu.Lock()
	defer l.a.connMu.Unlock()
	l.a.conns[c] = struct{}{}
	return c, nil
}

type trackedConn struct {
	net.Conn
	a    *authority
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.a.connMu.Lock()
		defer c.a.connMu.Unlock()
		delete(c.a.conns, c)
	})
	return err
}

// openConns returns how many client connections are open.
func (a *authority) openConns() int {
	a.connMu.Lock()
	defer a.connMu.Unlock()
	return len(a.conns)
}

// closeConns cuts every client connection, as a node that went away would.
func (a *authority) closeConns() {
	a.connMu.Lock()
	conns := make([]*trackedConn, 0, len(a.conns))
	for c := range a.conns {
		conns = append(conns, c)
	}
	a.connMu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func newAuthority(t *testing.T, c *fakeClock) *authority {
	t.Helper()
	a := &authority{t: t, clock: c, log: newMemLog(), truth: revocation.NewSet(0),
		conns: make(map[*trackedConn]struct{})}
	a.rotate("k1")
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	hub := feed.NewHub(a.log, feed.HubConfig{Heartbeat: 50 * time.Millisecond, BatchSize: 100, Clock: c, Logger: testLogger(t)})
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", a.serveDiscovery)
	mux.HandleFunc("GET /.well-known/jwks.json", a.serveJWKS)
	mux.Handle("GET /v1/feed", a.authorized(&a.feedDown, a.mutable(hub)))
	mux.Handle("POST /v1/feed/position", a.authorized(&a.feedDown, http.HandlerFunc(hub.ServePosition)))
	// The report stream, as tegata serves it: without it every feed stream
	// waits the client's openWait (250ms) before its first report, so a
	// verifier is ready 0.25s late after each (re)connection.
	mux.Handle("POST "+feed.ReportsPath, a.authorized(&a.feedDown, http.HandlerFunc(hub.ServeReports)))
	mux.Handle("POST /v1/introspect", a.authorized(&a.introspectDown, http.HandlerFunc(a.serveIntrospect)))
	a.srv = httptest.NewUnstartedServer(mux)
	a.srv.Listener = &trackedListener{Listener: a.srv.Listener, a: a}
	a.srv.Start()
	t.Cleanup(func() {
		a.closeConns()
		a.srv.Close()
		cancel()
		<-done
	})
	return a
}

// rotate makes a new key with the given kid, publishes it alongside the
// others and signs with it from now on.
func (a *authority) rotate(kid string) token.SigningKey {
	a.t.Helper()
	k := newSigningKey(a.t, kid, token.EdDSA)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.signing = k
	a.published = append(a.published, token.PublicKey{ID: kid, Algorithm: k.Algorithm, Key: k.Private.Public()})
	return k
}

func newSigningKey(t testing.TB, kid, alg string) token.SigningKey {
	t.Helper()
	priv, err := token.GenerateKey(alg)
	if err != nil {
		t.Fatalf("GenerateKey(%q) = %v", alg, err)
	}
	return token.SigningKey{ID: kid, Algorithm: alg, Private: priv}
}

func (a *authority) keySet() *token.KeySet {
	a.mu.Lock()
	defer a.mu.Unlock()
	ks, err := token.NewKeySet(a.published...)
	if err != nil {
		a.t.Errorf("NewKeySet = %v", err)
	}
	return ks
}

func (a *authority) authorized(down *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testAPIKey {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if down.Load() {
			http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// mutable serves next unless the feed is muted: then the stream opens and
// stays silent until the client goes away. Unmute with feedMute.Store(false)
// and closeConns().
func (a *authority) mutable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.feedMute.Load() {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
}

// unmute lets the feed speak again and drops the silent streams, so that
// the verifier reconnects at once.
func (a *authority) unmute() {
	a.feedMute.Store(false)
	a.closeConns()
}

func (a *authority) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	lifetime, leeway := a.lifetime, a.leeway
	a.mu.Unlock()
	if lifetime == 0 {
		lifetime = maxLifetime
	}
	doc := map[string]any{
		"issuer":                           testIssuer,
		"tegata_access_token_audience":     testAudience,
		"jwks_uri":                         a.srv.URL + "/.well-known/jwks.json",
		"tegata_access_token_max_lifetime": int(lifetime / time.Second),
	}
	if leeway > 0 {
		doc["tegata_leeway"] = int(leeway / time.Second)
	}
	writeJSON(w, doc)
}

// publish changes what discovery says.
func (a *authority) publish(lifetime, leeway time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lifetime, a.leeway = lifetime, leeway
}

func (a *authority) serveJWKS(w http.ResponseWriter, r *http.Request) {
	a.jwksHits.Add(1)
	if a.jwksDown.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	b, err := a.keySet().MarshalJWKS()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func (a *authority) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	a.introspectHits.Add(1)
	c, err := token.Verify(r.PostFormValue("token"), a.keySet(), token.Expect{Issuer: testIssuer}, a.clock.Now())
	if err != nil {
		writeJSON(w, map[string]any{"active": false})
		return
	}
	if _, revoked := a.truth.Revoked(c.SessionID, c.Subject, c.Generation); revoked {
		writeJSON(w, map[string]any{"active": false})
		return
	}
	writeJSON(w, map[string]any{"active": true, "sub": c.Subject, "sid": c.SessionID, "exp": c.Expiry.Unix()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// revoke appends an entry to the log (which the feed then carries) and
// returns it with its seq.
func (a *authority) revoke(e revocation.Entry) revocation.Entry {
	a.t.Helper()
	if e.CreatedAt.IsZero() {
		e.CreatedAt = a.clock.Now()
	}
	if e.ExpiresAt.IsZero() {
		e.ExpiresAt = a.clock.In(maxLifetime)
	}
	e = a.log.append(e)
	if err := a.truth.Apply(e); err != nil {
		a.t.Fatalf("truth.Apply(%+v) = %v", e, err)
	}
	return e
}

func (a *authority) revokeSession(sid string) revocation.Entry {
	return a.revoke(revocation.Entry{Kind: revocation.KindSession, Session: sid})
}

// claims returns the claims of a fresh, valid token for sub.
func (a *authority) claims(sub string) token.Claims {
	now := a.clock.Now()
	return token.Claims{
		Issuer:    testIssuer,
		Subject:   sub,
		Audience:  []string{testAudience},
		IssuedAt:  now,
		Expiry:    now.Add(10 * time.Minute),
		ID:        randomID(),
		SessionID: randomID(),
	}
}

// mint signs c with the current signing key.
func (a *authority) mint(c token.Claims) string {
	a.t.Helper()
	a.mu.Lock()
	k := a.signing
	a.mu.Unlock()
	return sign(a.t, k, c)
}

func sign(t testing.TB, k token.SigningKey, c token.Claims) string {
	t.Helper()
	raw, err := token.Sign(k, c)
	if err != nil {
		t.Fatalf("Sign(%+v) = %v", c, err)
	}
	return raw
}

// craft builds a token with an arbitrary header and payload, signed by an
// Ed25519 key, for the cases token.Sign refuses to produce.
func craft(t testing.TB, k token.SigningKey, header, payload map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%v) = %v", v, err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(payload)
	sig, err := k.Private.Sign(rand.Reader, []byte(input), crypto.Hash(0))
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// craftRawHeader is craft with the header given as JSON text, for headers a
// map cannot express (member order, case variants).
func craftRawHeader(t testing.TB, k token.SigningKey, header string, payload map[string]any) string {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatalf("json.Marshal(%v) = %v", payload, err)
	}
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(b)
	sig, err := k.Private.Sign(rand.Reader, []byte(input), crypto.Hash(0))
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// payloadOf is the JSON payload of claims c, for craft.
func payloadOf(c token.Claims) map[string]any {
	return map[string]any{
		"iss": c.Issuer, "sub": c.Subject, "aud": c.Audience,
		"iat": c.IssuedAt.Unix(), "exp": c.Expiry.Unix(),
		"jti": c.ID, "sid": c.SessionID, "sgen": c.Generation,
	}
}

// randomID returns an id in tegata's session id format.
func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// testConfig is a verifier configuration for a.
func testConfig(t testing.TB, a *authority) Config {
	cfg := Config{
		Authorities: []string{a.srv.URL},
		APIKey:      testAPIKey,
		Audience:    testAudience,
		Logger:      testLogger(t),
	}
	cfg.Clock = a.clock
	return cfg
}

// testTuning shortens the background intervals of the tests' verifiers,
// each tune changing it further.
func testTuning(tune ...func(*tuning)) tuning {
	t := tuning{feedRetryMin: 10 * time.Millisecond, feedRetryMax: 50 * time.Millisecond}
	for _, f := range tune {
		f(&t)
	}
	return t
}

// newTest is New with testTuning.
func newTest(ctx context.Context, cfg Config, tune ...func(*tuning)) (*Verifier, error) {
	return newTuned(ctx, cfg, testTuning(tune...))
}

// start returns a verifier following a, closed at the end of the test.
func start(t *testing.T, cfg Config, tune ...func(*tuning)) *Verifier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := newTest(ctx, cfg, tune...)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// startReady is start followed by WaitReady.
func startReady(t *testing.T, cfg Config, tune ...func(*tuning)) *Verifier {
	t.Helper()
	v := start(t, cfg, tune...)
	waitReady(t, v)
	return v
}

func waitReady(t *testing.T, v *Verifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady = %v; state %+v", err, v.State())
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testtime.EventuallyTrue(t, 5*time.Second, what, cond)
}

// testLogger logs to the test output, so that failures come with context.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
