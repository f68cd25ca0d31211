// Package dbsctest is a scripted Device Bound Session Credentials user
// agent, written from the specification (W3C webappsec-dbsc, "Send
// request", "Create session", "Identify session needing refresh"): it
// does over HTTP what a browser with DBSC does, with a software ECDSA
// P-256 key, so that a server's DBSC can be tested end to end where no
// browser registers (Debian's Chromium 156 here does not: see
// docs/web.md). It signs its proofs itself, with nothing of tegata's.
//
// A Browser is safe for concurrent use: like a browser, it makes one
// refresh per session at a time, and requests that need it wait for it.
package dbsctest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Browser is one browser profile: its cookies and, when DBSC is on, its
// device bound sessions with their keys.
type Browser struct {
	// Origin is the site's origin: requests are sent as from its pages
	// (Origin, Sec-Fetch-Site: same-origin).
	Origin string
	// NoDBSC makes it a browser without DBSC: it ignores registrations.
	NoDBSC bool
	// Now is its clock, which cookie lifetimes count on. Nil: time.Now.
	Now func() time.Time
	// Sent, when set, sees every request as it goes out, cookies and
	// proofs included: what a TLS-intercepting middlebox or a leaked
	// request log would capture.
	Sent func(*http.Request)

	mu       sync.Mutex
	cookies  map[string]cookie
	sessions map[string]*session
	events   []Event
	seq      int
}

type cookie struct {
	value   string
	expires time.Time // zero: a session cookie
}

// session is one device bound session (specification §"Device bound
// session").
type session struct {
	id         string
	refreshURL string
	credential string // the bound cookie's name
	challenge  string // cached, "" for none
	key        *ecdsa.PrivateKey
	seq        int        // registration order: older sessions refresh first
	refreshing sync.Mutex // one refresh at a time
}

// Event is something the Browser did about DBSC, for tests to assert on.
type Event struct {
	Kind    string // "registered", "registration_failed", "refreshed", "challenged", "terminated", "skipped"
	Session string
	Status  int // the server's answer
}

// Do sends req as a page of Origin would, after refreshing any device
// bound session whose cookie is missing (a browser defers the request
// until then), and acts on the DBSC headers of the answer. The answer's
// body is read and returned with it.
func (b *Browser) Do(req *http.Request) (*http.Response, []byte, error) {
	skipped := b.refreshMissing(req.Context())
	if len(skipped) > 0 {
		req.Header.Set("Secure-Session-Skipped", strings.Join(skipped, ", "))
	}
	resp, body, err := b.send(req)
	if err != nil {
		return nil, nil, err
	}
	b.registerFrom(req.Context(), resp)
	b.cacheChallenges(resp)
	return resp, body, nil
}

// Get is Do for a navigation to path.
func (b *Browser) Get(ctx context.Context, path string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.Origin+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/html")
	return b.Do(req)
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send sends one request with the cookies and stores the ones set.
func (b *Browser) send(req *http.Request) (*http.Response, []byte, error) {
	req.Header.Set("Origin", b.Origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for name, value := range b.Cookies() {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	if b.Sent != nil {
		b.Sent(req.Clone(req.Context()))
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	b.store(resp)
	return resp, body, nil
}

func (b *Browser) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// store keeps the cookies resp sets, with their lifetimes.
func (b *Browser) store(resp *http.Response) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cookies == nil {
		b.cookies = map[string]cookie{}
	}
	for _, c := range resp.Cookies() {
		switch {
		case c.MaxAge < 0:
			delete(b.cookies, c.Name)
		case c.MaxAge > 0:
			b.cookies[c.Name] = cookie{c.Value, b.now().Add(time.Duration(c.MaxAge) * time.Second)}
		default:
			b.cookies[c.Name] = cookie{value: c.Value, expires: c.Expires}
		}
	}
}

// Cookies returns the cookies the browser would send now, by name: what
// malware copying a profile's cookies takes.
func (b *Browser) Cookies() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]string{}
	for name, c := range b.cookies {
		if c.expires.IsZero() || b.now().Before(c.expires) {
			out[name] = c.value
		}
	}
	return out
}

// SetCookies puts cookies into the browser as session cookies (copied
// from another profile).
func (b *Browser) SetCookies(cs map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cookies == nil {
		b.cookies = map[string]cookie{}
	}
	for name, value := range cs {
		b.cookies[name] = cookie{value: value}
	}
}

// Expire drops the cookie name, as its Max-Age running out would.
func (b *Browser) Expire(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.cookies, name)
}

// Events returns what the browser did about DBSC, oldest first.
func (b *Browser) Events() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.events...)
}

func (b *Browser) event(kind, sid string, status int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, Event{kind, sid, status})
}

// Sessions returns the ids of the browser's device bound sessions.
func (b *Browser) Sessions() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for id := range b.sessions {
		ids = append(ids, id)
	}
	return ids
}

// CopySessionWithOwnKey gives b a device bound session like from's sid,
// but with a key of b's own: an attacker that copied the session's
// cookies and its DBSC state, but could not export the key.
func (b *Browser) CopySessionWithOwnKey(from *Browser, sid string) {
	from.mu.Lock()
	s := from.sessions[sid]
	from.mu.Unlock()
	if s == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sessions == nil {
		b.sessions = map[string]*session{}
	}
	b.seq++
	b.sessions[sid] = &session{id: s.id, refreshURL: s.refreshURL, credential: s.credential, key: newKey(), seq: b.seq}
}

func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return k
}

// refreshMissing refreshes every session whose bound cookie is missing
// (specification §"Identify session needing refresh"; every request here
// is same-origin and in scope but the refresh URL itself). It returns the
// Secure-Session-Skipped entries of refreshes that could not be made.
func (b *Browser) refreshMissing(ctx context.Context) []string {
	b.mu.Lock()
	var due []*session
	for _, s := range b.sessions {
		due = append(due, s)
	}
	b.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].seq < due[j].seq })
	var skipped []string
	for _, s := range due {
		if token := b.refreshIfMissing(ctx, s); token != "" {
			skipped = append(skipped, token+";session_identifier="+quote(s.id))
		}
	}
	return skipped
}

func (b *Browser) refreshIfMissing(ctx context.Context, s *session) string {
	s.refreshing.Lock()
	defer s.refreshing.Unlock()
	if _, ok := b.Cookies()[s.credential]; ok {
		return "" // present (refreshed meanwhile by a request that waited less)
	}
	b.mu.Lock()
	_, live := b.sessions[s.id]
	b.mu.Unlock()
	if !live {
		return ""
	}
	return b.refresh(ctx, s)
}

// refresh is §"Send request" for a refresh: with the cached challenge if
// any, and once more with the challenge of a 403. It returns the
// Secure-Session-Skipped token when the refresh could not be made.
func (b *Browser) refresh(ctx context.Context, s *session) string {
	challenge := b.takeChallenge(s)
	for attempt := 0; attempt < 3; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.refreshURL, nil)
		if err != nil {
			return "unreachable"
		}
		req.Header.Set("Sec-Secure-Session-Id", quote(s.id))
		if challenge != "" {
			req.Header.Set("Secure-Session-Response", quote(sign(s.key, challenge, false)))
		}
		resp, _, err := b.send(req)
		if err != nil {
			b.event("skipped", s.id, 0)
			return "unreachable"
		}
		b.cacheChallenges(resp)
		switch st := resp.StatusCode; {
		case st == http.StatusForbidden:
			b.event("challenged", s.id, st)
			if challenge = b.takeChallenge(s); challenge == "" {
				return ""
			}
			continue
		case st == http.StatusTooManyRequests || st >= 500:
			b.event("skipped", s.id, st)
			return "server_error"
		case st >= 400:
			b.terminate(s.id, st)
			return ""
		case st >= 300:
			return ""
		}
		b.event("refreshed", s.id, resp.StatusCode)
		return ""
	}
	return "quota_exceeded"
}

func (b *Browser) terminate(sid string, status int) {
	b.mu.Lock()
	delete(b.sessions, sid)
	b.mu.Unlock()
	b.event("terminated", sid, status)
}

func (b *Browser) takeChallenge(s *session) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := s.challenge
	s.challenge = ""
	return c
}

// cacheChallenges stores every Secure-Session-Challenge of resp on its
// session (§"Cache challenge").
func (b *Browser) cacheChallenges(resp *http.Response) {
	for _, v := range resp.Header.Values("Secure-Session-Challenge") {
		for _, item := range splitList(v) {
			c, params, ok := parseItem(item)
			if !ok || params["id"] == "" {
				continue
			}
			b.mu.Lock()
			if s := b.sessions[params["id"]]; s != nil {
				s.challenge = c
			}
			b.mu.Unlock()
		}
	}
}

// registerFrom acts on resp's Secure-Session-Registration (§"Process
// session registration"): a new key, its proof over the challenge, and the
// session the server's instructions describe.
func (b *Browser) registerFrom(ctx context.Context, resp *http.Response) {
	if b.NoDBSC {
		return
	}
	for _, v := range resp.Header.Values("Secure-Session-Registration") {
		for _, entry := range splitList(v) {
			algs, params, ok := parseInnerList(entry)
			if !ok || params["path"] == "" || !contains(algs, "ES256") {
				continue
			}
			endpoint, err := resp.Request.URL.Parse(params["path"])
			if err != nil {
				continue
			}
			b.register(ctx, endpoint, params["challenge"], params["authorization"])
		}
	}
}

type instructions struct {
	SessionIdentifier string `json:"session_identifier"`
	RefreshURL        string `json:"refresh_url"`
	Continue          *bool  `json:"continue"`
	Scope             struct {
		IncludeSite *bool `json:"include_site"`
	} `json:"scope"`
	Credentials []struct {
		Type       string `json:"type"`
		Name       string `json:"name"`
		Attributes string `json:"attributes"`
	} `json:"credentials"`
}

func (b *Browser) register(ctx context.Context, endpoint *url.URL, challenge, authorization string) {
	key := newKey()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), nil)
	if err != nil {
		return
	}
	req.Header.Set("Secure-Session-Response", quote(signRegistration(key, challenge, authorization)))
	resp, body, err := b.send(req)
	if err != nil {
		b.event("registration_failed", "", 0)
		return
	}
	var in instructions
	err = json.Unmarshal(body, &in)
	switch {
	case resp.StatusCode != http.StatusOK || err != nil:
		b.event("registration_failed", "", resp.StatusCode)
		return
	case in.Continue != nil && !*in.Continue, in.SessionIdentifier == "", in.Scope.IncludeSite == nil,
		len(in.Credentials) == 0, in.Credentials[0].Type != "cookie", in.Credentials[0].Name == "":
		b.event("registration_failed", in.SessionIdentifier, resp.StatusCode)
		return
	}
	refresh := endpoint
	if in.RefreshURL != "" {
		if refresh, err = endpoint.Parse(in.RefreshURL); err != nil {
			b.event("registration_failed", in.SessionIdentifier, resp.StatusCode)
			return
		}
	}
	b.mu.Lock()
	if b.sessions == nil {
		b.sessions = map[string]*session{}
	}
	b.seq++
	b.sessions[in.SessionIdentifier] = &session{id: in.SessionIdentifier, refreshURL: refresh.String(),
		credential: in.Credentials[0].Name, key: key, seq: b.seq}
	b.mu.Unlock()
	b.event("registered", in.SessionIdentifier, resp.StatusCode)
	b.cacheChallenges(resp)
}

// signRegistration and sign make a DBSC proof (§"DBSC Proof JWT
// Syntax"): typ dbsc+jwt, ES256, the challenge as jti; the public key in
// the header only for a registration.
func signRegistration(k *ecdsa.PrivateKey, challenge, authorization string) string {
	claims := map[string]any{"jti": challenge}
	if authorization != "" {
		claims["authorization"] = authorization
	}
	return signClaims(k, claims, true)
}

func sign(k *ecdsa.PrivateKey, challenge string, withKey bool) string {
	return signClaims(k, map[string]any{"jti": challenge}, withKey)
}

func signClaims(k *ecdsa.PrivateKey, claims map[string]any, withKey bool) string {
	header := map[string]any{"alg": "ES256", "typ": "dbsc+jwt"}
	if withKey {
		header["jwk"] = map[string]string{"kty": "EC", "crv": "P-256", "x": b64(pad32(k.X)), "y": b64(pad32(k.Y))}
	}
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
	if err != nil {
		panic(err)
	}
	return input + "." + b64(append(pad32(r), pad32(s)...))
}

func pad32(n *big.Int) []byte { return n.FillBytes(make([]byte, 32)) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Structured fields (RFC 9651), as much as DBSC's headers use.

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// splitList splits a list on the commas outside strings and parentheses.
func splitList(v string) []string {
	var out []string
	depth, inStr, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && c == '(':
			depth++
		case !inStr && c == ')':
			depth--
		case !inStr && depth == 0 && c == ',':
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(v[start:]))
}

// parseInnerList reads `(tok tok);k="v";k2="v2"`.
func parseInnerList(item string) ([]string, map[string]string, bool) {
	if !strings.HasPrefix(item, "(") {
		return nil, nil, false
	}
	end := strings.IndexByte(item, ')')
	if end < 0 {
		return nil, nil, false
	}
	params, ok := parseParams(item[end+1:])
	return strings.Fields(item[1:end]), params, ok
}

// parseItem reads `"string";k="v"`.
func parseItem(item string) (string, map[string]string, bool) {
	s, rest, ok := readString(item)
	if !ok {
		return "", nil, false
	}
	params, ok := parseParams(rest)
	return s, params, ok
}

func parseParams(rest string) (map[string]string, bool) {
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] != ';' {
			return nil, false
		}
		name, value, ok := strings.Cut(rest[1:], "=")
		if !ok {
			return nil, false
		}
		s, after, ok := readString(value)
		if !ok {
			return nil, false
		}
		params[strings.TrimSpace(name)] = s
		rest = after
	}
	return params, true
}

func readString(v string) (string, string, bool) {
	if !strings.HasPrefix(v, `"`) {
		return "", "", false
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if i+1 >= len(v) {
				return "", "", false
			}
			i++
			b.WriteByte(v[i])
		case '"':
			return b.String(), v[i+1:], true
		default:
			b.WriteByte(v[i])
		}
	}
	return "", "", false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Describe sums up the events, for test failure messages.
func Describe(events []Event) string {
	var parts []string
	for _, e := range events {
		parts = append(parts, fmt.Sprintf("%s(%s,%d)", e.Kind, e.Session, e.Status))
	}
	return strings.Join(parts, " ")
}
