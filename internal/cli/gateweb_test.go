package cli

import (
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
