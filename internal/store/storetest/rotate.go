package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

func testRotateRotated(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	now := t0.Add(time.Hour)
	r := rotation("rt-s1", "rt-s1-2", now)
	r.Next.SessionID = "ignored"
	res := rotate(t, s, r)
	if res.Outcome != store.Rotated || res.Session.ID != "s1" || res.Generation != 0 ||
		res.Sealed != nil || res.Entry != (revocation.Entry{}) || res.Reason != "" {
		t.Errorf("RotateRefresh() = %+v, want Rotated of s1, generation 0, nothing else", res)
	}
	if !res.Session.RefreshedAt.Equal(now) {
		t.Errorf("RotateRefresh().Session.RefreshedAt = %v, want %v", res.Session.RefreshedAt, now)
	}
	if got, _ := session(t, s, "s1"); !got.RefreshedAt.Equal(now) {
		t.Errorf("Session(%q).RefreshedAt = %v, want %v", "s1", got.RefreshedAt, now)
	}
	if got, err := s.SessionByRefresh(ctx, hash("rt-s1-2")); err != nil || got.ID != "s1" {
		t.Errorf("SessionByRefresh(%q) = %q, %v, want %q (Next.SessionID is ignored)", "rt-s1-2", got.ID, err, "s1")
	}
	// The successor is current: it rotates in turn.
	if res := rotate(t, s, rotation("rt-s1-2", "rt-s1-3", now.Add(time.Hour))); res.Outcome != store.Rotated {
		t.Errorf("RotateRefresh(successor) = %v (%s), want Rotated", res.Outcome, res.Reason)
	}
	if h := head(t, s); h != 0 {
		t.Errorf("Head() after rotations = %d, want 0", h)
	}
}

// testRotateCheck: a Check error aborts the rotation; the presented token
// stays current and nothing is written.
func testRotateCheck(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	now := t0.Add(time.Hour)
	refuse := errors.New("cannot mint")
	var saw store.Session
	r := rotation("rt-s1", "rt-s1-2", now)
	r.Check = func(ss store.Session, gen int64) (time.Time, error) { saw = ss; return time.Time{}, refuse }
	if _, err := s.RotateRefresh(ctx, r); !errors.Is(err, refuse) {
		t.Fatalf("RotateRefresh(Check fails) = %v, want %v", err, refuse)
	}
	if saw.ID != "s1" {
		t.Errorf("Check saw session %q, want s1", saw.ID)
	}
	if _, err := s.SessionByRefresh(ctx, hash("rt-s1-2")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SessionByRefresh(successor of an aborted rotation) = %v, want %v", err, store.ErrNotFound)
	}
	if got, _ := session(t, s, "s1"); !got.RefreshedAt.Equal(t0) {
		t.Errorf("Session(s1).RefreshedAt = %v after an aborted rotation, want %v", got.RefreshedAt, t0)
	}
	r.Check = nil
	if res := rotate(t, s, r); res.Outcome != store.Rotated {
		t.Errorf("RotateRefresh(after an aborted rotation) = %v (%s), want Rotated: the token is still current", res.Outcome, res.Reason)
	}
}

func testRotateGraceWindow(t *testing.T, s store.Store) {
	ctx := context.Background()
	tests := []struct {
		name          string
		after         time.Duration // since the first rotation, with a one minute grace
		successorUsed bool
		noGrace       bool // Grace 0 on the replay
		want          store.Outcome
	}{
		{"replay within grace", time.Second, false, false, store.Replayed},
		{"replay at the end of grace", time.Minute, false, false, store.Replayed},
		{"replay after grace", time.Minute + time.Millisecond, false, false, store.Reused},
		{"replay after the successor was used", time.Second, true, false, store.Reused},
		{"no grace: replay at the same instant", 0, false, true, store.Reused},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("s%d", i)
			first, second := "rt-"+id, "rt-"+id+"-2"
			create(t, s, newSession(id, "alice", t0))
			rotatedAt := t0.Add(time.Hour)
			rotate(t, s, rotation(first, second, rotatedAt))
			if tt.successorUsed {
				rotate(t, s, rotation(second, id+"-3", rotatedAt.Add(time.Millisecond)))
			}
			before := head(t, s)

			replay := rotation(first, id+"-other", rotatedAt.Add(tt.after))
			if tt.noGrace {
				replay.Grace = 0
			}
			res := rotate(t, s, replay)
			if res.Outcome != tt.want || res.Session.ID != id {
				t.Fatalf("RotateRefresh(%q) = %v of %q (%s), want %v of %q", first, res.Outcome, res.Session.ID, res.Reason, tt.want, id)
			}
			if tt.want != store.Replayed {
				return
			}
			if want := "sealed " + second; string(res.Sealed) != want {
				t.Errorf("RotateRefresh().Sealed = %q, want %q", res.Sealed, want)
			}
			// A replay changes nothing: the other successor is not stored,
			// no entry is written, and the first successor is still current.
			_, err := s.SessionByRefresh(ctx, hash(id+"-other"))
			wantErr(t, "SessionByRefresh(replayed Next)", err, store.ErrNotFound)
			if h := head(t, s); h != before {
				t.Errorf("Head() after replay = %d, want %d", h, before)
			}
			if res := rotate(t, s, rotation(second, id+"-3", rotatedAt.Add(2*time.Minute))); res.Outcome != store.Rotated {
				t.Errorf("RotateRefresh(%q) after replay = %v (%s), want Rotated", second, res.Outcome, res.Reason)
			}
		})
	}
}

func testRotateReused(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	rotate(t, s, rotation("rt-s1", "rt-s1-2", t0.Add(time.Hour)))
	now := t0.Add(2 * time.Hour)
	r := rotation("rt-s1", "rt-s1-x", now)

	res := rotate(t, s, r)
	want := revocation.Entry{Seq: 1, Kind: revocation.KindSession, Session: "s1", CreatedAt: now, ExpiresAt: r.RevokedUntil}
	if res.Outcome != store.Reused || !entryEqual(res.Entry, want) {
		t.Fatalf("RotateRefresh(stolen) = %v, entry %+v, want Reused, %+v", res.Outcome, res.Entry, want)
	}
	if !res.Session.RevokedAt.Equal(now) {
		t.Errorf("RotateRefresh(stolen).Session.RevokedAt = %v, want %v", res.Session.RevokedAt, now)
	}
	if got, _ := session(t, s, "s1"); !got.RevokedAt.Equal(now) {
		t.Errorf("Session(%q).RevokedAt = %v, want %v", "s1", got.RevokedAt, now)
	}
	if es, err := s.EntriesAfter(ctx, 0, 10); err != nil || len(es) != 1 || !entryEqual(es[0], want) {
		t.Errorf("EntriesAfter(0) = %+v, %v, want [%+v]", es, err, want)
	}
	wantActor := store.Actor{By: "system", Reason: "refresh token reuse"}
	if a, ok := findAudit(t, s, "session.reuse", "s1"); !ok || a.Actor != wantActor || !a.At.Equal(now) {
		t.Errorf("audit of reuse = %+v (found %v), want actor %+v at %v", a, ok, wantActor, now)
	}
	// Neither the thief's nor the victim's token works any more, and no
	// further entry is written.
	for _, tok := range []string{"rt-s1", "rt-s1-2"} {
		res := rotate(t, s, rotation(tok, tok+"-next", now.Add(time.Second)))
		if res.Outcome != store.Refused || res.Reason != "session revoked" {
			t.Errorf("RotateRefresh(%q) after reuse = %v (%q), want Refused (session revoked)", tok, res.Outcome, res.Reason)
		}
	}
	if h := head(t, s); h != 1 {
		t.Errorf("Head() = %d, want 1", h)
	}
}

func testRotateRefused(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := t0.Add(2 * time.Hour)
	tests := []struct {
		name        string
		setup       func(t *testing.T) // creates session "<name>" unless the token is unknown
		presented   string
		wantSession string
		wantReason  string
	}{
		{"unknown token", func(*testing.T) {}, "never-issued", "", "unknown token"},
		{"expired token", func(t *testing.T) {
			ns := newSession("expired-token", "alice", t0)
			ns.Refresh.ExpiresAt = now
			create(t, s, ns)
		}, "rt-expired-token", "expired-token", "expired"},
		{"expired session", func(t *testing.T) {
			ns := newSession("expired-session", "alice", t0)
			ns.Session.ExpiresAt = now
			create(t, s, ns)
		}, "rt-expired-session", "expired-session", "session expired"},
		{"revoked session", func(t *testing.T) {
			create(t, s, newSession("revoked", "alice", t0))
			if _, err := s.RevokeSession(ctx, "revoked", t0.Add(time.Hour), now, store.Actor{By: "client"}); err != nil {
				t.Fatalf("RevokeSession() = %v", err)
			}
		}, "rt-revoked", "revoked", "session revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup(t)
			before := head(t, s)
			next := tt.presented + "-next"
			res := rotate(t, s, rotation(tt.presented, next, now))
			if res.Outcome != store.Refused || res.Reason != tt.wantReason || res.Session.ID != tt.wantSession {
				t.Errorf("RotateRefresh(%q) = %v of %q (%q), want Refused of %q (%q)",
					tt.presented, res.Outcome, res.Session.ID, res.Reason, tt.wantSession, tt.wantReason)
			}
			_, err := s.SessionByRefresh(ctx, hash(next))
			wantErr(t, "SessionByRefresh(refused Next)", err, store.ErrNotFound)
			if h := head(t, s); h != before {
				t.Errorf("Head() after refusal = %d, want %d", h, before)
			}
		})
	}
}

// testRotateConcurrent presents one token from many goroutines at once, as
// tabs refreshing together do: exactly one rotates, every other one gets the
// same successor back, and no second successor is ever stored. Several
// rounds, after warming the store's connections, make real overlap likely.
func testRotateConcurrent(t *testing.T, nodes []store.Store) {
	s := nodes[0]
	for _, n := range nodes {
		warm(t, n, 20)
	}
	for round := range 5 {
		id := fmt.Sprintf("s%d", round)
		create(t, s, newSession(id, "alice", t0))
		rotateConcurrently(t, nodes, id, 20)
	}
	if h := head(t, s); h != 0 {
		t.Errorf("Head() = %d, want 0 (no reuse detected)", h)
	}
}

// warm makes n concurrent reads, so that a pooled store has connections
// open before a burst and the burst's transactions really overlap.
func warm(t *testing.T, s store.Store, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := s.EntriesAfter(context.Background(), 0, 1); err != nil {
				t.Errorf("EntriesAfter() = %v", err)
			}
		})
	}
	wg.Wait()
}

// rotateConcurrently presents the same refresh token n times at once,
// spread over the nodes.
func rotateConcurrently(t *testing.T, nodes []store.Store, id string, n int) {
	t.Helper()
	s := nodes[0]
	ctx := context.Background()
	now := t0.Add(time.Hour)
	next := func(i int) string { return fmt.Sprintf("%s-next-%d", id, i) }
	results := make([]store.RotateResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = nodes[i%len(nodes)].RotateRefresh(ctx, rotation("rt-"+id, next(i), now))
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("RotateRefresh() #%d = %v", i, errs[i])
		}
		switch res.Outcome {
		case store.Rotated:
			if winner >= 0 {
				t.Fatalf("RotateRefresh(%q) rotated twice: #%d and #%d", "rt-"+id, winner, i)
			}
			winner = i
		case store.Replayed:
		default:
			t.Errorf("RotateRefresh() #%d = %v (%s), want Rotated or Replayed", i, res.Outcome, res.Reason)
		}
	}
	if winner < 0 {
		t.Fatalf("RotateRefresh(%q) never rotated", "rt-"+id)
	}
	wantSealed := "sealed " + next(winner)
	for i, res := range results {
		if res.Outcome == store.Replayed && string(res.Sealed) != wantSealed {
			t.Errorf("RotateRefresh() #%d Sealed = %q, want %q", i, res.Sealed, wantSealed)
		}
		_, err := s.SessionByRefresh(ctx, hash(next(i)))
		if i == winner && err != nil {
			t.Errorf("SessionByRefresh(winner) = %v", err)
		}
		if i != winner && err == nil {
			t.Errorf("SessionByRefresh(%q) found a second successor", next(i))
		}
	}
}
