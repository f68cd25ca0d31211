package requestid_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/internal/requestid"
)

func TestMiddleware(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(requestid.LogHandler(slog.NewTextHandler(&buf, nil)))
	srv := httptest.NewServer(requestid.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "handled")
	})))
	defer srv.Close()
	for _, tc := range []struct {
		name, in string
		kept     bool
	}{
		{"none", "", false},
		{"uuid", "0b6f3c1e-9f7a-4c55-8f0e-2a7d9b1c4e11", true},
		{"trace id", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"log forging", "abc\" level=ERROR msg=forged", false},
		{"too long", strings.Repeat("a", requestid.MaxLen+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			req, _ := http.NewRequest("GET", srv.URL, nil)
			if tc.in != "" {
				req.Header.Set(requestid.Header, tc.in)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			got := res.Header.Get(requestid.Header)
			if tc.kept && got != tc.in || !tc.kept && (got == "" || got == tc.in) {
				t.Fatalf("X-Request-Id(%q) = %q, want kept %v", tc.in, got, tc.kept)
			}
			if !strings.Contains(buf.String(), "request_id="+got) {
				t.Errorf("log = %q, want request_id=%s", buf.String(), got)
			}
		})
	}
}

// TestTrustingAndTransport: behind Trusting, an incoming id is kept only
// from a trusted peer and set on the request, and Transport carries the
// request's id to the calls made for it, leaving one already set alone.
func TestTrustingAndTransport(t *testing.T) {
	var upstream []string
	next := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstream = append(upstream, r.Header.Get(requestid.Header))
	}))
	defer next.Close()
	hc := &http.Client{Transport: requestid.Transport(nil)}
	for _, trusted := range []bool{true, false} {
		var seen string
		h := requestid.Trusting(func(*http.Request) bool { return trusted }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = r.Header.Get(requestid.Header)
			req, _ := http.NewRequestWithContext(r.Context(), "GET", next.URL, nil)
			if res, err := hc.Do(req); err == nil {
				res.Body.Close()
			}
			req, _ = http.NewRequestWithContext(r.Context(), "GET", next.URL, nil)
			req.Header.Set(requestid.Header, "own")
			if res, err := hc.Do(req); err == nil {
				res.Body.Close()
			}
		}))
		upstream = nil
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(requestid.Header, "proxy-1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		id := rec.Header().Get(requestid.Header)
		if (id == "proxy-1") != trusted || seen != id {
			t.Errorf("trusted %v: answer id %q, request header %q; want proxy-1 kept only when trusted, on both", trusted, id, seen)
		}
		if len(upstream) != 2 || upstream[0] != id || upstream[1] != "own" {
			t.Errorf("trusted %v: calls made for the request carried %q, want [%q own]", trusted, upstream, id)
		}
	}
}
