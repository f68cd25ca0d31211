package verifier

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/localverifier"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/token"
)

// The conformance vectors in testdata/conformance are the one statement of
// a verifier's semantics that tegata's Go verifier and the Node package
// (js/test/conformance.test.js) both run: tokens with the code each check
// gives them, feed events in the protocol's wire format, clock steps and
// the verdicts expected after each. go test ./verifier -run Conformance
// -update writes them again from conformanceVectors.

var update = flag.Bool("update", false, "write testdata/conformance from conformanceVectors")

const conformanceDir = "../testdata/conformance"

// vector is one file of testdata/conformance.
type vector struct {
	Description  string            `json:"description"`
	Issuer       string            `json:"issuer"`
	Audience     string            `json:"audience"`
	LeewayS      int64             `json:"leeway_s"`
	MaxLifetimeS int64             `json:"max_lifetime_s"`
	StartUnix    int64             `json:"start_unix"`
	JWKS         json.RawMessage   `json:"jwks"`
	Tokens       map[string]string `json:"tokens"`
	Steps        []step            `json:"steps"`
}

// step is one action of a vector; exactly one of its fields other than
// Note is set.
type step struct {
	Note     string `json:"note,omitempty"`
	Verify   string `json:"verify,omitempty"` // a token's name
	Want     string `json:"want,omitempty"`   // "ok" or the Code of the error
	Feed     string `json:"feed,omitempty"`   // events of one stream, SSE as the node sends them
	AdvanceS int64  `json:"advance_s,omitempty"`
	Prune    bool   `json:"prune,omitempty"`
	Entries  *int   `json:"entries,omitempty"`  // the size of the revocation set
	Position *int64 `json:"position,omitempty"` // the feed position
}

func TestConformance(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	files, err := filepath.Glob(filepath.Join(conformanceDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance vectors in %s (%v)", conformanceDir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var vec vector
			if err := json.Unmarshal(data, &vec); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			runVector(t, vec)
		})
	}
}

// conformanceRun is a local verifier over the vector's keys, with a feed
// client whose stream the test writes one step at a time: each feed step is
// one response, and the client's next request shows it has applied it all.
type conformanceRun struct {
	clock    *fakeClock
	set      *revocation.Set
	v        *Verifier
	client   *feed.Client
	steps    chan string
	requests chan struct{}
}

func runVector(t *testing.T, vec vector) {
	ks, err := token.ParseJWKS(vec.JWKS)
	if err != nil {
		t.Fatalf("ParseJWKS = %v", err)
	}
	r := &conformanceRun{clock: testtimeClock(vec.StartUnix), set: revocation.NewSet(0),
		steps: make(chan string), requests: make(chan struct{})}
	cfg := Config{Issuer: vec.Issuer, Audience: vec.Audience, Leeway: time.Duration(vec.LeewayS) * time.Second,
		MaxLifetime: time.Duration(vec.MaxLifetimeS) * time.Second, Logger: slog.New(slog.DiscardHandler)}
	cfg.Clock = r.clock
	cfg.Local = &localverifier.Source{Keys: func() token.KeyLookup { return ks }, Set: r.set}
	if r.v, err = New(context.Background(), cfg); err != nil {
		t.Fatalf("New(local) = %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(r.serveFeed))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r.client = &feed.Client{URLs: []string{srv.URL}, ApplyMany: r.set.ApplyMany, Grow: r.set.Grow, Reset: r.set.Reset, Clock: r.clock,
		Logger: slog.New(slog.DiscardHandler), RetryMin: time.Millisecond, RetryMax: time.Millisecond}
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.client.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	<-r.requests
	for i, s := range vec.Steps {
		r.step(t, fmt.Sprintf("step %d (%s)", i, s.Note), vec, s)
	}
}

func testtimeClock(unix int64) *fakeClock {
	c := newClock()
	c.Set(time.Unix(unix, 0).UTC())
	return c
}

// serveFeed answers each stream with the next feed step, then ends it.
func (r *conformanceRun) serveFeed(w http.ResponseWriter, req *http.Request) {
	select {
	case r.requests <- struct{}{}:
	case <-req.Context().Done():
		return
	}
	select {
	case text := <-r.steps:
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(text))
	case <-req.Context().Done():
	}
}

func (r *conformanceRun) step(t *testing.T, name string, vec vector, s step) {
	t.Helper()
	switch {
	case s.Verify != "":
		raw, ok := vec.Tokens[s.Verify]
		if !ok {
			t.Fatalf("%s: no token %q", name, s.Verify)
		}
		_, err := r.v.Verify(context.Background(), raw)
		if got := verdict(err); got != s.Want {
			t.Errorf("%s: Verify(%s) = %s (%v), want %s", name, s.Verify, got, err, s.Want)
		}
	case s.Feed != "":
		r.steps <- s.Feed
		<-r.requests
	case s.AdvanceS != 0:
		r.clock.Add(time.Duration(s.AdvanceS) * time.Second)
	case s.Prune:
		r.v.prune(r.clock.Now())
	case s.Entries != nil:
		if got := r.set.Len(); got != *s.Entries {
			t.Errorf("%s: set.Len() = %d, want %d", name, got, *s.Entries)
		}
	case s.Position != nil:
		if got := r.client.State().Position; got != *s.Position {
			t.Errorf("%s: Position = %d, want %d", name, got, *s.Position)
		}
	default:
		t.Fatalf("%s: empty step", name)
	}
}

func verdict(err error) string {
	if err == nil {
		return "ok"
	}
	return Code(err)
}

// The generator of the vectors.

const (
	vecIssuer   = "https://auth.example.com"
	vecAudience = "tegata"
	vecStart    = 1798761600 // 2027-01-01T00:00:00Z
	vecKid      = "k-ed"
)

// vecKey is fixed, so that the vectors are the same each time they are
// written (Ed25519 signatures are deterministic).
var vecKey = ed25519.NewKeyFromSeed([]byte("tegata conformance vectors seed!"))

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// mint signs header and payload JSON as given, whatever they say.
func mint(header, payload string) string {
	in := b64(header) + "." + b64(payload)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(vecKey, []byte(in)))
}

const stdHeader = `{"alg":"EdDSA","typ":"at+jwt","kid":"k-ed"}`

// claimsJSON is a valid payload with fields replaced (nil deletes one).
func claimsJSON(sub, sid string, sgen int64, change map[string]any) string {
	c := map[string]any{"iss": vecIssuer, "sub": sub, "aud": vecAudience, "iat": vecStart - 60,
		"exp": vecStart + 840, "jti": "j-" + sid, "sid": sid, "sgen": sgen}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func valid(sub, sid string, sgen int64) string {
	return mint(stdHeader, claimsJSON(sub, sid, sgen, nil))
}

// line is one entry line of a revocations event.
func line(seq int64, kind string, sgen int64, key string) string {
	created := (vecStart + seq) * 1_000_000
	return fmt.Sprintf("data: %d %s %d %d %d %s\n", seq, kind, created, created+3600_000_000, sgen, key)
}

func revocations(lastSeq int64, lines ...string) string {
	return fmt.Sprintf("id: %d\nevent: revocations\n%s\n", lastSeq, strings.Join(lines, ""))
}

func heartbeat(head int64, epoch string) string {
	return fmt.Sprintf("id: %d\nevent: heartbeat\ndata: {\"head\":%d,\"time\":%d,\"epoch\":%q}\n\n", head, head, vecStart*1000, epoch)
}

func ok(name string) step               { return step{Verify: name, Want: "ok"} }
func refused(name, code string) step    { return step{Verify: name, Want: code} }
func entries(n int) step                { return step{Entries: &n} }
func position(p int64) step             { return step{Position: &p} }
func feedStep(note, text string) step   { return step{Note: note, Feed: text} }
func advance(note string, s int64) step { return step{Note: note, AdvanceS: s} }

func vecJWKS() json.RawMessage {
	ks, err := token.NewKeySet(token.PublicKey{ID: vecKid, Algorithm: token.EdDSA, Key: vecKey.Public()})
	if err != nil {
		panic(err)
	}
	b, err := ks.MarshalJWKS()
	if err != nil {
		panic(err)
	}
	return b
}

func baseVector(desc string) vector {
	return vector{Description: desc, Issuer: vecIssuer, Audience: vecAudience, LeewayS: 30, MaxLifetimeS: 3600,
		StartUnix: vecStart, JWKS: vecJWKS(), Tokens: map[string]string{}}
}

func conformanceVectors() map[string]vector {
	return map[string]vector{"tokens.json": tokensVector(), "revocations.json": revocationsVector(), "resets.json": resetsVector(),
		"bulk.json": bulkVector()}
}

func tokensVector() vector {
	v := baseVector("Token checks: each token with the code of the check that refuses it, at start_unix unless a step moves the clock.")
	good := claimsJSON("alice", "s1", 0, nil)
	sig := strings.Split(valid("alice", "s1", 0), ".")[2]
	// The last base64url character of a 64-byte signature carries two
	// padding bits, zero in canonical form: set one.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	noncanonical := b64(stdHeader) + "." + b64(good) + "." + sig[:len(sig)-1] + string(alphabet[last|1])
	flipped := strings.Split(valid("alice", "s1", 0), ".")
	flipped[2] = map[bool]string{true: "B", false: "A"}[flipped[2][0] == 'A'] + flipped[2][1:]
	cases := []struct {
		name, token, want string
	}{
		{"valid", valid("alice", "s1", 0), "ok"},
		{"aud_array", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"aud": []string{"other", vecAudience}})), "ok"},
		{"typ_with_prefix", mint(`{"alg":"EdDSA","typ":"application/at+jwt","kid":"k-ed"}`, good), "ok"},
		{"expired_within_leeway", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"exp": vecStart - 10})), "ok"},
		{"alg_none", b64(`{"alg":"none","typ":"at+jwt","kid":"k-ed"}`) + "." + b64(good) + ".", "algorithm"},
		{"alg_hs256", mint(`{"alg":"HS256","typ":"at+jwt","kid":"k-ed"}`, good), "algorithm"},
		{"alg_not_the_keys", mint(`{"alg":"ES256","typ":"at+jwt","kid":"k-ed"}`, good), "algorithm"},
		{"key_in_header", mint(`{"alg":"EdDSA","typ":"at+jwt","kid":"k-ed","jwk":{"kty":"OKP"}}`, good), "header"},
		{"key_url_in_header", mint(`{"alg":"EdDSA","typ":"at+jwt","kid":"k-ed","jku":"https://evil.example/jwks"}`, good), "header"},
		{"crit_header", mint(`{"alg":"EdDSA","typ":"at+jwt","kid":"k-ed","crit":["exp"]}`, good), "header"},
		{"no_kid", mint(`{"alg":"EdDSA","typ":"at+jwt"}`, good), "header"},
		{"typ_jwt", mint(`{"alg":"EdDSA","typ":"JWT","kid":"k-ed"}`, good), "type"},
		{"no_typ", mint(`{"alg":"EdDSA","kid":"k-ed"}`, good), "type"},
		{"unknown_kid", mint(`{"alg":"EdDSA","typ":"at+jwt","kid":"k-other"}`, good), "unknown_key"},
		{"bad_signature", strings.Join(flipped, "."), "signature"},
		{"changed_payload", b64(stdHeader) + "." + b64(claimsJSON("mallory", "s1", 0, nil)) + "." + sig, "signature"},
		{"two_segments", b64(stdHeader) + "." + b64(good), "malformed"},
		{"five_segments", "a.b.c.d.e", "malformed"},
		{"noncanonical_base64", noncanonical, "malformed"},
		{"payload_not_json", mint(stdHeader, "not json"), "malformed"},
		{"too_large", strings.Repeat("a", 9000), "too_large"},
		{"expired", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"exp": vecStart - 60})), "expired"},
		{"nbf_future", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"nbf": vecStart + 120})), "not_yet_valid"},
		{"iat_future", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"iat": vecStart + 120})), "not_yet_valid"},
		{"lifetime_too_long", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"exp": vecStart + 7200})), "claims"},
		{"wrong_issuer", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"iss": "https://evil.example"})), "issuer"},
		{"no_issuer", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"iss": nil})), "issuer"},
		{"wrong_audience", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"aud": "billing"})), "audience"},
		{"no_sid", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"sid": nil})), "claims"},
		{"no_jti", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"jti": nil})), "claims"},
		{"no_exp", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"exp": nil})), "claims"},
		{"exp_string", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"exp": "soon"})), "claims"},
		{"sgen_negative", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"sgen": -1})), "claims"},
		{"cnf", mint(stdHeader, claimsJSON("alice", "s1", 0, map[string]any{"cnf": map[string]string{"jkt": "x"}})), "claims"},
	}
	for _, c := range cases {
		v.Tokens[c.name] = c.token
		v.Steps = append(v.Steps, step{Verify: c.name, Want: c.want})
	}
	v.Steps = append(v.Steps, advance("past exp (840 s) and the 30 s leeway", 871), refused("valid", "expired"))
	return v
}

func revocationsVector() vector {
	v := baseVector("Revocation kinds, the generation of subject cutoffs, repeats, keys with spaces and non-ASCII subjects, and entries expiring.")
	v.Tokens = map[string]string{
		"alice_s1": valid("alice", "s1", 0), "alice_s2": valid("alice", "s2", 0), "alice_gen3": valid("alice", "s3", 3),
		"bob": valid("bob smith", "s b", 0), "zoe_acute": valid("zoé", "z1", 0), "zoe_diaeresis": valid("zoë", "z2", 0),
	}
	v.Steps = []step{
		ok("alice_s1"), ok("alice_s2"), ok("alice_gen3"), ok("bob"), ok("zoe_acute"), ok("zoe_diaeresis"),
		feedStep("one session revoked", revocations(1, line(1, "session", 0, "s1"))+heartbeat(1, "")),
		refused("alice_s1", "revoked"), ok("alice_s2"), position(1),
		feedStep("alice cut off below generation 3", revocations(2, line(2, "subject", 3, "alice"))+heartbeat(2, "")),
		refused("alice_s2", "revoked"), ok("alice_gen3"),
		feedStep("a later, weaker cutoff does not weaken it", revocations(3, line(3, "subject", 2, "alice"))+heartbeat(3, "")),
		refused("alice_s2", "revoked"), ok("alice_gen3"), entries(2),
		feedStep("repeats are ignored", revocations(3, line(1, "session", 0, "s1"), line(2, "subject", 3, "alice"), line(3, "subject", 2, "alice"))+heartbeat(3, "")),
		entries(2), position(3),
		feedStep("a key with a space; a subject with an accent; one event, two lines",
			revocations(5, line(4, "session", 0, "s b"), line(5, "subject", 1, "zoé"))+heartbeat(5, "")),
		refused("bob", "revoked"), refused("zoe_acute", "revoked"), ok("zoe_diaeresis"), entries(4),
		feedStep("a malformed line ends the stream; nothing of its event is applied", revocations(7, line(6, "session", 0, "z2"), "data: 7 device 1 2 0 x\n")),
		ok("zoe_diaeresis"), position(5), entries(4),
		feedStep("the node sends it again, well formed", revocations(6, line(6, "subject", 1, "zoë"))+heartbeat(6, "")),
		refused("zoe_diaeresis", "revoked"), position(6),
		feedStep("a heartbeat past the last entry moves the position (the node skipped expired entries)", heartbeat(9, "")),
		position(9),
		feedStep("a nodes event (the cluster's membership, which a follower may ignore) does not end the stream: the heartbeat after it is applied",
			"event: nodes\ndata: {\"issuer\":\"https://auth.example.com\",\"epoch\":\"\",\"urls\":[]}\n\n"+heartbeat(10, "")),
		position(10),
		advance("entries expire an hour after creation (start + 3601 s to 3606 s): none yet, with the 30 s leeway", 3600),
		step{Prune: true}, entries(5),
		advance("past every entry's expiry plus leeway", 100),
		step{Prune: true}, entries(0), refused("alice_s1", "expired"),
	}
	return v
}

func bulkVector() vector {
	v := baseVector("Continuation lines, as a bulk revocation's entries come: each is the entry after the line before it in its event, of the same kind, created_at and expires_at, with its own generation and key.")
	v.Tokens = map[string]string{
		"u1": valid("user 1", "b1", 0), "u2_gen1": valid("user-2", "b2", 1), "u3_gen1": valid("user-3", "b3", 1),
		"sx1": valid("x", "sx1", 0), "sx2": valid("x", "sx 2", 0), "sy1": valid("y", "sy1", 0),
	}
	v.Steps = []step{
		ok("u1"), ok("u2_gen1"), ok("u3_gen1"), ok("sx1"), ok("sx2"),
		feedStep("three subjects (seqs 1 to 3) and two sessions (4 and 5), in two events; the first says in its head field that the log holds entries up to 5, which follow (a hint: a follower may make room for them, or ignore it)",
			"id: 3\nevent: revocations\nhead: 5\n"+line(1, "subject", 1, "user 1")+"data: +2 user-2\ndata: +1 user-3\n\n"+
				revocations(5, line(4, "session", 0, "sx1"), "data: +0 sx 2\n")+heartbeat(5, "")),
		refused("u1", "revoked"), refused("u2_gen1", "revoked"), ok("u3_gen1"), refused("sx1", "revoked"), refused("sx2", "revoked"),
		entries(5), position(5),
		feedStep("a continuation line first in its event ends the stream; nothing of its event is applied",
			"id: 7\nevent: revocations\ndata: +0 sy1\n\n"),
		ok("sy1"), position(5), entries(5),
		feedStep("a continuation line without a key ends the stream too",
			revocations(7, line(6, "session", 0, "sy1"), "data: +0\n")),
		ok("sy1"), position(5), entries(5),
		advance("the subjects' entries (created at start + 1 s) expire at start + 3601 s, the sessions' at start + 3604 s; with the 30 s leeway", 3633),
		step{Prune: true}, entries(2),
	}
	return v
}

func resetsVector() vector {
	v := baseVector("Resets and epochs: the follower clears its set and starts over.")
	v.Tokens = map[string]string{"alice": valid("alice", "s1", 0), "bob": valid("bob", "s2", 0)}
	v.Steps = []step{
		feedStep("entries of epoch A", revocations(2, line(1, "session", 0, "s1"), line(2, "session", 0, "s2"))+heartbeat(2, "AAAA")),
		refused("alice", "revoked"), refused("bob", "revoked"), position(2),
		feedStep("a reset: the node's log is behind this position; the stream goes on from 0",
			"event: reset\ndata: {\"head\":1}\n\n"+revocations(1, line(1, "session", 0, "s2"))+heartbeat(1, "AAAA")),
		ok("alice"), refused("bob", "revoked"), entries(1), position(1),
		feedStep("a heartbeat naming another epoch: start over (the stream ends)", heartbeat(1, "BBBB")+revocations(5, line(5, "session", 0, "s1"))),
		ok("alice"), ok("bob"), entries(0), position(0),
		feedStep("the new log from 0", revocations(1, line(1, "session", 0, "s1"))+heartbeat(1, "BBBB")),
		refused("alice", "revoked"), ok("bob"), position(1),
	}
	return v
}

func writeVectors(t *testing.T) {
	t.Helper()
	for name, vec := range conformanceVectors() {
		b, err := json.MarshalIndent(vec, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(conformanceDir, name), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
