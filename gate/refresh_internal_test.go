package gate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/server"
)

// holdingAuthority is a real authority behind a proxy that counts refresh
// requests and holds each one until the test releases it.
type holdingAuthority struct {
	admin     *client.Client
	via       *client.Client // through the proxy
	refreshes atomic.Int64
	release   chan struct{}
}

func startHoldingAuthority(t *testing.T) *holdingAuthority {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	r, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = r.Shutdown(sctx)
	})
	target, _ := url.Parse(r.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	h := &holdingAuthority{admin: &client.Client{BaseURL: r.URL, APIKey: r.APIKey}, release: make(chan struct{})}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/v1/token/refresh" {
			h.refreshes.Add(1)
			<-h.release
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(proxy.Close)
	h.via = &client.Client{BaseURL: proxy.URL, APIKey: r.APIKey}
	return h
}

// waiters returns how many callers share the exchange of rt besides the
// first, or -1 if none is in flight.
func (f *refresher) waitersOf(rt string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[rt]; ok {
		return c.waiters
	}
	return -1
}

func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRefreshCoalesced: requests refreshing the same token at once share
// one exchange at the authority and get the same tokens.
func TestRefreshCoalesced(t *testing.T) {
	h := startHoldingAuthority(t)
	ctx := context.Background()
	tok, err := h.admin.CreateSession(ctx, client.SessionRequest{Subject: "nia", Device: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f := newRefresher(h.via)
	const n = 8
	type result struct {
		tok client.Tokens
		err error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			got, err := f.refresh(ctx, tok.RefreshToken)
			results <- result{got, err}
		}()
	}
	pollUntil(t, "all requests waiting on one exchange", func() bool { return f.waitersOf(tok.RefreshToken) == n-1 })
	close(h.release)
	var first string
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("refresh = %v", r.err)
		}
		if first == "" {
			first = r.tok.RefreshToken
		}
		if r.tok.RefreshToken != first || first == tok.RefreshToken {
			t.Errorf("refresh gave %q, want every caller the same new token %q", r.tok.RefreshToken, first)
		}
	}
	if got := h.refreshes.Load(); got != 1 {
		t.Errorf("the authority saw %d refreshes for %d concurrent requests, want 1", got, n)
	}
	if f.waitersOf(tok.RefreshToken) != -1 {
		t.Error("the finished exchange is still listed as in flight")
	}
}

// TestRefreshCallerGivesUp: a request that goes away stops waiting, and
// the exchange it started still completes for the others.
func TestRefreshCallerGivesUp(t *testing.T) {
	h := startHoldingAuthority(t)
	tok, err := h.admin.CreateSession(context.Background(), client.SessionRequest{Subject: "oli", Device: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f := newRefresher(h.via)
	gone, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := f.refresh(gone, tok.RefreshToken)
		firstErr <- err
	}()
	pollUntil(t, "exchange in flight", func() bool { return h.refreshes.Load() == 1 })
	second := make(chan error, 1)
	go func() {
		_, err := f.refresh(context.Background(), tok.RefreshToken)
		second <- err
	}()
	pollUntil(t, "second request waiting", func() bool { return f.waitersOf(tok.RefreshToken) == 1 })
	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Errorf("the request that went away got %v, want context.Canceled", err)
	}
	close(h.release)
	if err := <-second; err != nil {
		t.Errorf("the request still waiting got %v, want the new tokens", err)
	}
}
