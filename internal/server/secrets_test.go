package server_test

import (
	"crypto/sha256"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/store"
)

func TestSecretsAtRest(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "jane"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"api-key", "master.key"} {
		st, err := os.Stat(filepath.Join(e.dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v (%v), want 0600", f, st.Mode().Perm(), err)
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "tegata.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dump := dumpDB(t, db)
	master, _ := os.ReadFile(filepath.Join(e.dir, "master.key"))
	for name, secret := range map[string]string{
		"refresh token": tk.RefreshToken, "API key": e.APIKey, "master key": strings.TrimSpace(string(master)),
	} {
		if strings.Contains(dump, secret) {
			t.Errorf("the database holds the %s in plaintext", name)
		}
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the logs hold the %s", name)
		}
	}
	if strings.Contains(e.logs.String(), tk.AccessToken) {
		t.Error("the logs hold an access token")
	}
	h := sha256.Sum256([]byte(tk.RefreshToken))
	if !strings.Contains(dump, string(h[:])) {
		t.Error("the refresh token's SHA-256 is not in the database")
	}
	// Signing keys: only sealed private halves.
	keys, err := e.Store.ListKeys(ctx(t))
	if err != nil || len(keys) == 0 {
		t.Fatalf("ListKeys = %d, %v", len(keys), err)
	}
	for _, k := range keys {
		if strings.Contains(dump, "PRIVATE KEY") || len(k.PrivateEnc) < 48 {
			t.Fatalf("key %s is not sealed", k.ID)
		}
	}
}

// dumpDB concatenates every text and blob value of every table.
func dumpDB(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type='table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var sb strings.Builder
	for _, tbl := range tables {
		r, err := db.Query(`SELECT * FROM "` + tbl + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for r.Next() {
			_ = r.Scan(ptrs...)
			for _, v := range vals {
				switch x := v.(type) {
				case string:
					sb.WriteString(x)
				case []byte:
					sb.Write(x)
				}
				sb.WriteByte(0)
			}
		}
		r.Close()
	}
	return sb.String()
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	v := e.Authority.Verifier()
	old, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "kim"})
	oldKid := kidOf(t, old.AccessToken)
	k, err := e.Authority.RotateKey(ctx(t), authority.UseAccess, store.Actor{By: "test", Reason: "scheduled"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(e.Authority.JWKS()), k.ID) {
		t.Fatal("new key not published in JWKS at once")
	}
	pending, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "kim"})
	if kidOf(t, pending.AccessToken) != oldKid {
		t.Fatal("signed with the new key before its publish delay passed")
	}
	e.clock.Add(61 * time.Second)
	rotated, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "kim"})
	if kidOf(t, rotated.AccessToken) != k.ID {
		t.Fatalf("after the publish delay, kid = %s, want %s", kidOf(t, rotated.AccessToken), k.ID)
	}
	for _, at := range []string{old.AccessToken, rotated.AccessToken} {
		if _, err := v.Verify(ctx(t), at); err != nil {
			t.Fatalf("Verify after rotation = %v, want nil (old key kept until its tokens expire)", err)
		}
	}
	// 15 min access TTL + 30 s leeway after the old key retired, it leaves JWKS.
	e.clock.Add(16 * time.Minute)
	if err := e.Authority.ReloadKeys(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.Authority.JWKS()), oldKid) {
		t.Fatal("retired key still published after every token it signed expired")
	}
	recs, _, _ := e.Authority.Audit(ctx(t), 0, 100)
	found := false
	for _, r := range recs {
		found = found || (r.Target == k.ID && r.Actor.Reason == "scheduled")
	}
	if !found {
		t.Fatalf("audit trail %+v lacks the rotation with its reason", recs)
	}
}

func kidOf(t *testing.T, at string) string {
	t.Helper()
	h, _, err := tokenInspect(at)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := h["kid"].(string)
	return kid
}

func TestWeakAPIKeyRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, api, feed string }{
		{"admin key", "admin", ""},
		{"feed key", "tgk_" + strings.Repeat("a", 40), "feed"},
	} {
		_, err := server.Start(ctx(t), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), APIKey: tc.api, FeedKey: tc.feed})
		if err == nil || !strings.Contains(err.Error(), "shorter than") {
			t.Errorf("%s: Start with a weak key = %v, want a refusal naming the length", tc.name, err)
		}
	}
}
