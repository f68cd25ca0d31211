package server_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/server"
)

// readyz returns the node's /readyz status and reason.
func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer res.Body.Close()
	var body struct{ Reason string }
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("/readyz body %q: %v", b, err)
	}
	return res.StatusCode, body.Reason
}

// refusedWrite checks that err is the answer to a write the store refused:
// 503 temporarily_unavailable saying nothing was changed, never a 500.
func refusedWrite(t *testing.T, what string, err error) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable || ce.Code != "temporarily_unavailable" ||
		!strings.Contains(ce.Description, "NOT in force") || ce.RetryAfter == 0 {
		t.Fatalf("%s on a store that refuses writes = %v, want 503 temporarily_unavailable, NOT in force, Retry-After", what, err)
	}
}

// TestSQLiteFullIsNotReady fills an embedded database capped by
// --sqlite-max-size (SQLite's max_page_count, what a full disk looks like
// to it): sign-ins then fail with 503, not 500, and /readyz says why.
func TestSQLiteFullIsNotReady(t *testing.T) {
	t.Parallel()
	limits := httpapi.Limits{} // no rate limits: the test signs in quickly
	e := start(t, func(c *server.Config) { c.SQLiteMaxSize = 320 << 10; c.Limits = &limits })
	first, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "first", Device: "laptop"})
	if err != nil {
		t.Fatalf("CreateSession(first): %v", err)
	}
	if status, reason := readyz(t, e.URL); status != http.StatusOK {
		t.Fatalf("/readyz with room = %d %q, want 200", status, reason)
	}
	claims := map[string]any{"filler": strings.Repeat("x", 2000)}
	var refused error
	for i := 0; i < 2000 && refused == nil; i++ {
		_, refused = e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: fmt.Sprintf("user-%d", i), Device: "phone", Claims: claims})
	}
	if refused == nil {
		t.Fatal("2000 sessions of 2 KB fit in a 320 KiB database")
	}
	refusedWrite(t, "CreateSession", refused)
	if status, reason := readyz(t, e.URL); status != http.StatusServiceUnavailable || !strings.Contains(reason, "refuses writes") {
		t.Errorf("/readyz on a full database = %d %q, want 503 naming refused writes", status, reason)
	}
	// A sign-out on a full database is either in force or refused with
	// 503: never a 500 that leaves the caller guessing.
	_, err = e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: first.SessionID})
	if err != nil {
		refusedWrite(t, "RevokeSession", err)
		if !active(t, e, first.AccessToken) {
			t.Error("a refused sign-out took effect")
		}
	} else if active(t, e, first.AccessToken) {
		t.Error("a sign-out answered 200 left the token active")
	}
	if logs := e.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "the database refuses writes") {
		t.Error("no error in the log says the database refuses writes")
	}
}

// TestPostgresReadOnlyIsNotReady turns the node's Postgres role read-only
// (what a standby or default_transaction_read_only gives every session):
// the write probe makes the node not ready, sign-in and sign-out answer 503
// saying nothing changed, and once the role may write again the node is
// ready and signs out.
func TestPostgresReadOnlyIsNotReady(t *testing.T) {
	t.Parallel()
	db := pgtest.DB(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	role := "tegata_ro_" + hex.EncodeToString(b)
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE ROLE " + role + " LOGIN")
	exec("CREATE SCHEMA " + role + " AUTHORIZATION " + role)
	kick := func() { exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + role + "'") }
	t.Cleanup(func() {
		for _, q := range []string{"DROP SCHEMA " + role + " CASCADE", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + role + "'", "DROP ROLE " + role} {
			if _, err := db.Exec(q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	u, err := url.Parse(pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	e := start(t, func(c *server.Config) { c.DB = pgtest.WithSearchPath(u.String(), role) })
	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}

	exec("ALTER ROLE " + role + " SET default_transaction_read_only = on")
	kick()
	eventually(t, "/readyz answers 503 once the role is read-only", func() bool {
		e.clock.Add(5 * time.Second) // the node's next probe of its store
		status, reason := readyz(t, e.URL)
		return status == http.StatusServiceUnavailable && strings.Contains(reason, "refuses writes")
	})
	_, err = e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "bob", Device: "phone"})
	refusedWrite(t, "CreateSession", err)
	_, err = e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID})
	refusedWrite(t, "RevokeSession", err)
	if !active(t, e, tok.AccessToken) {
		t.Fatal("a refused sign-out took effect")
	}

	exec("ALTER ROLE " + role + " RESET default_transaction_read_only")
	kick()
	eventually(t, "/readyz answers 200 once the role may write", func() bool {
		// The node probes its store every few seconds of its clock.
		e.clock.Add(5 * time.Second)
		status, _ := readyz(t, e.URL)
		return status == http.StatusOK
	})
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID}); err != nil {
		t.Fatalf("RevokeSession once writable: %v", err)
	}
	if active(t, e, tok.AccessToken) {
		t.Error("signed-out token still active")
	}
}
