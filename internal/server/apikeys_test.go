package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
)

// wantStatus checks that err is an answer from the authority with status.
func wantStatus(t *testing.T, call string, err error, status int) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != status {
		t.Errorf("%s = %v, want %d", call, err, status)
	}
}

func createKey(t *testing.T, c *client.Client, name, role string) client.APIKey {
	t.Helper()
	k, err := c.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: name, Role: role})
	if err != nil {
		t.Fatalf("CreateAPIKey(%q, %q) = %v", name, role, err)
	}
	return k
}

func keyNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	list, err := c.APIKeys(ctx(t))
	if err != nil {
		t.Fatalf("APIKeys() = %v", err)
	}
	var names []string
	for _, k := range list {
		names = append(names, k.Name)
	}
	return names
}

// bootstrapID finds the bootstrap key's id in the list.
func bootstrapID(t *testing.T, c *client.Client) string {
	t.Helper()
	list, err := c.APIKeys(ctx(t))
	if err != nil {
		t.Fatalf("APIKeys() = %v", err)
	}
	for _, k := range list {
		if strings.HasPrefix(k.Name, "bootstrap-") {
			return k.ID
		}
	}
	t.Fatalf("APIKeys() = %+v, want a bootstrap key", list)
	return ""
}

// TestAPIKeyLifecycle: create a key, use it, list it, revoke it; the
// revoked key is refused by this node at once, though the clock has not
// moved past any cache entry.
func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	k := createKey(t, e.admin, "billing-backend", authority.RoleAdmin)
	if !strings.HasPrefix(k.Key, authority.APIKeyPrefix) || k.ID == "" || k.Name != "billing-backend" ||
		k.Role != "admin" || k.CreatedAt.IsZero() {
		t.Fatalf("CreateAPIKey() = %+v, want id, name, role, created_at and a tgk_ key", k)
	}
	billing := &client.Client{BaseURL: e.URL, APIKey: k.Key}
	if _, err := billing.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"}); err != nil {
		t.Fatalf("CreateSession with the new key = %v, want nil", err)
	}
	_, err := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "billing-backend", Role: authority.RoleFeed})
	wantStatus(t, "CreateAPIKey(duplicate name)", err, http.StatusConflict)
	_, err = e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "billing backend!", Role: authority.RoleAdmin})
	wantStatus(t, "CreateAPIKey(bad name)", err, http.StatusBadRequest)

	var raw json.RawMessage
	if err := e.admin.Do(ctx(t), "GET", "/v1/apikeys", nil, &raw); err != nil {
		t.Fatalf("GET /v1/apikeys = %v", err)
	}
	if strings.Contains(string(raw), k.Key) || strings.Contains(string(raw), e.APIKey) ||
		strings.Contains(string(raw), authority.APIKeyPrefix) || strings.Contains(string(raw), "hash") {
		t.Errorf("GET /v1/apikeys = %s, want no secrets or hashes", raw)
	}
	// The test clock stands still, so both keys have one created_at and
	// their order is the ID's.
	if names := keyNames(t, e.admin); len(names) != 2 || !slices.Contains(names, "billing-backend") {
		t.Errorf("APIKeys() = %q, want the bootstrap key and billing-backend", names)
	}

	if err := e.admin.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: k.ID, Reason: "leaked in a log"}); err != nil {
		t.Fatalf("RevokeAPIKey() = %v", err)
	}
	_, err = billing.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"})
	wantStatus(t, "CreateSession with the revoked key", err, http.StatusUnauthorized)
	wantStatus(t, "RevokeAPIKey(again)", e.admin.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: k.ID}), http.StatusNotFound)
	wantStatus(t, "RevokeAPIKey(unknown)", e.admin.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: "no-such-key"}), http.StatusNotFound)
	if names := keyNames(t, e.admin); len(names) != 1 {
		t.Errorf("APIKeys() after revocation = %q, want only the bootstrap key", names)
	}
	// The name is free again: the replacement keeps it.
	createKey(t, e.admin, "billing-backend", authority.RoleAdmin)

	recs, _, err := e.Authority.Audit(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	target := "billing-backend (" + k.ID + ")"
	var created, revoked bool
	for _, r := range recs {
		created = created || (r.Action == "apikey.create" && r.Target == target && strings.HasPrefix(r.Actor.By, "api-key:bootstrap-"))
		revoked = revoked || (r.Action == "apikey.revoke" && r.Target == target && r.Actor.Reason == "leaked in a log")
	}
	if !created || !revoked {
		t.Errorf("audit trail %+v: apikey.create %v, apikey.revoke %v, want both for %s", recs, created, revoked, target)
	}
	if strings.Contains(e.logs.String(), k.Key) {
		t.Error("the logs hold a created API key")
	}
}

// TestFeedKeyLogged: serve says at start whether it installed a feed key
// and where from, never the key.
func TestFeedKeyLogged(t *testing.T) {
	t.Parallel()
	feedKey := authority.NewAPIKey()
	e := start(t, func(c *server.Config) { c.FeedKey = feedKey })
	if l := e.logs.String(); !strings.Contains(l, "feed API key from TEGATA_FEED_KEY installed") || strings.Contains(l, feedKey) {
		t.Errorf("start with TEGATA_FEED_KEY logged:\n%s\nwant the key's source, never the key", l)
	}
	e = start(t, nil)
	if l := e.logs.String(); !strings.Contains(l, "no feed API key installed (TEGATA_FEED_KEY unset)") {
		t.Errorf("start without TEGATA_FEED_KEY logged:\n%s\nwant a line saying none was installed", l)
	}
}

// TestFeedKeyRole: a feed key reads the feed and introspects, and nothing
// else.
func TestFeedKeyRole(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	k := createKey(t, e.admin, "edge-gate", authority.RoleFeed)
	feed := &client.Client{BaseURL: e.URL, APIKey: k.Key}
	if got := feedStatus(t, e.URL, k.Key); got != http.StatusOK {
		t.Errorf("GET /v1/feed with a feed key = %d, want 200", got)
	}
	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := feed.Introspect(ctx(t), tok.AccessToken); err != nil || !res.Active {
		t.Errorf("Introspect with a feed key = %v, %v, want active", res, err)
	}
	_, err = feed.CreateSession(ctx(t), client.SessionRequest{Subject: "bob"})
	wantStatus(t, "CreateSession with a feed key", err, http.StatusForbidden)
	_, err = feed.APIKeys(ctx(t))
	wantStatus(t, "APIKeys with a feed key", err, http.StatusForbidden)
	_, err = feed.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "escalate", Role: authority.RoleAdmin})
	wantStatus(t, "CreateAPIKey with a feed key", err, http.StatusForbidden)
	wantStatus(t, "RevokeAPIKey with a feed key", feed.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: bootstrapID(t, e.admin)}), http.StatusForbidden)
}

// TestGateKeyRole: a gate key reads the feed, introspects, creates, lists
// and revokes sessions, signs a subject out everywhere and refreshes for
// its browsers; it never touches keys, API keys, the audit trail or a
// subject's claims.
func TestGateKeyRole(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	k := createKey(t, e.admin, "web", authority.RoleGate)
	if k.Role != authority.RoleGate {
		t.Fatalf("CreateAPIKey(role gate).Role = %q, want gate", k.Role)
	}
	g := &client.Client{BaseURL: e.URL, APIKey: k.Key}
	if got := feedStatus(t, e.URL, k.Key); got != http.StatusOK {
		t.Errorf("GET /v1/feed with a gate key = %d, want 200", got)
	}
	tok, err := g.CreateSession(ctx(t), client.SessionRequest{Subject: "carol", Device: "laptop", Claims: map[string]any{"role": "editor"}})
	if err != nil {
		t.Fatalf("CreateSession with a gate key = %v", err)
	}
	if res, err := g.Introspect(ctx(t), tok.AccessToken); err != nil || !res.Active {
		t.Errorf("Introspect with a gate key = %v, %v, want active", res, err)
	}
	if list, err := g.Sessions(ctx(t), "carol"); err != nil || len(list) != 1 || list[0].ID != tok.SessionID {
		t.Errorf("Sessions with a gate key = %+v, %v, want the one session", list, err)
	}
	next, err := g.Refresh(ctx(t), tok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh with a gate key = %v", err)
	}
	if _, err := g.RevokeSession(ctx(t), client.SessionRevocation{SessionID: next.SessionID, Reason: "signed out"}); err != nil {
		t.Errorf("RevokeSession with a gate key = %v", err)
	}
	if _, err := g.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "carol", Scope: "sessions", Reason: "everywhere"}); err != nil {
		t.Errorf("RevokeSubject(scope sessions) with a gate key = %v", err)
	}
	_, err = g.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "carol", Scope: "access"})
	wantStatus(t, "RevokeSubject(scope access) with a gate key", err, http.StatusForbidden)
	_, err = g.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "carol", Scope: "sessions", Reason: "", Claims: map[string]any{"role": "admin"}})
	wantStatus(t, "RevokeSubject(claims) with a gate key", err, http.StatusForbidden)
	_, err = g.APIKeys(ctx(t))
	wantStatus(t, "APIKeys with a gate key", err, http.StatusForbidden)
	_, err = g.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "escalate", Role: authority.RoleAdmin})
	wantStatus(t, "CreateAPIKey with a gate key", err, http.StatusForbidden)
	wantStatus(t, "GET /v1/keys with a gate key", g.Do(ctx(t), "GET", "/v1/keys", nil, nil), http.StatusForbidden)
	wantStatus(t, "GET /v1/audit with a gate key", g.Do(ctx(t), "GET", "/v1/audit", nil, nil), http.StatusForbidden)
	// A feed key cannot refresh on behalf of others: the API key on a
	// refresh must be one that keeps sessions.
	feedKey := createKey(t, e.admin, "edge", authority.RoleFeed)
	tok2, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "dave"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&client.Client{BaseURL: e.URL, APIKey: feedKey.Key}).Refresh(ctx(t), tok2.RefreshToken)
	wantStatus(t, "Refresh with a feed key", err, http.StatusForbidden)
	_, err = (&client.Client{BaseURL: e.URL, APIKey: "tgk_wrong"}).Refresh(ctx(t), tok2.RefreshToken)
	wantStatus(t, "Refresh with a wrong API key", err, http.StatusUnauthorized)
}

// feedStatus opens the feed stream, closes it, and returns its status.
func feedStatus(t *testing.T, base, key string) int {
	t.Helper()
	s := openFeed(t, base, key)
	s.cancel()
	return s.status
}

// TestLastAdminKey: the only admin key cannot revoke itself; once another
// admin key exists it can, and is refused at once.
func TestLastAdminKey(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	createKey(t, e.admin, "gate", authority.RoleFeed)
	boot := bootstrapID(t, e.admin)
	wantStatus(t, "RevokeAPIKey(the last admin key, by itself)", e.admin.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: boot}), http.StatusConflict)
	if _, err := e.admin.APIKeys(ctx(t)); err != nil {
		t.Fatalf("APIKeys() after a refused self-revocation = %v, want nil", err)
	}
	other := createKey(t, e.admin, "ops", authority.RoleAdmin)
	if err := e.admin.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: boot, Reason: "handing over"}); err != nil {
		t.Fatalf("RevokeAPIKey(bootstrap, another admin exists) = %v", err)
	}
	_, err := e.admin.APIKeys(ctx(t))
	wantStatus(t, "APIKeys with the revoked bootstrap key", err, http.StatusUnauthorized)
	ops := &client.Client{BaseURL: e.URL, APIKey: other.Key}
	wantStatus(t, "RevokeAPIKey(the last admin key, by itself)", ops.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: other.ID}), http.StatusConflict)
}

// TestRevokedBootstrapRefusesRestart: a revoked bootstrap key, from
// TEGATA_API_KEY or from the key file, stops the next start with a message
// naming the setting, instead of coming back to life.
func TestRevokedBootstrapRefusesRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		apiKey string // "" uses the key file
	}{
		{"TEGATA_API_KEY", authority.NewAPIKey()},
		{"key file", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			cfg := server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), APIKey: tc.apiKey,
				Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logs), nil))}
			r := mustStart(t, cfg)
			boot := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
			ops := createKey(t, boot, "ops", authority.RoleAdmin)
			if err := boot.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: bootstrapID(t, boot), Reason: "leaked"}); err != nil {
				t.Fatal(err)
			}
			stop(t, r)

			_, err := server.Start(ctx(t), cfg)
			if !errors.Is(err, authority.ErrAPIKeyRevoked) || !strings.Contains(err.Error(), "TEGATA_API_KEY") ||
				!strings.Contains(err.Error(), "set a new one") {
				t.Fatalf("Start with the revoked bootstrap key = %v, want a refusal saying to set a new TEGATA_API_KEY", err)
			}
			if strings.Contains(err.Error(), r.APIKey) || strings.Contains(logs.String(), r.APIKey) || strings.Contains(logs.String(), ops.Key) {
				t.Error("the refusal or the logs hold an API key")
			}

			cfg.APIKey = authority.NewAPIKey()
			r = mustStart(t, cfg)
			defer stop(t, r)
			if _, err := (&client.Client{BaseURL: r.URL, APIKey: cfg.APIKey}).APIKeys(ctx(t)); err != nil {
				t.Errorf("APIKeys with a new TEGATA_API_KEY after the refusal = %v, want nil", err)
			}
			if _, err := (&client.Client{BaseURL: r.URL, APIKey: ops.Key}).APIKeys(ctx(t)); err != nil {
				t.Errorf("APIKeys with a key created before the restart = %v, want nil", err)
			}
		})
	}
}

func mustStart(t *testing.T, cfg server.Config) *server.Running {
	t.Helper()
	r, err := server.Start(ctx(t), cfg)
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	return r
}

func stop(t *testing.T, r *server.Running) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(c); err != nil {
		t.Errorf("Shutdown() = %v", err)
	}
}

// TestReplacedBootstrapKeyRetired: after a leak, a node started with
// --replace-keys and a new TEGATA_API_KEY (or a deleted api-key file) and
// TEGATA_FEED_KEY installs them and revokes the keys they replace, with an
// audit record and a log line; keys made through the API are not touched.
func TestReplacedBootstrapKeyRetired(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(t *testing.T, cfg *server.Config)
	}{
		{"new TEGATA_API_KEY", func(t *testing.T, cfg *server.Config) { cfg.APIKey = authority.NewAPIKey() }},
		{"api-key file deleted", func(t *testing.T, cfg *server.Config) {
			if err := os.Remove(filepath.Join(cfg.DataDir, "api-key")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			cfg := server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), FeedKey: authority.NewAPIKey(),
				Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logs), nil))}
			if tc.name != "api-key file deleted" {
				cfg.APIKey = authority.NewAPIKey()
			}
			r := mustStart(t, cfg)
			oldAdmin, oldFeed := r.APIKey, cfg.FeedKey
			oldID := bootstrapID(t, &client.Client{BaseURL: r.URL, APIKey: oldAdmin})
			app := createKey(t, &client.Client{BaseURL: r.URL, APIKey: oldAdmin}, "app", authority.RoleAdmin)
			stop(t, r)

			tc.change(t, &cfg)
			cfg.FeedKey = authority.NewAPIKey()
			cfg.ReplaceKeys = true
			r = mustStart(t, cfg)
			defer stop(t, r)
			admin := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
			if r.APIKey == oldAdmin {
				t.Fatal("the bootstrap key did not change")
			}
			_, err := (&client.Client{BaseURL: r.URL, APIKey: oldAdmin}).APIKeys(ctx(t))
			wantStatus(t, "APIKeys with the replaced bootstrap key", err, http.StatusUnauthorized)
			if s := feedStatus(t, r.URL, oldFeed); s != http.StatusUnauthorized {
				t.Errorf("GET /v1/feed with the replaced feed key = %d, want 401", s)
			}
			if s := feedStatus(t, r.URL, cfg.FeedKey); s != http.StatusOK {
				t.Errorf("GET /v1/feed with the new feed key = %d, want 200", s)
			}
			if _, err := (&client.Client{BaseURL: r.URL, APIKey: app.Key}).APIKeys(ctx(t)); err != nil {
				t.Errorf("APIKeys with a key made through the API = %v, want nil: only installed keys are retired", err)
			}
			names := keyNames(t, admin)
			if len(names) != 3 || !slices.Contains(names, "app") {
				t.Errorf("live keys after the change = %q, want app, the new bootstrap key and the new feed key", names)
			}
			var audit struct {
				Records []struct{ By, Reason, Action, Target string }
			}
			if err := admin.Do(ctx(t), "GET", "/v1/audit", nil, &audit); err != nil {
				t.Fatal(err)
			}
			retired := 0
			for _, rec := range audit.Records {
				if rec.Action == "apikey.revoke" && rec.By == "system" && strings.HasPrefix(rec.Reason, "replaced at start") {
					retired++
					if rec.Target == "" || (strings.HasPrefix(rec.Target, "bootstrap-") && !strings.Contains(rec.Target, oldID)) {
						t.Errorf("audit record %+v does not name the retired key %s", rec, oldID)
					}
				}
			}
			if retired != 2 {
				t.Errorf("audit holds %d retirements by the system, want 2 (bootstrap and feed):\n%+v", retired, audit.Records)
			}
			if n := strings.Count(logs.String(), "API key retired"); n != 2 {
				t.Errorf("log has %d \"API key retired\" lines, want 2:\n%s", n, logs.String())
			}
			if l := logs.String(); strings.Contains(l, oldAdmin) || strings.Contains(l, oldFeed) || strings.Contains(l, cfg.FeedKey) {
				t.Error("the logs hold an API key")
			}
		})
	}
}

// TestDifferentKeyRefusesStart: a node given another bootstrap or feed
// key than the cluster's (stale, mistyped) refuses to start and says why,
// and the cluster's keys go on working.
func TestDifferentKeyRefusesStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(cfg *server.Config)
		setting string
	}{
		{"TEGATA_API_KEY", func(cfg *server.Config) { cfg.APIKey = authority.NewAPIKey() }, "TEGATA_API_KEY"},
		{"TEGATA_FEED_KEY", func(cfg *server.Config) { cfg.FeedKey = authority.NewAPIKey() }, "TEGATA_FEED_KEY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := server.Config{Addr: "127.0.0.1:0", DB: migrated.Schema(t), Issuer: "https://auth.test", DataDir: filepath.Join(t.TempDir(), "d"),
				MasterKey: base64.StdEncoding.EncodeToString(make([]byte, 32)), APIKey: authority.NewAPIKey(), FeedKey: authority.NewAPIKey(),
				Logger: quietLog()}
			first := mustStart(t, cfg)
			defer stop(t, first)
			other := cfg
			tc.change(&other)
			_, err := server.Start(ctx(t), other)
			if !errors.Is(err, authority.ErrAPIKeyDiffers) || !strings.Contains(err.Error(), tc.setting) || !strings.Contains(err.Error(), "--replace-keys") {
				t.Fatalf("Start with another %s = %v, want a refusal naming %s and --replace-keys", tc.setting, err, tc.setting)
			}
			if strings.Contains(err.Error(), other.APIKey) || strings.Contains(err.Error(), other.FeedKey) {
				t.Error("the refusal holds an API key")
			}
			if _, err := (&client.Client{BaseURL: first.URL, APIKey: cfg.APIKey}).APIKeys(ctx(t)); err != nil {
				t.Errorf("the cluster's bootstrap key after the refused start: %v, want it working", err)
			}
			if s := feedStatus(t, first.URL, cfg.FeedKey); s != http.StatusOK {
				t.Errorf("the cluster's feed key after the refused start: GET /v1/feed = %d, want 200", s)
			}
		})
	}
}
