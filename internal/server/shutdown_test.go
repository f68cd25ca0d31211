package server_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/server"
)

// TestShutdownDrains: Shutdown ends feed streams at once but lets a request
// already under way finish with its answer, not a cancelled context's 500.
func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	// It dials the stopped node's address, which no listener on port 0
	// takes (freeAddr).
	r, err := server.Start(context.Background(), server.Config{Addr: freeAddr(t), DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// With "Expect: 100-continue" the client sends the body only once the
	// handler reads it: when the first write below returns, the request is
	// in the handler's hands.
	hc := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	defer hc.CloseIdleConnections()
	send := func(method, path, ctype string, body io.Reader) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx(t), method, r.URL+path, body)
		req.Header.Set("Authorization", "Bearer "+r.APIKey)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("Expect", "100-continue")
		}
		return hc.Do(req)
	}
	stream, err := send("GET", "/v1/feed", "", nil)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/feed = %v, %v", stream, err)
	}
	defer stream.Body.Close()
	// A sign-in whose body is still on its way when Shutdown begins.
	body, more := io.Pipe()
	answer := make(chan *http.Response, 1)
	go func() {
		resp, err := send("POST", "/v1/sessions", "application/json", body)
		if err != nil {
			t.Errorf("POST /v1/sessions: %v", err)
		}
		answer <- resp
	}()
	if _, err := more.Write([]byte(`{"subject":`)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- r.Shutdown(sctx)
	}()
	// The feed stream ends: Shutdown does not wait for it.
	if _, err := io.Copy(io.Discard, bufio.NewReader(stream.Body)); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Logf("feed stream ended with %v", err)
	}
	// Shutdown closes the listener before it runs the hooks that end the
	// feed (http.Server.Shutdown), so with the stream ended the listener
	// is gone: Shutdown is under way while the sign-in is in flight.
	if c, err := net.Dial("tcp", strings.TrimPrefix(r.URL, "http://")); err == nil {
		c.Close()
		t.Fatal("the feed stream ended but the server still accepts connections: it did not end because of Shutdown")
	}
	if _, err := more.Write([]byte(`"late"}`)); err != nil {
		t.Fatal(err)
	}
	more.Close()
	resp := <-answer
	if resp == nil {
		t.FailNow()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight POST /v1/sessions during Shutdown = %d, want 201", resp.StatusCode)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v, want nil", err)
	}
}

func TestBadDSNNotEchoed(t *testing.T) {
	t.Parallel()
	_, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		DB: "host=db user=tegata password=hunter2", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Start(key=value DSN) = %v, want an error without the password", err)
	}
}
