package cli

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStartingGate: before its verifier exists, tegata gate is alive, not
// ready (saying why), and refuses what it would check as not in sync.
func TestStartingGate(t *testing.T) {
	for _, proxy := range []bool{false, true} {
		s := httptest.NewServer(&startingGate{proxy: proxy, log: slog.New(slog.DiscardHandler)})
		t.Cleanup(s.Close)
		get := func(path string, h http.Header) (int, map[string]any) {
			t.Helper()
			req, _ := http.NewRequest("GET", s.URL+path, nil)
			for k, v := range h {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var body map[string]any
			_ = json.Unmarshal(b, &body)
			return resp.StatusCode, body
		}
		if status, _ := get("/healthz", nil); status != http.StatusOK {
			t.Errorf("proxy %v: GET /healthz while starting = %d, want 200", proxy, status)
		}
		status, body := get("/readyz", nil)
		if reason, _ := body["reason"].(string); status != http.StatusServiceUnavailable || body["status"] != "starting" || !strings.Contains(reason, "waiting for an authority") {
			t.Errorf("proxy %v: GET /readyz while starting = %d %v, want 503 starting, waiting for an authority", proxy, status, body)
		}
		status, body = get("/auth", http.Header{"Authorization": {"Bearer eyJhbGciOi.x.y"}})
		if status != http.StatusUnauthorized || body["error_description"] != "verifier not in sync with authority" {
			t.Errorf("proxy %v: GET /auth while starting = %d %v, want 401 not in sync", proxy, status, body)
		}
		wantOther := http.StatusNotFound
		if proxy {
			wantOther = http.StatusUnauthorized
		}
		if status, _ := get("/app/page", nil); status != wantOther {
			t.Errorf("proxy %v: GET /app/page while starting = %d, want %d", proxy, status, wantOther)
		}
	}
}
