package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/statuslist"
	"github.com/tegata-dev/tegata/token"
)

// statusOf reads an access token's status claim.
func statusOf(t *testing.T, at string) token.StatusRef {
	t.Helper()
	_, payload, err := token.Inspect(at)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := payload["status"].(map[string]any)
	sl, _ := st["status_list"].(map[string]any)
	idx, ok1 := sl["idx"].(float64)
	uri, ok2 := sl["uri"].(string)
	if !ok1 || !ok2 {
		t.Fatalf("token has no status.status_list{idx,uri}: %v", payload["status"])
	}
	return token.StatusRef{Index: int64(idx), URI: uri}
}

// listToken is a fetched Status List Token, verified against the JWKS with
// go-jose (not tegata's own code).
type listToken struct {
	header http.Header
	jws    map[string]any // protected header
	claims struct {
		Iss        string `json:"iss"`
		Sub        string `json:"sub"`
		Iat        int64  `json:"iat"`
		Exp        int64  `json:"exp"`
		TTL        int64  `json:"ttl"`
		StatusList struct {
			Bits int    `json:"bits"`
			Lst  string `json:"lst"`
		} `json:"status_list"`
	}
	list *statuslist.List
}

func fetch(t *testing.T, url, accept string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func fetchList(t *testing.T, e *env, uri string) listToken {
	t.Helper()
	res, body := fetch(t, uri, "application/statuslist+jwt")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", uri, res.StatusCode, body)
	}
	_, jwksBody := fetch(t, e.URL+"/.well-known/jwks.json", "")
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(jwksBody, &jwks); err != nil {
		t.Fatal(err)
	}
	sig, err := jose.ParseSigned(string(body), []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		t.Fatalf("status list token is not a JWS: %v", err)
	}
	kid := sig.Signatures[0].Protected.KeyID
	keys := jwks.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("kid %q of the status list token is not in the JWKS", kid)
	}
	payload, err := sig.Verify(keys[0])
	if err != nil {
		t.Fatalf("status list token signature: %v", err)
	}
	lt := listToken{header: res.Header, jws: map[string]any{}}
	for k, v := range sig.Signatures[0].Protected.ExtraHeaders {
		lt.jws[string(k)] = v
	}
	if err := json.Unmarshal(payload, &lt.claims); err != nil {
		t.Fatal(err)
	}
	if lt.list, err = statuslist.Decode(lt.claims.StatusList.Bits, lt.claims.StatusList.Lst); err != nil {
		t.Fatalf("decode lst: %v", err)
	}
	return lt
}

// statusIn fetches the token's list and returns its status there.
func statusIn(t *testing.T, e *env, at string) byte {
	t.Helper()
	ref := statusOf(t, at)
	lt := fetchList(t, e, ref.URI)
	if lt.claims.Sub != ref.URI {
		t.Fatalf("list sub = %q, want the token's uri %q", lt.claims.Sub, ref.URI)
	}
	s, err := lt.list.Get(int(ref.Index))
	if err != nil {
		t.Fatalf("Get(%d): %v", ref.Index, err)
	}
	return s
}

func TestStatusListToken(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	ref := statusOf(t, tk.AccessToken)
	if !strings.HasPrefix(ref.URI, e.URL+"/v1/statuslists/") {
		t.Errorf("status uri = %q, want under %s/v1/statuslists/", ref.URI, e.URL)
	}
	fetched := e.clock.Now()
	lt := fetchList(t, e, ref.URI)
	if lt.jws["typ"] != "statuslist+jwt" {
		t.Errorf("typ = %v, want statuslist+jwt", lt.jws["typ"])
	}
	now := e.clock.Now().Unix()
	c := lt.claims
	if c.Iss != e.URL || c.Sub != ref.URI || c.Iat > now || c.Iat < now-1 || c.TTL != 60 || c.Exp != c.Iat+60 ||
		c.StatusList.Bits != 1 {
		t.Errorf("claims = %+v, want iss %s, sub %s, iat now, ttl 60, exp iat+60, bits 1", c, e.URL, ref.URI)
	}
	if lt.list.Size() != 1<<20 {
		t.Errorf("list size = %d, want 2^20", lt.list.Size())
	}
	if got := lt.header.Get("Content-Type"); got != "application/statuslist+jwt" {
		t.Errorf("Content-Type = %q", got)
	}
	// The node counted the seconds until exp at some instant between
	// the request and now (its clock runs): a second may have ended since.
	exp := time.Unix(c.Exp, 0)
	least, most := int(exp.Sub(e.clock.Now())/time.Second), int(exp.Sub(fetched)/time.Second)
	got := lt.header.Get("Cache-Control")
	age, err := strconv.Atoi(strings.TrimPrefix(got, "public, max-age="))
	if err != nil || !strings.HasPrefix(got, "public, max-age=") || age < least || age > most {
		t.Errorf("Cache-Control = %q, want public, max-age until exp (%d to %d s)", got, least, most)
	}
	if got := lt.header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q, want * (draft §8.1: CORS)", got)
	}
	if s, _ := lt.list.Get(int(ref.Index)); s != statuslist.Valid {
		t.Errorf("status of a live token = %d, want VALID", s)
	}

	tests := []struct {
		name, url, accept string
		want              int
	}{
		{"cwt only", ref.URI, "application/statuslist+cwt", http.StatusNotAcceptable},
		{"any", ref.URI, "*/*", http.StatusOK},
		{"application/*", ref.URI, "application/*;q=0.5", http.StatusOK},
		{"jwt refused by q=0", ref.URI, "application/statuslist+jwt;q=0", http.StatusNotAcceptable},
		{"historical", ref.URI + "?time=1686925000", "", http.StatusNotImplemented},
		{"no such list", e.URL + "/v1/statuslists/999", "", http.StatusNotFound},
		{"not a number", e.URL + "/v1/statuslists/abc", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res, body := fetch(t, tt.url, tt.accept); res.StatusCode != tt.want {
				t.Errorf("GET %s (Accept %q) = %d %s, want %d", tt.url, tt.accept, res.StatusCode, body, tt.want)
			}
		})
	}
	res, body := fetch(t, e.URL+"/v1/statuslists", "")
	var agg struct {
		StatusLists []string `json:"status_lists"`
	}
	if err := json.Unmarshal(body, &agg); err != nil || res.StatusCode != 200 || len(agg.StatusLists) != 1 || agg.StatusLists[0] != ref.URI {
		t.Errorf("aggregation = %d %s, want {\"status_lists\":[%q]}", res.StatusCode, body, ref.URI)
	}
	_, body = fetch(t, e.URL+"/.well-known/openid-configuration", "")
	if !strings.Contains(string(body), `"status_list_aggregation_endpoint":"`+e.URL+`/v1/statuslists"`) {
		t.Errorf("discovery lacks status_list_aggregation_endpoint: %s", body)
	}
}

// TestStatusListRevocations: every kind of revocation shows in a list
// fetched right after the revoking call returned; nothing else changes.
func TestStatusListRevocations(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	mk := func(sub string) (at, rt, sid string) {
		tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: sub, Claims: map[string]any{"role": "editor"}})
		if err != nil {
			t.Fatal(err)
		}
		return tk.AccessToken, tk.RefreshToken, tk.SessionID
	}
	bystander, _, _ := mk("zoe")

	at, _, sid := mk("alice")
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: sid, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if s := statusIn(t, e, at); s != statuslist.Invalid {
		t.Errorf("after RevokeSession: status = %d, want INVALID", s)
	}

	at, rt, _ := mk("bob")
	if _, err := e.anon.RevokeToken(ctx(t), client.TokenRevocation{Token: rt}); err != nil {
		t.Fatal(err)
	}
	if s := statusIn(t, e, at); s != statuslist.Invalid {
		t.Errorf("after RFC 7009 sign-out: status = %d, want INVALID", s)
	}

	// Access cutoff: the old index is INVALID, the refreshed token gets a
	// fresh one, VALID.
	at, rt, _ = mk("carol")
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "carol", Scope: "access", Reason: "role change", Claims: map[string]any{"role": "viewer"}}); err != nil {
		t.Fatal(err)
	}
	if s := statusIn(t, e, at); s != statuslist.Invalid {
		t.Errorf("after access cutoff: status = %d, want INVALID", s)
	}
	next, err := e.anon.Refresh(ctx(t), rt)
	if err != nil {
		t.Fatal(err)
	}
	if old, fresh := statusOf(t, at), statusOf(t, next.AccessToken); old == fresh {
		t.Errorf("refresh after a cutoff kept the index %+v, want a fresh one", old)
	}
	if s := statusIn(t, e, next.AccessToken); s != statuslist.Valid {
		t.Errorf("token refreshed after the cutoff: status = %d, want VALID", s)
	}
	// A refresh without a cutoff keeps the index.
	again, err := e.anon.Refresh(ctx(t), next.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := statusOf(t, next.AccessToken), statusOf(t, again.AccessToken); a != b {
		t.Errorf("plain refresh changed the index %+v -> %+v", a, b)
	}

	// Sign out everywhere: every session of the subject.
	at1, _, _ := mk("dave")
	at2, _, _ := mk("dave")
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "dave", Scope: "sessions", Reason: "password change"}); err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{at1, at2} {
		if s := statusIn(t, e, at); s != statuslist.Invalid {
			t.Errorf("after sign-out everywhere: status = %d, want INVALID", s)
		}
	}

	// Theft: a rotated refresh token presented again.
	at, rt, _ = mk("erin")
	if _, err := e.anon.Refresh(ctx(t), rt); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute) // past the grace window
	if _, err := e.anon.Refresh(ctx(t), rt); err == nil {
		t.Fatal("reused refresh token accepted")
	}
	if s := statusIn(t, e, at); s != statuslist.Invalid {
		t.Errorf("after theft detection: status = %d, want INVALID", s)
	}

	if s := statusIn(t, e, bystander); s != statuslist.Valid {
		t.Errorf("bystander: status = %d, want VALID", s)
	}

	// Once the revocation has expired (every token it covers has) and the
	// hold past it is over, the entry reads VALID again: the list stays a
	// function of the log.
	e.clock.Add(15*time.Minute + 31*time.Second + authority.DefaultStatusListHold)
	if s := statusIn(t, e, at1); s != statuslist.Valid {
		t.Errorf("after the revocation expired: status = %d, want VALID", s)
	}
}

func TestStatusListDisabled(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.Authority.StatusLists.Size = -1 })
	tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, payload, _ := token.Inspect(tk.AccessToken); payload["status"] != nil {
		t.Errorf("status claim = %v with status lists off, want none", payload["status"])
	}
	if res, _ := fetch(t, e.URL+"/v1/statuslists/1", ""); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/statuslists/1 with status lists off = %d, want 404", res.StatusCode)
	}
}

// TestStatusListsGrow: a new list starts once half of the entries are
// held, and tokens then spread over both.
func TestStatusListsGrow(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) {
		c.Authority.StatusLists.Size = authority.MinStatusListSize
		c.Limits = &httpapi.Limits{}
	})
	for i := range authority.MinStatusListSize/2 + 1 {
		if _, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "u" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	e.Authority.Sweep(ctx(t))
	res, body := fetch(t, e.URL+"/v1/statuslists", "")
	var agg struct {
		StatusLists []string `json:"status_lists"`
	}
	if err := json.Unmarshal(body, &agg); err != nil || res.StatusCode != 200 || len(agg.StatusLists) != 2 {
		t.Fatalf("aggregation after filling half a list = %s, want two lists", body)
	}
	seen := map[string]bool{}
	for i := range 64 {
		tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "v" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		seen[statusOf(t, tk.AccessToken).URI] = true
	}
	if len(seen) != 2 {
		t.Errorf("64 new sessions used lists %v, want both", seen)
	}
}
