package server_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func shutdown(t *testing.T, r *server.Running) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestFailedStartCreatesNothing: a start refused for its configuration, or
// for a busy port, leaves no data directory behind (and so no fresh secrets
// that the next start would silently use).
func TestFailedStartCreatesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"busy port", server.Config{Addr: busy.Addr().String()}, "listen"},
		{"negative TTL", server.Config{Authority: authority.Config{AccessTTL: -time.Minute}}, "negative"},
		{"malformed master key", server.Config{MasterKey: "not base64 of 32 bytes"}, "TEGATA_MASTER_KEY"},
		{"short API key", server.Config{APIKey: "tgk_short"}, "TEGATA_API_KEY"},
		{"Bearer feed key", server.Config{FeedKey: "Bearer tgk_0123456789012345678901234567890123"}, "TEGATA_FEED_KEY"},
		{"not a Postgres URL", server.Config{DB: "mysql://x"}, "--db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tegata-data")
			cfg := tt.cfg
			cfg.DataDir, cfg.Logger = dir, quietLog()
			if cfg.Addr == "" {
				cfg.Addr = "127.0.0.1:0"
			}
			r, err := server.Start(context.Background(), cfg)
			if err == nil {
				shutdown(t, r)
				t.Fatalf("Start = nil, want an error mentioning %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start = %v, want an error mentioning %q", err, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("after the failed start, %s exists (%v); want nothing created", dir, err)
			}
		})
	}
}

// TestPostgresWithEnvSecretsNeedsNoDataDir: a node on Postgres with every
// secret in the environment has nothing to keep on disk and creates no
// data directory.
func TestPostgresWithEnvSecretsNeedsNoDataDir(t *testing.T) {
	t.Parallel()
	dsn := migrated.Schema(t)
	dir := filepath.Join(t.TempDir(), "tegata-data")
	r, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: dir, DB: dsn,
		Issuer: "https://auth.test", MasterKey: base64.StdEncoding.EncodeToString(make([]byte, 32)),
		APIKey: authority.NewAPIKey() + "\n", Logger: quietLog()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer shutdown(t, r)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s exists (%v); want no data directory when Postgres holds everything", dir, err)
	}
}

// TestDataDirLocked: a second authority on the same SQLite data directory
// is refused while the first runs, and starts once it has stopped.
func TestDataDirLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := server.Config{Addr: "127.0.0.1:0", DataDir: dir, Logger: quietLog()}
	first, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if r, err := server.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "in use by another tegata serve") {
		if err == nil {
			shutdown(t, r)
		}
		t.Fatalf("second Start on %s = %v, want a refusal saying it is in use", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tegata.db")); err != nil {
		t.Fatalf("the refused start touched the first one's database: %v", err)
	}
	shutdown(t, first)
	second, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start after the first stopped = %v", err)
	}
	shutdown(t, second)
}

// TestDataFilePermissions: what operations.md promises is checked at start:
// no file of the data directory readable by group or others, and a
// directory they cannot write to.
func TestDataFilePermissions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		path  string // relative to the data directory; "" is the directory
		mode  os.FileMode
		want  string // error, or "" for a start with a warning
		warns bool
	}{
		{"database readable", "tegata.db", 0o644, "tegata.db is accessible by group or others", false},
		{"WAL readable", "tegata.db-wal", 0o640, "tegata.db-wal is accessible by group or others", false},
		{"master key readable", "master.key", 0o644, "master.key is accessible by group or others", false},
		{"directory writable by others", "", 0o777, "writable by group or others", false},
		{"directory listable", "", 0o755, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			r, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: dir, Logger: quietLog()})
			if err != nil {
				t.Fatal(err)
			}
			shutdown(t, r)
			p := filepath.Join(dir, tt.path)
			if tt.path == "tegata.db-wal" {
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			logs := &logBuffer{}
			r, err = server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: dir,
				Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Start = %v, want it to start", err)
				}
				shutdown(t, r)
				if tt.warns && !strings.Contains(logs.String(), "can be listed by group or others") {
					t.Errorf("no warning about the directory's mode:\n%s", logs)
				}
				return
			}
			if err == nil {
				shutdown(t, r)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "chmod") {
				t.Errorf("Start with %s mode %v = %v, want an error saying %q with the chmod to run", tt.path, tt.mode, err, tt.want)
			}
		})
	}
}

// TestNodesStartingTogetherAddOneKey: authority nodes starting at once on
// an empty Postgres schema end up with one signing key between them.
func TestNodesStartingTogetherAddOneKey(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	master := base64.StdEncoding.EncodeToString(make([]byte, 32))
	// Every node gets the same settings (docs/operations.md): a node
	// started with another bootstrap key is refused.
	admin := authority.NewAPIKey()
	const n = 4
	var wg sync.WaitGroup
	nodes := make([]*server.Running, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DB: dsn,
				Issuer: "https://auth.test", MasterKey: master, APIKey: admin, Logger: quietLog()})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("node %d: Start = %v", i, errs[i])
		}
		defer shutdown(t, nodes[i])
	}
	keys, err := nodes[0].Authority.Keys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("Keys() after %d nodes started together = %d keys (%v), want 1", n, len(keys), err)
	}
}

// TestWarnsIssuerOfEveryInterface: listening on every interface without
// --issuer would put http://[::]:PORT (or 0.0.0.0) in every token: warned.
func TestWarnsIssuerOfEveryInterface(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	r, err := server.Start(context.Background(), server.Config{Addr: "0.0.0.0:0", DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, r)
	if !strings.Contains(logs.String(), "listening on every interface without --issuer") {
		t.Errorf("no warning for 0.0.0.0 without an issuer:\n%s", logs)
	}
}

// TestReadyz: a node that reads its store and has a signing key is ready.
func TestReadyz(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	resp, err := http.Get(e.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"status":"ready","ready":true}` {
		t.Errorf("GET /readyz = %d %s, want 200 ready", resp.StatusCode, b)
	}
}

// TestIntrospectTrimsNewline: a token sent with the trailing newline of the
// file it was read from (curl --data-urlencode token@file) is the token,
// as it is for the CLI.
func TestIntrospectTrimsNewline(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "nina"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.URL+"/v1/introspect", strings.NewReader(url.Values{"token": {tk.AccessToken + "\n"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+e.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"active":true`) {
		t.Errorf("introspect(token + newline) = %d %s, want active", resp.StatusCode, b)
	}
}

// TestAPIKeyHeaderForms: RFC 6750 allows more than one space after
// "Bearer"; and error texts are sent as written ("Bearer <key>", not
// "Bearer \u003ckey\u003e").
func TestAPIKeyHeaderForms(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest("GET", e.URL+"/v1/keys", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("Bearer   " + e.APIKey); code != 200 {
		t.Errorf("GET /v1/keys with three spaces after Bearer = %d %s, want 200", code, body)
	}
	if code, body := get(""); code != 401 || !strings.Contains(body, "Bearer <key>") {
		t.Errorf("GET /v1/keys without a key = %d %s, want 401 saying Bearer <key> as written", code, body)
	}
}
