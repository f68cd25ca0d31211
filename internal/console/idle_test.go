package console_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/console"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// backends runs a console test on embedded SQLite and on Postgres, both at
// once; tune adjusts the node's settings, nil keeps the defaults.
func backends(t *testing.T, tune func(*server.Config), test func(t *testing.T, e *env)) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var dsn string
			if name == "postgres" {
				dsn = migrated.Schema(t)
			}
			test(t, start(t, func(c *server.Config) {
				c.DB = dsn
				if tune != nil {
					tune(c)
				}
			}))
		})
	}
}

// TestIdleTimeoutDefaults: with the default settings the idle timeout and
// the access token's lifetime are both 15 minutes. A session used 15
// minutes after its last request lives on; one idle a second longer ends,
// and so does one idle 16 minutes, whose access token has expired by then
// (past the verifiers' leeway): each is revoked and audited as timed out.
func TestIdleTimeoutDefaults(t *testing.T) {
	t.Parallel()
	backends(t, nil, func(t *testing.T, e *env) {
		// Tokens carry whole seconds: sign in on one.
		now := e.clock.Now()
		e.clock.Add(now.Truncate(time.Second).Add(time.Second).Sub(now))
		b := e.signedIn(t)
		e.clock.Add(console.DefaultIdleTimeout)
		wantStatus(t, "overview after exactly the idle timeout", b.get("/console/"), http.StatusOK)
		wantIdleEnd(t, e, b, console.DefaultIdleTimeout+time.Second)
		wantIdleEnd(t, e, e.signedIn(t), 16*time.Minute)
	})
}

// wantIdleEnd lets b's console session idle for d and checks that its next
// request finds it ended, revoked and audited as timed out.
func wantIdleEnd(t *testing.T, e *env, b *browser, d time.Duration) {
	t.Helper()
	ss := consoleSessions(t, e, console.SubjectPrefix)
	if len(ss) != 1 {
		t.Fatalf("%d console sessions live, want 1", len(ss))
	}
	e.clock.Add(d)
	res := b.get("/console/")
	wantStatus(t, "overview after "+d.String()+" idle", res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/console/login?") || !strings.Contains(loc, "ended=1") {
		t.Errorf("idle session sent to %q, want the sign-in page saying it ended", loc)
	}
	if n := len(consoleSessions(t, e, console.SubjectPrefix)); n != 0 {
		t.Errorf("after %v idle %d console sessions live, want 0", d, n)
	}
	if got := consoleEnds(t, e, ss[0].ID); !slices.Equal(got, []string{"console session timed out"}) {
		t.Errorf("session.revoke records of the session idle %v: %q, want one timing it out", d, got)
	}
}

// TestIdleTimeoutLongerThanTokens: with an idle timeout longer than the
// access token's lifetime, a session whose token expired while it was idle
// for less than the timeout lives on (refreshed), and one idle longer ends
// and is revoked.
func TestIdleTimeoutLongerThanTokens(t *testing.T) {
	t.Parallel()
	backends(t, func(c *server.Config) { c.ConsoleIdleTimeout = 40 * time.Minute }, func(t *testing.T, e *env) {
		b := e.signedIn(t)
		e.clock.Add(25 * time.Minute) // the access token expired 10 minutes ago
		wantStatus(t, "overview after 25 idle minutes", b.get("/console/"), http.StatusOK)
		wantStatus(t, "overview at once after", b.get("/console/"), http.StatusOK)
		wantIdleEnd(t, e, b, 41*time.Minute)
	})
}

// TestExpiredTokenOfRevokedSession: a session revoked elsewhere whose
// access token then expires ends at its next request without a second
// revocation or a timed-out record.
func TestExpiredTokenOfRevokedSession(t *testing.T) {
	t.Parallel()
	backends(t, nil, func(t *testing.T, e *env) {
		b := e.signedIn(t)
		ss := consoleSessions(t, e, console.SubjectPrefix)
		if len(ss) != 1 {
			t.Fatalf("%d console sessions live, want 1", len(ss))
		}
		if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: ss[0].ID, Reason: "from the API"}); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(16 * time.Minute)
		wantStatus(t, "overview after the revocation", b.get("/console/"), http.StatusSeeOther)
		if _, ok := b.cookies["__Host-tegata-console-refresh"]; ok {
			t.Errorf("the refresh cookie is kept after the session ended")
		}
		if got := consoleEnds(t, e, ss[0].ID); len(got) != 0 {
			t.Errorf("console session.revoke records of a session revoked over the API: %q, want none", got)
		}
	})
}

// consoleEnds returns the reasons (without the key) of the console's
// session.revoke records for session sid, oldest first.
func consoleEnds(t *testing.T, e *env, sid string) []string {
	t.Helper()
	page, err := e.admin.Audit(ctx(t), client.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range page.Records {
		if r.Action == "session.revoke" && r.Target == sid && strings.HasPrefix(r.Reason, "console ") {
			reason, _, _ := strings.Cut(r.Reason, ", key ")
			out = append(out, reason)
		}
	}
	return out
}

// TestIdleSessionSwept: with the default settings a console session left
// idle is revoked and audited as timed out without another request, while
// one in use lives on.
func TestIdleSessionSwept(t *testing.T) {
	t.Parallel()
	backends(t, nil, func(t *testing.T, e *env) {
		idle := e.signedIn(t)
		busy := e.signedIn(t)
		ss := consoleSessions(t, e, console.SubjectPrefix)
		if len(ss) != 2 {
			t.Fatalf("%d console sessions live, want 2", len(ss))
		}
		e.clock.Add(10 * time.Minute)
		wantStatus(t, "the busy session's overview", busy.get("/console/"), http.StatusOK)
		e.clock.Add(6 * time.Minute) // the idle one idle 16 minutes, the busy one 6
		var live []client.Session
		testtime.EventuallyTrue(t, 10*time.Second, "the idle session revoked by the sweep", func() bool {
			live = consoleSessions(t, e, console.SubjectPrefix)
			return len(live) < 2
		})
		if len(live) != 1 {
			t.Fatalf("%d console sessions live after the sweep, want 1", len(live))
		}
		swept := ss[0].ID
		if swept == live[0].ID {
			swept = ss[1].ID
		}
		if got := consoleEnds(t, e, swept); !slices.Equal(got, []string{"console session timed out"}) {
			t.Errorf("session.revoke records of the swept session: %q, want one timing it out", got)
		}
		wantStatus(t, "the busy session's overview after the sweep", busy.get("/console/"), http.StatusOK)
		res := idle.get("/console/")
		wantStatus(t, "the swept session's overview", res, http.StatusSeeOther)
		if got := consoleEnds(t, e, swept); len(got) != 1 {
			t.Errorf("session.revoke records of the swept session after its next request: %q, want one", got)
		}
	})
}
