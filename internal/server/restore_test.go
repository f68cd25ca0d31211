package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/verifier"
)

// backing is one store as an operator backs it up and restores it.
type backing struct {
	// config is a node's configuration on the live database.
	config func(t *testing.T) server.Config
	// backup copies the database of cfg; restore returns the configuration
	// of a node on the copy, as an operator would start it.
	backup func(t *testing.T, cfg server.Config) (restore func(t *testing.T) server.Config)
}

// sqliteBacking backs the embedded database up with VACUUM INTO (an online
// copy, as `sqlite3 tegata.db ".backup ..."` makes) and restores it as an
// operator moving to a new machine would: a new data directory with the
// node's key files and the copy as tegata.db. Each restore is a directory
// of its own, so that one backup can be restored more than once.
func sqliteBacking() backing {
	return backing{
		config: func(t *testing.T) server.Config {
			return server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()}
		},
		backup: func(t *testing.T, cfg server.Config) func(t *testing.T) server.Config {
			copyPath := filepath.Join(t.TempDir(), "backup.db")
			sqlDB, err := sql.Open("sqlite", filepath.Join(cfg.DataDir, "tegata.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer sqlDB.Close()
			if _, err := sqlDB.Exec(`VACUUM INTO '` + copyPath + `'`); err != nil {
				t.Fatalf("VACUUM INTO: %v", err)
			}
			return func(t *testing.T) server.Config {
				restored := cfg
				restored.DataDir = t.TempDir()
				copyFiles(t, cfg.DataDir, restored.DataDir, "tegata.db", "tegata.db-wal", "tegata.db-shm")
				copyFile(t, copyPath, filepath.Join(restored.DataDir, "tegata.db"))
				return restored
			}
		},
	}
}

// copyFiles copies the regular files of dir into to, but the ones named in
// skip.
func copyFiles(t *testing.T, dir, to string, skip ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && !slices.Contains(skip, e.Name()) {
			copyFile(t, filepath.Join(dir, e.Name()), filepath.Join(to, e.Name()))
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// postgresBacking backs a schema up with pg_dump and restores the dump
// into a new database with psql; the nodes keep their secrets in the
// environment (no data directory, so nothing beside the database remembers
// the log).
func postgresBacking() backing {
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	secrets := server.Config{MasterKey: base64.StdEncoding.EncodeToString(master), APIKey: authority.NewAPIKey()}
	return backing{
		config: func(t *testing.T) server.Config {
			cfg := secrets
			cfg.Addr, cfg.DB, cfg.Issuer = "127.0.0.1:0", pgtest.Schema(t), "https://auth.test"
			cfg.DataDir = filepath.Join(t.TempDir(), "unused")
			return cfg
		},
		backup: func(t *testing.T, cfg server.Config) func(t *testing.T) server.Config {
			schema := searchPath(t, cfg.DB)
			dump := filepath.Join(t.TempDir(), "dump.sql")
			run(t, "pg_dump", "--no-owner", "-n", schema, "-f", dump, plainDSN(t, pgtest.DSN()))
			return func(t *testing.T) server.Config {
				db := newDatabase(t)
				run(t, "psql", "-q", "-v", "ON_ERROR_STOP=1", "-f", dump, plainDSN(t, withDatabase(t, pgtest.DSN(), db)))
				cfg.DB = pgtest.WithSearchPath(withDatabase(t, pgtest.DSN(), db), schema)
				return cfg
			}
		},
	}
}

// TestRestoreBringsNoRevocationBack: revoke a session and an API key after
// a backup, restore the backup, start a node on it: the session's access
// token and refresh token and the API key are refused, with no flag given.
// With --after-restore=keep the same steps bring them back: the hazard the
// default guards against is real in this test. Both policies restore the
// same backup, each into a database of its own.
func TestRestoreBringsNoRevocationBack(t *testing.T) {
	t.Parallel()
	for _, b := range []struct {
		name string
		backing
	}{{"sqlite", sqliteBacking()}, {"postgres", postgresBacking()}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			bk := backUpThenRevoke(t, b.backing)
			for _, policy := range []string{"", server.AfterRestoreKeep} {
				t.Run("policy="+policy, func(t *testing.T) {
					t.Parallel()
					testRestore(t, bk, policy)
				})
			}
		})
	}
}

// backedUp is a backup taken before a session and an API key were revoked.
type backedUp struct {
	restore func(t *testing.T) server.Config
	revoked client.Tokens // the session revoked after the backup
	appKey  client.APIKey // the API key revoked after the backup
	epoch   string        // the cluster's epoch before the restore
}

// backUpThenRevoke starts a node, signs a session in and makes an API key,
// backs the database up, revokes both and stops the node.
func backUpThenRevoke(t *testing.T, b backing) backedUp {
	cfg := b.config(t)
	cfg.Logger = quietLog()
	r := mustStart(t, cfg)
	admin := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	revoked, err := admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	bk := backedUp{revoked: revoked, appKey: createKey(t, admin, "app", authority.RoleAdmin), epoch: epochAt(t, r.URL)}
	bk.restore = b.backup(t, cfg)
	if _, err := admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: revoked.SessionID}); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if err := admin.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: bk.appKey.ID}); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	stop(t, r)
	return bk
}

func testRestore(t *testing.T, bk backedUp, policy string) {
	cfg := bk.restore(t)
	cfg.AfterRestore = policy
	logs := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	r := mustStart(t, cfg)
	defer stop(t, r)
	admin := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	if after := epochAt(t, r.URL); after == bk.epoch {
		t.Errorf("epoch after the restore = %q, the same as before: verifiers would resume inside reused positions", after)
	}
	intro, err := admin.Introspect(ctx(t), bk.revoked.AccessToken)
	if err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	_, refreshErr := (&client.Client{BaseURL: r.URL}).Refresh(ctx(t), bk.revoked.RefreshToken)
	_, keyErr := (&client.Client{BaseURL: r.URL, APIKey: bk.appKey.Key}).APIKeys(ctx(t))

	if policy == server.AfterRestoreKeep {
		if !intro.Active || refreshErr != nil || keyErr != nil {
			t.Fatalf("with --after-restore=keep: introspect active = %v, refresh = %v, revoked API key = %v; "+
				"want all three accepted (the restore brought them back), or this test proves nothing", intro.Active, refreshErr, keyErr)
		}
		return
	}
	if intro.Active {
		t.Errorf("Introspect(access token of the session revoked after the backup) = active, want inactive")
	}
	grantErr(t, refreshErr)
	wantStatus(t, "the API key revoked after the backup", keyErr, 401)
	if !strings.Contains(logs.String(), "the database was restored from a backup") {
		t.Errorf("log of the start on the restored database:\n%s\nwant it to say the database was restored", logs.String())
	}
	if _, err := admin.APIKeys(ctx(t)); err != nil {
		t.Errorf("bootstrap key after the restore: %v, want it kept (the node is configured with it)", err)
	}

	// The next start on the same database finds nothing to reset: what
	// was created after the reset lives on.
	fresh, err := admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatalf("CreateSession after the reset: %v", err)
	}
	stop(t, r)
	r2 := mustStart(t, cfg)
	defer stop(t, r2)
	if _, err := (&client.Client{BaseURL: r2.URL}).Refresh(ctx(t), fresh.RefreshToken); err != nil {
		t.Errorf("Refresh(session created after the reset) at the next start = %v, want it to work", err)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed under CI=true", name)
		}
		t.Skipf("%s not installed", name)
	}
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
}

// newDatabase creates a database on the test server, dropped at cleanup.
func newDatabase(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "tegata_restore_" + hex.EncodeToString(b)
	db := pgtest.DB(t)
	if _, err := db.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("DROP DATABASE %s: %v", name, err)
		}
	})
	return name
}

func withDatabase(t *testing.T, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	return u.String()
}

// plainDSN drops the options libpq does not know (search_path).
func plainDSN(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String()
}

func searchPath(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("search_path")
}

// TestVerifierResyncsAfterRestore: a verifier that followed the node
// across a restore of its database starts over by itself (the epoch
// changed), refuses the tokens issued before the restore, and misses none
// of the revocations made on the restored database, although their log
// positions are ones it had seen already.
func TestVerifierResyncsAfterRestore(t *testing.T) {
	t.Parallel()
	b := sqliteBacking()
	cfg := b.config(t)
	cfg.Logger = quietLog()
	cfg.Addr = freeAddr(t) // no listener on port 0 takes it while the node is down
	r := mustStart(t, cfg)
	cfg.Addr = strings.TrimPrefix(r.URL, "http://") // the node comes back at the same address
	admin := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	v, err := verifier.New(ctx(t), verifier.Config{Authorities: []string{r.URL}, APIKey: r.APIKey, Logger: quietLog()})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	defer v.Close()
	if err := v.WaitReady(ctx(t)); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	old, err := admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	restore := b.backup(t, cfg)
	for i := range 5 { // the verifier's position moves past the backup's head
		if _, err := admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: fmt.Sprint("gone-", i), Scope: "sessions"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the verifier has the revocations", func() bool { return v.State().Position >= 5 })
	epoch := v.State().Epoch
	stop(t, r)

	r2 := mustStart(t, restore(t))
	defer stop(t, r2)
	admin2 := &client.Client{BaseURL: r2.URL, APIKey: r2.APIKey}
	var revoked []client.Tokens
	for range 8 { // reuses the positions the verifier held
		tok, err := admin2.CreateSession(ctx(t), client.SessionRequest{Subject: "bob", Device: "phone"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin2.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID}); err != nil {
			t.Fatal(err)
		}
		revoked = append(revoked, tok)
	}
	live, err := admin2.CreateSession(ctx(t), client.SessionRequest{Subject: "carol", Device: "tablet"})
	if err != nil {
		t.Fatal(err)
	}
	// From the moment it is ready on the new epoch, without having met a
	// token of the new key yet, it refuses the tokens issued before.
	eventually(t, "the verifier is ready on the new epoch", func() bool {
		st := v.State()
		return st.Epoch != epoch && st.Ready
	})
	if _, err := v.Verify(ctx(t), old.AccessToken); !errors.Is(err, verifier.ErrUnknownKey) {
		t.Errorf("Verify(token issued before the restore) = %v, want ErrUnknownKey (its signing key is gone)", err)
	}
	if _, err := v.Verify(ctx(t), live.AccessToken); err != nil {
		t.Errorf("Verify(token issued after the restore) = %v, want nil", err)
	}
	// The stream may have opened between two of the revocations above, so
	// being ready says nothing about the later ones: they arrive on it.
	eventually(t, "the verifier refuses every session revoked on the restored database", func() bool {
		for _, tok := range revoked {
			if _, err := v.Verify(ctx(t), tok.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
				return false
			}
		}
		return true
	})
}

// TestRestoredFlag: --restored applies the restore policy when nothing at
// start shows a restore (here: none happened), and refuses while another
// node runs on the database, but not once it has stopped cleanly (its
// record, live for seconds more, is marked stopped).
func TestRestoredFlag(t *testing.T) {
	t.Parallel()
	cfg := postgresBacking().config(t)
	clk := newClock()
	cfg.Logger, cfg.Clock = quietLog(), clk
	r := mustStart(t, cfg)
	admin := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	tok, err := admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	flagged := cfg
	flagged.Restored = true
	if r2, err := server.Start(ctx(t), flagged); err == nil || !strings.Contains(err.Error(), "--restored: 1 other node(s) still run") {
		if err == nil {
			stop(t, r2)
		}
		t.Fatalf("Start(--restored) beside a running node = %v, want a refusal naming it", err)
	}
	stop(t, r) // a clean stop: its record, still live, is marked stopped
	r2, err := server.Start(ctx(t), flagged)
	if err != nil {
		t.Fatalf("Start(--restored) alone = %v", err)
	}
	defer stop(t, r2)
	_, err = (&client.Client{BaseURL: r2.URL}).Refresh(ctx(t), tok.RefreshToken)
	grantErr(t, err)
}
