package authority

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestPaddedSubjectFromBeforeTheRule is the second review's finding 3:
// sessions refuse subjects with surrounding whitespace now, but sessions
// made before that rule must stay possible to list and sign out, while a
// padded subject with no sessions (a slip) is still refused.
func TestPaddedSubjectFromBeforeTheRule(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := testtime.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	a, err := New(ctx, st, bytes.Repeat([]byte{7}, MasterKeySize), Config{Issuer: "https://auth.test", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateSession(ctx, SessionRequest{Subject: "alice "}); !errors.As(err, new(*Error)) {
		t.Fatalf("CreateSession(%q) = %v, want invalid_request", "alice ", err)
	}
	// A session made before the rule: made for "alice", then renamed in
	// the database as an older release would have stored it.
	if _, err := a.CreateSession(ctx, SessionRequest{Subject: "alice"}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE sessions SET subject = 'alice ' WHERE subject = 'alice'`); err != nil {
		t.Fatal(err)
	}
	live, err := a.Sessions(ctx, "alice ")
	if err != nil || len(live) != 1 {
		t.Fatalf("Sessions(%q) = %d sessions, %v; want the 1 made before the rule", "alice ", len(live), err)
	}
	actor := store.Actor{By: "test"}
	if _, err := a.RevokeSubject(ctx, SubjectRevocation{Subject: "alice ", Actor: actor}); err != nil {
		t.Fatalf("RevokeSubject(%q) with a session = %v, want it signed out", "alice ", err)
	}
	if live, err := a.Sessions(ctx, "alice "); err != nil || len(live) != 0 {
		t.Fatalf("Sessions(%q) after signing out = %d, %v; want none", "alice ", len(live), err)
	}
	for _, sub := range []string{"bob ", " carol"} {
		if _, err := a.RevokeSubject(ctx, SubjectRevocation{Subject: sub, Actor: actor}); !errors.As(err, new(*Error)) {
			t.Errorf("RevokeSubject(%q) with no sessions = %v, want invalid_request (a slip)", sub, err)
		}
		if _, err := a.Revoke(ctx, []RevokeItem{{Subject: sub}}, actor); !errors.As(err, new(*Error)) {
			t.Errorf("Revoke([{subject %q}]) with no sessions = %v, want invalid_request", sub, err)
		}
	}
}
