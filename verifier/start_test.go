package verifier

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
)

// logRecorder is a slog.Handler that keeps every record, for tests that
// assert what an operator would read.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

// count returns how many records at level have msg containing s.
func (l *logRecorder) count(level slog.Level, s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level == level && strings.Contains(r.Message, s) {
			n++
		}
	}
	return n
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.records {
		b.WriteString(r.Level.String() + " " + r.Message + "\n")
	}
	return b.String()
}

func TestNewRefusesBadConfigAtOnce(t *testing.T) {
	a := newAuthority(t, newClock())
	tests := []struct {
		name        string
		authorities []string
		key         string
		staleAfter  time.Duration
		want        string
	}{
		{"no authority", nil, testAPIKey, 0, "no authority configured"},
		{"not a URL", []string{"auth.test"}, testAPIKey, 0, "not an http(s) base URL"},
		{"empty key", []string{a.srv.URL}, "", 0, "APIKey is empty"},
		{"blank key (an empty secret file)", []string{a.srv.URL}, "\n", 0, "APIKey is empty"},
		{"Bearer in front", []string{a.srv.URL}, "Bearer " + testAPIKey, 0, `starts with "Bearer "`},
		// The authority would refuse the feed with 400 (issue: a gate that
		// never became ready).
		{"bound over a day", []string{a.srv.URL}, testAPIKey, 25 * time.Hour, "Config.StaleAfter: staleness bound 25h0m0s out of range"},
		{"bound under a millisecond", []string{a.srv.URL}, testAPIKey, 500 * time.Microsecond, "at least 1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No deadline: an error that waiting cannot fix must come back
			// at once, not when the start-up gives up.
			cfg := testConfig(t, a)
			cfg.Authorities, cfg.APIKey, cfg.StaleAfter = tt.authorities, tt.key, tt.staleAfter
			v, err := newTest(context.Background(), cfg)
			if err == nil {
				v.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%q, key %q) = %v, want an error saying %q", tt.authorities, tt.key, err, tt.want)
			}
		})
	}
}

// TestNewKeyRefusedIsPermanent: a key every authority refuses on the feed
// (wrong, revoked, without the feed role) makes New fail at once with
// ErrKeyRefused, however long ctx would let it wait.
func TestNewKeyRefusedIsPermanent(t *testing.T) {
	a := newAuthority(t, newClock())
	forbidden := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/feed" {
			http.Error(w, `{"error":"insufficient_scope"}`, http.StatusForbidden)
			return
		}
		a.srv.Config.Handler.ServeHTTP(w, r)
	}))
	for _, tc := range []struct {
		name string
		urls []string
		key  string
	}{
		{"wrong key", []string{a.srv.URL}, "tgk_not-this-one"},
		{"wrong key, two authorities", []string{a.srv.URL, a.srv.URL + "/"}, "tgk_not-this-one"},
		{"403", []string{forbidden.URL}, testAPIKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, a)
			cfg.Authorities, cfg.APIKey = tc.urls, tc.key
			v, err := newTest(context.Background(), cfg)
			if err == nil {
				v.Close()
			}
			if !errors.Is(err, ErrKeyRefused) {
				t.Fatalf("New(refused key) = %v, want %v", err, ErrKeyRefused)
			}
		})
	}
}

// TestNewWaitsForAuthority: an authority that is not up yet is waited for
// (and the wait logged), not an error, for as long as ctx allows.
func TestNewWaitsForAuthority(t *testing.T) {
	a := newAuthority(t, newClock())
	var up atomic.Bool
	// The startup context ends once New has retried: the first refusal
	// has then been read in full, so New must report it (a fixed deadline
	// could end before the first answer on a loaded machine).
	short, cancel := context.WithCancel(context.Background())
	defer cancel()
	var refused atomic.Int32
	late := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			if refused.Add(1) == 2 {
				cancel()
			}
			http.Error(w, "not yet", http.StatusBadGateway)
			return
		}
		a.srv.Config.Handler.ServeHTTP(w, r)
	}))

	rec := &logRecorder{}
	cfg := testConfig(t, a)
	cfg.Authorities, cfg.Logger = []string{late.URL}, slog.New(rec)
	if v, err := newTest(short, cfg); err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "502") {
		if v != nil {
			v.Close()
		}
		t.Fatalf("New(authority down, context ended after a retry) = %v, want the context's end with the last error", err)
	}
	if rec.count(slog.LevelWarn, "waiting for an authority") == 0 {
		t.Errorf("log has no warning while waiting:\n%s", rec)
	}

	done := make(chan error, 1)
	go func() {
		v, err := newTest(context.Background(), cfg)
		if err == nil {
			t.Cleanup(func() { v.Close() })
		}
		done <- err
	}()
	up.Store(true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("New(authority up later) = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("New did not return once the authority was up")
	}
}

// TestNewTrimsKeyAndWarns: a key with a trailing newline works; an admin
// key and an issuer or audience other than the authority's are warned
// about at start.
func TestNewTrimsKeyAndWarns(t *testing.T) {
	a := newAuthority(t, newClock())
	admin := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(feed.KeyRoleHeader, "admin")
		a.srv.Config.Handler.ServeHTTP(w, r)
	}))
	rec := &logRecorder{}
	cfg := testConfig(t, a)
	cfg.Authorities, cfg.Logger = []string{admin.URL}, slog.New(rec)
	cfg.APIKey = testAPIKey + "\n"
	cfg.Issuer, cfg.Audience = "https://elsewhere.test", "other-app"
	v := start(t, cfg)
	if v.cfg.APIKey != testAPIKey {
		t.Errorf("APIKey = %q, want it trimmed to %q", v.cfg.APIKey, testAPIKey)
	}
	for _, want := range []string{"admin role", "expected issuer", "expected audience"} {
		if rec.count(slog.LevelWarn, want) != 1 {
			t.Errorf("warnings about %q: %d, want 1\n%s", want, rec.count(slog.LevelWarn, want), rec)
		}
	}
}

// serveTest serves h until the test ends, dropping open feed streams first
// so that closing does not wait for them.
func serveTest(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}
