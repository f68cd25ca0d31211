package cli

import (
	"flag"
	"github.com/tegata-dev/tegata/verifier"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestFailover: a session call that cannot connect to the first authority
// goes to the next, body and path prefix included; one that reached an
// authority is never sent again.
func TestFailover(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/auth"
	ln.Close() // nothing listens there now: connections are refused
	var hits atomic.Int64
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/tegata/v1/sessions" || string(b) != `{"subject":"a"}` {
			t.Errorf("live authority got %s %q, want /tegata/v1/sessions with the body", r.URL.Path, b)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer live.Close()
	hc, err := newFailover([]string{dead, live.URL + "/tegata"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Post(dead+"/v1/sessions", "application/json", strings.NewReader(`{"subject":"a"}`))
	if err != nil {
		t.Fatalf("POST through failover = %v, want the live authority's answer", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || hits.Load() != 1 {
		t.Errorf("answer %d after %d requests to the live authority, want its 503 after exactly 1 (an answer is never retried)", resp.StatusCode, hits.Load())
	}
	hc, _ = newFailover([]string{dead})
	if _, err := hc.Get(dead + "/v1/x"); err == nil {
		t.Error("failover with every authority down = nil error, want the dial error")
	}
}

// TestWebKeyReplaced: once the key file holds a new gate key, the web
// gate's session calls carry it instead of the key it started with; a
// request without that key (a refresh, which needs none) is left alone.
func TestWebKeyReplaced(t *testing.T) {
	var got atomic.Pointer[string]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		got.Store(&h)
	}))
	defer srv.Close()
	cfg, err := (&webFlags{on: true, sameSite: "lax"}).config(flag.NewFlagSet("gate", flag.ContinueOnError), true,
		verifier.Config{Authorities: []string{srv.URL}, APIKey: "tgk_old"})
	if err != nil {
		t.Fatal(err)
	}
	call := func(auth string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/sessions", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := cfg.Authority.HTTPClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return *got.Load()
	}
	if h := call("Bearer tgk_old"); h != "Bearer tgk_old" {
		t.Errorf("before the new key: Authorization = %q, want the old key", h)
	}
	webKeySetter(cfg)("tgk_new")
	if h := call("Bearer tgk_old"); h != "Bearer tgk_new" {
		t.Errorf("after the new key: Authorization = %q, want the new key", h)
	}
	if h := call(""); h != "" {
		t.Errorf("a request without a key: Authorization = %q, want none", h)
	}
}
