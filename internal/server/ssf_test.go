package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/token"
)

const (
	caepSessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	caepClaimsChange   = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
	ssfVerification    = "https://schemas.openid.net/secevent/ssf/event-type/verification"
)

// receiver is a push receiver (RFC 8935) on loopback. It records every SET
// it is handed (before answering), and can be told to fail or to hold a
// request until released.
type receiver struct {
	*httptest.Server
	t    *testing.T
	auth string

	mu      sync.Mutex
	sets    []string
	failing bool
	hold    chan struct{} // non-nil: requests wait for it (or their end)
	arrived chan struct{} // signalled on every request
}

func newReceiver(t *testing.T, auth string) *receiver {
	rx := &receiver{t: t, auth: auth, arrived: make(chan struct{}, 1000)}
	rx.Server = httptest.NewServer(http.HandlerFunc(rx.serve))
	t.Cleanup(rx.Close)
	return rx
}

func (rx *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/secevent+jwt" ||
		r.Header.Get("Authorization") != rx.auth {
		rx.t.Errorf("push %s with Content-Type %q, Authorization %q: want POST application/secevent+jwt with %q",
			r.Method, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), rx.auth)
		http.Error(w, `{"err":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	rx.mu.Lock()
	failing, hold := rx.failing, rx.hold
	if !failing {
		rx.sets = append(rx.sets, string(body))
	}
	rx.mu.Unlock()
	rx.arrived <- struct{}{}
	if failing {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

func (rx *receiver) setFailing(f bool) { rx.mu.Lock(); rx.failing = f; rx.mu.Unlock() }

func (rx *receiver) received() []string {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return slices.Clone(rx.sets)
}

// waitFor is eventually for a condition that says what is still missing:
// a failure shows the last answer.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	var last error
	defer func() {
		if t.Failed() && last != nil {
			t.Logf("%s: last: %v", what, last)
		}
	}()
	eventually(t, what, func() bool { last = cond(); return last == nil })
}

// waitSets waits until the receiver holds n SETs.
func (rx *receiver) waitSets(t *testing.T, n int) []string {
	t.Helper()
	return rx.waitSetsAdvancing(t, n, nil)
}

// waitSetsAdvancing is waitSets that moves the authority's clock a minute
// on every look, so that retries scheduled by failures fall due (the test
// clock stands still otherwise).
func (rx *receiver) waitSetsAdvancing(t *testing.T, n int, clk *clock) []string {
	t.Helper()
	waitFor(t, fmt.Sprintf("receiver gets %d SETs", n), func() error {
		if got := len(rx.received()); got < n {
			if clk != nil {
				clk.Add(time.Minute)
			}
			return fmt.Errorf("has %d", got)
		}
		return nil
	})
	return rx.received()
}

// set is a verified Security Event Token.
type set struct {
	header map[string]any
	claims map[string]any
	typ    string         // its one event type
	event  map[string]any // its one event
}

// verifySET checks a SET's signature against the authority's JWKS with
// go-jose (RS256 only), and its shape against the SSF SET profile.
func verifySET(t *testing.T, baseURL, raw string) set {
	t.Helper()
	_, jwksBody := fetch(t, baseURL+"/.well-known/jwks.json", "")
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(jwksBody, &jwks); err != nil {
		t.Fatal(err)
	}
	sig, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("SET is not an RS256 JWS: %v", err)
	}
	h := sig.Signatures[0].Protected
	keys := jwks.Key(h.KeyID)
	if len(keys) != 1 || keys[0].Use != "sig" || keys[0].Algorithm != "RS256" {
		t.Fatalf("SET kid %q: JWKS has %+v, want one RS256 key with use sig", h.KeyID, keys)
	}
	if bits := keys[0].Key.(interface{ Size() int }).Size() * 8; bits < 2048 {
		t.Fatalf("event key has %d bits, want at least 2048", bits)
	}
	payload, err := sig.Verify(keys[0])
	if err != nil {
		t.Fatalf("SET signature: %v", err)
	}
	s := set{header: map[string]any{"typ": h.ExtraHeaders["typ"], "kid": h.KeyID}, claims: map[string]any{}}
	if err := json.Unmarshal(payload, &s.claims); err != nil {
		t.Fatal(err)
	}
	if s.header["typ"] != "secevent+jwt" {
		t.Errorf("SET typ = %v, want secevent+jwt", s.header["typ"])
	}
	for _, c := range []string{"sub", "exp"} {
		if _, ok := s.claims[c]; ok {
			t.Errorf("SET carries %q, which the SSF SET profile forbids", c)
		}
	}
	for _, c := range []string{"iss", "jti", "iat", "aud", "sub_id", "events"} {
		if _, ok := s.claims[c]; !ok {
			t.Errorf("SET lacks %q", c)
		}
	}
	events, _ := s.claims["events"].(map[string]any)
	if len(events) != 1 {
		t.Fatalf("SET has %d events, want exactly one", len(events))
	}
	for typ, ev := range events {
		s.typ, s.event = typ, ev.(map[string]any)
	}
	return s
}

// checkCAEP checks the members every CAEP event of tegata carries.
func checkCAEP(t *testing.T, s set, entity, reason string) {
	t.Helper()
	if s.event["initiating_entity"] != entity {
		t.Errorf("%s initiating_entity = %v, want %s", s.typ, s.event["initiating_entity"], entity)
	}
	ra, _ := s.event["reason_admin"].(map[string]any)
	if ra["en"] != reason {
		t.Errorf("%s reason_admin = %v, want {en: %q}", s.typ, s.event["reason_admin"], reason)
	}
	if _, ok := s.event["event_timestamp"].(float64); !ok {
		t.Errorf("%s has no numeric event_timestamp", s.typ)
	}
	if txn, _ := s.claims["txn"].(string); txn == "" {
		t.Errorf("%s has no txn", s.typ)
	}
}

func createStream(t *testing.T, e *env, body string) map[string]any {
	t.Helper()
	var out map[string]any
	if err := e.admin.Do(ctx(t), "POST", "/ssf/streams", json.RawMessage(body), &out); err != nil {
		t.Fatalf("create stream %s: %v", body, err)
	}
	return out
}

func insecure(c *server.Config) { c.SSFInsecurePush = true }

func TestSSFConfiguration(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	_, body := fetch(t, e.URL+"/.well-known/ssf-configuration", "")
	var md map[string]any
	if err := json.Unmarshal(body, &md); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"spec_version": "1_0", "issuer": e.URL, "jwks_uri": e.URL + "/.well-known/jwks.json",
		"configuration_endpoint": e.URL + "/ssf/streams", "status_endpoint": e.URL + "/ssf/status",
		"verification_endpoint": e.URL + "/ssf/verify", "default_subjects": "ALL",
	}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("ssf-configuration %s = %v, want %v", k, md[k], v)
		}
	}
	if m, _ := json.Marshal(md["delivery_methods_supported"]); string(m) != `["urn:ietf:rfc:8935","urn:ietf:rfc:8936"]` {
		t.Errorf("delivery_methods_supported = %s", m)
	}
}

// TestSSFPushEvents: every cause of revocation arrives as its CAEP event,
// in log order, signed RS256 with a key of the published JWKS that access
// token verifiers never use.
func TestSSFPushEvents(t *testing.T) {
	t.Parallel()
	e := start(t, insecure)
	rx := newReceiver(t, "Bearer rx-secret")
	cfg := createStream(t, e, `{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"`+rx.URL+
		`","authorization_header":"Bearer rx-secret"},"description":"test receiver"}`)
	id := cfg["stream_id"].(string)
	if cfg["aud"] != rx.URL || cfg["iss"] != e.URL {
		t.Errorf("stream config = %v, want aud %s (the endpoint) and iss %s", cfg, rx.URL, e.URL)
	}
	if strings.Contains(fmt.Sprint(cfg), "rx-secret") {
		t.Error("the stream config shows the receiver's authorization header")
	}
	if err := e.admin.Do(ctx(t), "POST", "/ssf/verify", map[string]string{"stream_id": id, "state": "hello"}, nil); err != nil {
		t.Fatal(err)
	}
	v := verifySET(t, e.URL, rx.waitSets(t, 1)[0])
	if v.typ != ssfVerification || v.event["state"] != "hello" || fmt.Sprint(v.claims["sub_id"]) != "map[format:opaque id:"+id+"]" {
		t.Errorf("verification SET = %v %v, want state hello about the stream", v.typ, v.claims)
	}

	mk := func(sub string) client.Tokens {
		tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: sub})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	a, b := mk("alice"), mk("bob")
	mk("carol")
	mk("dave")
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: a.SessionID, Reason: "lost laptop"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.anon.RevokeToken(ctx(t), client.TokenRevocation{Token: b.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "carol", Scope: "sessions", Reason: ""}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "dave", Scope: "access", Reason: ""}); err != nil { // no CAEP event
		t.Fatal(err)
	}
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "dave", Scope: "access", Reason: "demoted", Claims: map[string]any{"role": "viewer"}}); err != nil {
		t.Fatal(err)
	}
	theft := mk("erin")
	if _, err := e.anon.Refresh(ctx(t), theft.RefreshToken); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	if _, err := e.anon.Refresh(ctx(t), theft.RefreshToken); err == nil {
		t.Fatal("reused refresh token accepted")
	}

	sets := rx.waitSets(t, 6)[1:]
	var got []set
	for _, raw := range sets {
		got = append(got, verifySET(t, e.URL, raw))
	}
	subID := func(s set) string { b, _ := json.Marshal(s.claims["sub_id"]); return string(b) }
	sessionSub := func(sid, sub string) string {
		return `{"format":"complex","session":{"format":"opaque","id":"` + sid + `"},"user":{"format":"iss_sub","iss":"` +
			e.URL + `","sub":"` + sub + `"}}`
	}
	userSub := func(sub string) string { return `{"format":"iss_sub","iss":"` + e.URL + `","sub":"` + sub + `"}` }
	wants := []struct {
		typ, subID, entity, reason string
	}{
		{caepSessionRevoked, sessionSub(a.SessionID, "alice"), "admin", "lost laptop"},
		{caepSessionRevoked, sessionSub(b.SessionID, "bob"), "user", "token revocation (RFC 7009)"},
		{caepSessionRevoked, userSub("carol"), "admin", "All sessions of the user revoked"},
		{caepClaimsChange, userSub("dave"), "admin", "demoted"},
		{caepSessionRevoked, sessionSub(theft.SessionID, "erin"), "system", "refresh token reuse"},
	}
	var lastJTI string
	for i, w := range wants {
		s := got[i]
		if s.typ != w.typ || subID(s) != w.subID || s.claims["aud"] != rx.URL || s.claims["iss"] != e.URL {
			t.Errorf("SET %d = %s about %s (aud %v, iss %v), want %s about %s", i, s.typ, subID(s), s.claims["aud"],
				s.claims["iss"], w.typ, w.subID)
		}
		checkCAEP(t, s, w.entity, w.reason)
		jti, _ := s.claims["jti"].(string)
		if jti <= lastJTI && len(jti) == len(lastJTI) {
			t.Errorf("SET %d jti %q does not follow %q: not in log order", i, jti, lastJTI)
		}
		lastJTI = jti
	}
	if m, _ := json.Marshal(got[3].event["claims"]); string(m) != `{"role":"viewer"}` {
		t.Errorf("token-claims-change claims = %s, want the new claims", m)
	}

	// The event key is published, and access token verifiers ignore it:
	// a SET is never an access token.
	_, jwksBody := fetch(t, e.URL+"/.well-known/jwks.json", "")
	ks, err := token.ParseJWKS(jwksBody)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.Lookup(got[0].header["kid"].(string)); ok {
		t.Error("the access token key set holds the RS256 event key")
	}
	if _, err := e.Authority.Verifier().Verify(ctx(t), sets[0]); err == nil {
		t.Error("the access token verifier accepted a SET")
	}
}

// TestSSFPushSurvivesFailures: a receiver that fails for an hour gets every
// event, in order, when it comes back; events pruned past the retention
// are counted as lost instead.
func TestSSFPushSurvivesFailures(t *testing.T) {
	t.Parallel()
	e := start(t, insecure)
	rx := newReceiver(t, "")
	id := createStream(t, e, `{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"`+rx.URL+`"}}`)["stream_id"].(string)
	rx.setFailing(true)
	var sids []string
	for i := range 5 {
		tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: fmt.Sprint("u", i)})
		if err != nil {
			t.Fatal(err)
		}
		sids = append(sids, tk.SessionID)
		if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tk.SessionID, Reason: ""}); err != nil {
			t.Fatal(err)
		}
	}
	state := func() client.Stream {
		list, err := e.admin.Streams(ctx(t))
		if err != nil || len(list) != 1 {
			t.Fatalf("Streams() = %v, %v", list, err)
		}
		return list[0]
	}
	waitFor(t, "a failed attempt is recorded", func() error {
		if st := state(); st.State.FailedAttempts == 0 || !strings.Contains(st.State.LastError, "503") {
			return fmt.Errorf("state %+v", st.State)
		}
		return nil
	})
	// An hour passes: every revocation has expired (15 min), and a sweep
	// runs; the stream still holds them.
	for range 6 {
		e.clock.Add(10 * time.Minute)
		e.Authority.Sweep(ctx(t))
	}
	rx.setFailing(false)
	sets := rx.waitSetsAdvancing(t, 5, e.clock)
	for i, raw := range sets {
		s := verifySET(t, e.URL, raw)
		sub, _ := s.claims["sub_id"].(map[string]any)
		if sess, _ := sub["session"].(map[string]any); sess["id"] != sids[i] {
			t.Errorf("SET %d is about %v, want session %s (log order)", i, sub, sids[i])
		}
	}
	waitFor(t, "the stream catches up", func() error {
		if st := state(); st.State.Position != st.State.Head || st.State.FailedAttempts != 0 || st.State.Delivered != 5 {
			return fmt.Errorf("state %+v", st.State)
		}
		return nil
	})
	if len(rx.received()) != 5 {
		t.Errorf("receiver has %d SETs, want 5 (no duplicates)", len(rx.received()))
	}
	_ = id
}

// TestSSFRetentionBound: past the retention, pruned events are skipped and
// counted, and delivery goes on with the rest.
func TestSSFRetentionBound(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { insecure(c); c.Authority.EventRetention = 30 * time.Minute })
	rx := newReceiver(t, "")
	createStream(t, e, `{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"`+rx.URL+`"}}`)
	rx.setFailing(true)
	revoke := func(sub string) {
		tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: sub})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tk.SessionID, Reason: ""}); err != nil {
			t.Fatal(err)
		}
	}
	revoke("old1")
	revoke("old2")
	waitFor(t, "a failed attempt is recorded", func() error {
		if list, err := e.admin.Streams(ctx(t)); err != nil || list[0].State.FailedAttempts == 0 {
			return fmt.Errorf("streams %+v, %v", list, err)
		}
		return nil
	})
	e.clock.Add(time.Hour)
	e.Authority.Sweep(ctx(t)) // old1 pruned; old2 is the log's head, never pruned
	revoke("new")
	rx.setFailing(false)
	// old2 may be pruned too while we wait (a background sweep, with the
	// clock moving on): what matters is that each of the three events is
	// either delivered or counted as lost, and the stream goes on.
	var st client.Stream
	waitFor(t, "the stream catches up", func() error {
		e.clock.Add(time.Minute)
		list, err := e.admin.Streams(ctx(t))
		if err != nil || len(list) != 1 || list[0].State.Position != list[0].State.Head || list[0].State.Delivered == 0 {
			return fmt.Errorf("streams %+v, %v", list, err)
		}
		st = list[0]
		return nil
	})
	sets := rx.received()
	if st.State.Lost < 1 || st.State.Delivered+st.State.Lost != 3 || int64(len(sets)) != st.State.Delivered {
		t.Errorf("state %+v with %d SETs received, want old1 lost and every event delivered or lost", st.State, len(sets))
	}
	last := verifySET(t, e.URL, sets[len(sets)-1])
	if sess := last.claims["sub_id"].(map[string]any)["user"].(map[string]any); sess["sub"] != "new" {
		t.Errorf("last SET is about %v, want the revocation made after the loss", sess)
	}
}

// TestSSFPushPublicOnly: without --ssf-insecure-push a stream cannot aim at
// http:// or a private address, and a name that resolves to loopback is
// refused when connecting.
func TestSSFPushPublicOnly(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, url := range []string{"http://example.com/events", "https://10.1.2.3/events", "https://[::1]/x",
		"https://169.254.169.254/latest", "https://user:pw@example.com/", "ftp://example.com/", "https://100.64.1.1/"} {
		var ce *client.Error
		err := e.admin.Do(ctx(t), "POST", "/ssf/streams", map[string]any{
			"delivery": map[string]string{"method": "urn:ietf:rfc:8935", "endpoint_url": url}}, nil)
		if !errors.As(err, &ce) || ce.Status != 400 {
			t.Errorf("create push stream to %s = %v, want 400", url, err)
		}
	}
	rx := newReceiver(t, "")
	loopbackName := strings.Replace(rx.URL, "http://127.0.0.1", "https://localhost", 1)
	createStream(t, e, `{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"`+loopbackName+`"}}`)
	tk, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"})
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tk.SessionID, Reason: ""}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the connection is refused", func() error {
		list, err := e.admin.Streams(ctx(t))
		if err != nil || len(list) != 1 || !strings.Contains(list[0].State.LastError, "not public") {
			return fmt.Errorf("streams %+v, %v", list, err)
		}
		return nil
	})
	select {
	case <-rx.arrived:
		t.Error("the receiver on loopback was reached")
	default:
	}
}

func pollSets(t *testing.T, c *client.Client, id string, body map[string]any) (map[string]string, bool) {
	t.Helper()
	var out struct {
		Sets          map[string]string `json:"sets"`
		MoreAvailable bool              `json:"moreAvailable"`
	}
	if err := c.Do(ctx(t), "POST", "/ssf/poll/"+id, body, &out); err != nil {
		t.Fatalf("poll %v: %v", body, err)
	}
	return out.Sets, out.MoreAvailable
}

// TestSSFPoll: RFC 8936 polling with acknowledgements, maxEvents,
// returnImmediately and long polling.
func TestSSFPoll(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	feedKey, err := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "receiver", Role: "feed", Reason: ""})
	if err != nil {
		t.Fatal(err)
	}
	cfg := createStream(t, e, `{"delivery":{"method":"urn:ietf:rfc:8936"},"events_requested":["`+caepSessionRevoked+`","urn:unknown"],"tegata_poll_key":"`+feedKey.ID+`"}`)
	id := cfg["stream_id"].(string)
	if d := cfg["delivery"].(map[string]any); d["endpoint_url"] != e.URL+"/ssf/poll/"+id {
		t.Errorf("poll endpoint_url = %v", d["endpoint_url"])
	}
	if m, _ := json.Marshal(cfg["events_delivered"]); string(m) != `["`+caepSessionRevoked+`"]` {
		t.Errorf("events_delivered = %s, want session-revoked only", m)
	}
	if cfg["tegata_poll_key"] != feedKey.ID {
		t.Errorf("tegata_poll_key = %v, want the receiver's key %s", cfg["tegata_poll_key"], feedKey.ID)
	}
	rxc := &client.Client{BaseURL: e.URL, APIKey: feedKey.Key}
	pollKeyRules(t, e, id)
	if sets, _ := pollSets(t, rxc, id, map[string]any{"returnImmediately": true}); len(sets) != 0 {
		t.Fatalf("first poll = %v, want nothing", sets)
	}
	var sids []string
	for i := range 3 {
		tk, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: fmt.Sprint("p", i)})
		sids = append(sids, tk.SessionID)
		if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tk.SessionID, Reason: ""}); err != nil {
			t.Fatal(err)
		}
	}
	// Filtered out: a claims change.
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "p0", Scope: "access", Reason: "", Claims: map[string]any{"r": 1}}); err != nil {
		t.Fatal(err)
	}
	sets, more := pollSets(t, rxc, id, map[string]any{"returnImmediately": true, "maxEvents": 2})
	if len(sets) != 2 || !more {
		t.Fatalf("poll maxEvents 2 = %d SETs, more %v, want 2 and more", len(sets), more)
	}
	var jtis []string
	for jti, raw := range sets {
		verifySET(t, e.URL, raw)
		jtis = append(jtis, jti)
	}
	// Unacknowledged SETs come back; acknowledged ones do not.
	again, _ := pollSets(t, rxc, id, map[string]any{"returnImmediately": true, "ack": jtis[:1]})
	if _, ok := again[jtis[0]]; ok || len(again) != 2 {
		t.Errorf("poll after acking %s = %v, want the other two", jtis[0], keysOf(again))
	}
	all := append(jtis[:1], keysOf(again)...)
	rest, more := pollSets(t, rxc, id, map[string]any{"returnImmediately": true, "ack": all, "maxEvents": 0})
	if len(rest) != 0 || more {
		t.Errorf("poll acking everything, maxEvents 0 = %v, more %v, want nothing", rest, more)
	}
	// The acknowledged events count as delivered, as a push stream's do.
	var st struct {
		State struct{ Delivered, Position, Head int64 } `json:"tegata_delivery"`
	}
	if err := e.admin.Do(ctx(t), "GET", "/ssf/streams?stream_id="+id, nil, &st); err != nil || st.State.Delivered != 3 {
		t.Errorf("stream state after 3 acknowledged events = %+v, %v, want delivered 3", st.State, err)
	}
	// Long poll: waits until an event exists.
	got := make(chan map[string]string, 1)
	go func() {
		s, _ := pollSets(t, rxc, id, map[string]any{"returnImmediately": false})
		got <- s
	}()
	tk, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "late"})
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tk.SessionID, Reason: ""}); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if len(s) != 1 {
			t.Errorf("long poll = %d SETs, want the new one", len(s))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long poll did not return the new event")
	}
	// Verification by poll.
	if err := e.admin.Do(ctx(t), "POST", "/ssf/verify", map[string]string{"stream_id": id, "state": "st"}, nil); err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	err = e.admin.Do(ctx(t), "POST", "/ssf/verify", map[string]string{"stream_id": id}, nil)
	if !errors.As(err, &ce) || ce.Status != http.StatusTooManyRequests {
		t.Errorf("second verification within the interval = %v, want 429", err)
	}
	vs, _ := pollSets(t, rxc, id, map[string]any{"returnImmediately": true})
	found := false
	for jti, raw := range vs {
		if s := verifySET(t, e.URL, raw); s.typ == ssfVerification && s.event["state"] == "st" {
			found = true
			pollSets(t, rxc, id, map[string]any{"returnImmediately": true, "ack": []string{jti}})
		}
	}
	if !found {
		t.Errorf("poll after a verification request = %v, want the verification SET", keysOf(vs))
	}
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestSSFStreamManagement: read, update, status and delete per SSF 1.0.
func TestSSFStreamManagement(t *testing.T) {
	t.Parallel()
	e := start(t, insecure)
	rx := newReceiver(t, "")
	id := createStream(t, e, `{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"`+rx.URL+`"}}`)["stream_id"].(string)
	var cfg map[string]any
	if err := e.admin.Do(ctx(t), "GET", "/ssf/streams?stream_id="+id, nil, &cfg); err != nil || cfg["stream_id"] != id {
		t.Fatalf("read stream = %v, %v", cfg, err)
	}
	// PATCH: only claims changes from now on.
	if err := e.admin.Do(ctx(t), "PATCH", "/ssf/streams", map[string]any{"stream_id": id,
		"events_requested": []string{caepClaimsChange}}, &cfg); err != nil {
		t.Fatal(err)
	}
	if m, _ := json.Marshal(cfg["events_delivered"]); string(m) != `["`+caepClaimsChange+`"]` {
		t.Errorf("events_delivered after PATCH = %s", m)
	}
	var ce *client.Error
	err := e.admin.Do(ctx(t), "PATCH", "/ssf/streams", map[string]any{"stream_id": id, "iss": "https://other"}, nil)
	if !errors.As(err, &ce) || ce.Status != 400 {
		t.Errorf("PATCH with a wrong iss = %v, want 400", err)
	}
	// Paused: events are held, then delivered when enabled again.
	if err := e.admin.Do(ctx(t), "POST", "/ssf/status", map[string]string{"stream_id": id, "status": "paused",
		"reason": "maintenance"}, nil); err != nil {
		t.Fatal(err)
	}
	tk, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"})
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tk.SessionID, Reason: ""}); err != nil { // filtered out
		t.Fatal(err)
	}
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "alice", Scope: "access", Reason: "", Claims: map[string]any{"role": "x"}}); err != nil {
		t.Fatal(err)
	}
	var st map[string]string
	if err := e.admin.Do(ctx(t), "GET", "/ssf/status?stream_id="+id, nil, &st); err != nil ||
		st["status"] != "paused" || st["reason"] != "maintenance" {
		t.Fatalf("status = %v, %v", st, err)
	}
	if got := rx.received(); len(got) != 0 {
		t.Fatalf("a paused stream delivered %d SETs", len(got))
	}
	// The receiver takes the held SET but does not answer yet: the
	// delivery is still running through the disable, the revocation made
	// while disabled and the enable below.
	rx.mu.Lock()
	rx.hold = make(chan struct{})
	rx.mu.Unlock()
	if err := e.admin.Do(ctx(t), "POST", "/ssf/status", map[string]string{"stream_id": id, "status": "enabled"}, nil); err != nil {
		t.Fatal(err)
	}
	if s := verifySET(t, e.URL, rx.waitSets(t, 1)[0]); s.typ != caepClaimsChange {
		t.Errorf("after enabling: %s, want the held token-claims-change", s.typ)
	}
	// Disabled: events are dropped, even by a delivery that started before.
	if err := e.admin.Do(ctx(t), "POST", "/ssf/status", map[string]string{"stream_id": id, "status": "disabled"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "alice", Scope: "access", Reason: "", Claims: map[string]any{"role": "y"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Do(ctx(t), "POST", "/ssf/status", map[string]string{"stream_id": id, "status": "enabled"}, nil); err != nil {
		t.Fatal(err)
	}
	rx.mu.Lock()
	close(rx.hold)
	rx.hold = nil
	rx.mu.Unlock()
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "alice", Scope: "access", Reason: "", Claims: map[string]any{"role": "z"}}); err != nil {
		t.Fatal(err)
	}
	s := verifySET(t, e.URL, rx.waitSets(t, 2)[1])
	if m, _ := json.Marshal(s.event["claims"]); string(m) != `{"role":"z"}` {
		t.Errorf("after disable/enable: claims %s, want the change made after enabling (y was dropped)", m)
	}
	if err := e.admin.DeleteStream(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	err = e.admin.Do(ctx(t), "GET", "/ssf/streams?stream_id="+id, nil, nil)
	if !errors.As(err, &ce) || ce.Status != 404 {
		t.Errorf("read deleted stream = %v, want 404", err)
	}
	// The feed key may poll but not manage.
	fk, _ := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "rx", Role: "feed", Reason: ""})
	err = (&client.Client{BaseURL: e.URL, APIKey: fk.Key}).Do(ctx(t), "POST", "/ssf/streams", map[string]any{}, nil)
	if !errors.As(err, &ce) || ce.Status != 403 {
		t.Errorf("create stream with a feed key = %v, want 403", err)
	}
}

// TestSSFRestartMidDelivery: an authority stopped while a SET is in flight
// loses nothing when started again, and sends again at most that SET.
func TestSSFRestartMidDelivery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func() (*server.Running, *client.Client) {
		r, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: dir,
			Issuer: "http://tegata.test", SSFInsecurePush: true, Logger: logger,
			Authority: authority.Config{StatusLists: authority.StatusListConfig{Size: -1}}})
		if err != nil {
			t.Fatal(err)
		}
		return r, &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	}
	stop := func(r *server.Running) {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(c); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	r, admin := run()
	rx := newReceiver(t, "")
	if _, err := admin.CreateStream(ctx(t), client.NewStream{PushURL: rx.URL}); err != nil {
		t.Fatal(err)
	}
	// The receiver takes the first two SETs, then holds the third.
	const n = 6
	var sids []string
	for i := range n {
		tk, err := admin.CreateSession(ctx(t), client.SessionRequest{Subject: fmt.Sprint("r", i)})
		if err != nil {
			t.Fatal(err)
		}
		sids = append(sids, tk.SessionID)
	}
	rx.waitSets(t, 0)
	for i := range 2 {
		if _, err := admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: sids[i], Reason: ""}); err != nil {
			t.Fatal(err)
		}
	}
	rx.waitSets(t, 2)
	rx.mu.Lock()
	rx.hold = make(chan struct{})
	rx.mu.Unlock()
	for i := 2; i < n; i++ {
		if _, err := admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: sids[i], Reason: ""}); err != nil {
			t.Fatal(err)
		}
	}
	rx.waitSets(t, 3) // the third is in flight, unanswered
	stop(r)
	rx.mu.Lock()
	close(rx.hold)
	rx.hold = nil
	rx.mu.Unlock()

	r2, _ := run()
	defer stop(r2)
	sets := rx.waitSets(t, n+1)
	var order []string
	for _, raw := range sets {
		s := verifySET(t, r2.URL, raw)
		sub := s.claims["sub_id"].(map[string]any)["session"].(map[string]any)
		order = append(order, sub["id"].(string))
	}
	want := append(append(slices.Clone(sids[:3]), sids[2]), sids[3:]...)
	if !slices.Equal(order, want) {
		t.Errorf("received sessions %v, want %v: everything, in order, the unanswered third twice", order, want)
	}
	waitFor(t, "no more SETs", func() error {
		if got := len(rx.received()); got != n+1 {
			return fmt.Errorf("%d SETs", got)
		}
		return nil
	})
}

// pollKeyRules: a poll stream is polled (and so its events acknowledged,
// that is deleted) by the key it names alone, not by any other reader or
// admin key, and a stream can only name a live key.
func pollKeyRules(t *testing.T, e *env, id string) {
	t.Helper()
	other := createKey(t, e.admin, "other-verifier", "feed")
	for name, c := range map[string]*client.Client{"another feed key": {BaseURL: e.URL, APIKey: other.Key}, "an admin key": e.admin} {
		err := c.Do(ctx(t), "POST", "/ssf/poll/"+id, map[string]any{"returnImmediately": true, "ack": []string{"x"}}, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 403 || ce.Code != "access_denied" {
			t.Errorf("poll with %s = %v, want 403 access_denied", name, err)
		}
	}
	var out map[string]any
	err := e.admin.Do(ctx(t), "POST", "/ssf/streams", json.RawMessage(`{"tegata_poll_key":"no-such-key"}`), &out)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Description, "tegata_poll_key") {
		t.Errorf("create with a poll key that names no live key = %v, want 400 naming tegata_poll_key", err)
	}
	// Without one, the creating key polls.
	own := createStream(t, e, `{}`)
	if _, more := pollSets(t, e.admin, own["stream_id"].(string), map[string]any{"returnImmediately": true}); more {
		t.Errorf("poll of a new stream by its creator: more = true, want an empty answer")
	}
	// A push stream made a poll stream names the key that polls it.
	push := createStream(t, e, `{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://receiver.example/events"}}`)["stream_id"].(string)
	err = e.admin.Do(ctx(t), "PATCH", "/ssf/streams", map[string]any{"stream_id": push,
		"delivery": map[string]string{"method": "urn:ietf:rfc:8936"}}, nil)
	if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Description, "tegata_poll_key") {
		t.Errorf("PATCH a push stream to poll without a poll key = %v, want 400 naming tegata_poll_key", err)
	}
	if err := e.admin.Do(ctx(t), "PATCH", "/ssf/streams", map[string]any{"stream_id": push,
		"delivery": map[string]string{"method": "urn:ietf:rfc:8936"}, "tegata_poll_key": other.ID}, nil); err != nil {
		t.Errorf("PATCH a push stream to poll with a poll key = %v, want nil", err)
	}
	oc := &client.Client{BaseURL: e.URL, APIKey: other.Key}
	if _, more := pollSets(t, oc, push, map[string]any{"returnImmediately": true}); more {
		t.Errorf("poll by the key the PATCH named: more = true, want an empty answer")
	}
}
