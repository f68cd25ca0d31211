package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

func testCreateSession(t *testing.T, s store.Store) {
	ctx := context.Background()
	ns := newSession("s1", "alice", t0)
	if gen := create(t, s, ns); gen != 0 {
		t.Errorf("CreateSession() generation = %d, want 0", gen)
	}
	got, gen := session(t, s, "s1")
	want := ns.Session
	want.RefreshedAt = want.CreatedAt // RefreshedAt is CreatedAt until the first refresh
	if d := diffSession(got, want); d != "" {
		t.Errorf("Session(%q): %s", "s1", d)
	}
	if gen != 0 {
		t.Errorf("Session(%q) generation = %d, want 0", "s1", gen)
	}

	noClaims := newSession("s2", "alice", t0)
	noClaims.Session.Claims = nil
	create(t, s, noClaims)
	if got, _ := session(t, s, "s2"); got.Claims != nil {
		t.Errorf("Session(%q).Claims = %q, want nil", "s2", got.Claims)
	}

	tests := []struct {
		name string
		ns   store.NewSession
	}{
		{"same session ID", func() store.NewSession {
			ns := newSession("s1", "bob", t0)
			ns.Refresh.Hash = hash("other")
			return ns
		}()},
		{"same token hash", func() store.NewSession {
			ns := newSession("s3", "bob", t0)
			ns.Refresh.Hash = hash("rt-s1")
			return ns
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.CreateSession(ctx, tt.ns)
			wantErr(t, "CreateSession()", err, store.ErrConflict)
		})
	}
	// The failed CreateSession left nothing behind.
	_, _, err := s.Session(ctx, "s3")
	wantErr(t, `Session("s3")`, err, store.ErrNotFound)
	_, _, err = s.Session(ctx, "never")
	wantErr(t, `Session("never")`, err, store.ErrNotFound)
}

func testSessionByRefresh(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	create(t, s, newSession("s2", "alice", t0))
	rotate(t, s, rotation("rt-s1", "rt-s1-2", t0.Add(time.Hour)))

	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"first token of s2", "rt-s2", "s2"},
		{"rotated token", "rt-s1", "s1"},
		{"current token", "rt-s1-2", "s1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.SessionByRefresh(ctx, hash(tt.token))
			if err != nil || got.ID != tt.want {
				t.Errorf("SessionByRefresh(%q) = %q, %v, want %q", tt.token, got.ID, err, tt.want)
			}
		})
	}
	_, err := s.SessionByRefresh(ctx, hash("unknown"))
	wantErr(t, `SessionByRefresh("unknown")`, err, store.ErrNotFound)
}

func testListSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := t0.Add(2 * time.Hour)
	create(t, s, newSession("old", "alice", t0))
	create(t, s, newSession("new", "alice", t0.Add(time.Minute)))
	create(t, s, newSession("bob", "bob", t0.Add(2*time.Minute)))
	revoked := newSession("revoked", "alice", t0.Add(3*time.Minute))
	create(t, s, revoked)
	if _, err := s.RevokeSession(ctx, "revoked", now, now.Add(accessLife), store.Actor{By: "client"}); err != nil {
		t.Fatalf("RevokeSession() = %v", err)
	}
	expired := newSession("expired", "alice", t0.Add(4*time.Minute))
	expired.Session.ExpiresAt = now // expired at now: not listed
	create(t, s, expired)

	tests := []struct {
		name    string
		subject string
		want    []string
	}{
		{"live sessions newest first", "alice", []string{"new", "old"}},
		{"other subject", "bob", []string{"bob"}},
		{"unknown subject", "carol", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListSessions(ctx, tt.subject, now)
			if err != nil || !slices.Equal(ids(got), tt.want) {
				t.Errorf("ListSessions(%q) = %v, %v, want %v", tt.subject, ids(got), err, tt.want)
			}
		})
	}
}

func testDeleteExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	short := newSession("short", "alice", t0)
	short.Session.ExpiresAt = t0.Add(time.Hour)
	short.Refresh.ExpiresAt = t0.Add(time.Hour)
	create(t, s, short)
	long := newSession("long", "alice", t0)
	long.Refresh.ExpiresAt = t0.Add(time.Hour) // a token that dies before its session
	create(t, s, long)
	keep := rotation("rt-long", "rt-long-2", t0.Add(time.Minute))
	rotate(t, s, keep)

	// Gone: the short session, its token, and long's first token.
	n, err := s.DeleteExpired(ctx, t0.Add(2*time.Hour))
	if err != nil || n != 3 {
		t.Errorf("DeleteExpired() = %d, %v, want 3", n, err)
	}
	_, _, err = s.Session(ctx, "short")
	wantErr(t, `Session("short")`, err, store.ErrNotFound)
	_, err = s.SessionByRefresh(ctx, hash("rt-short"))
	wantErr(t, `SessionByRefresh("rt-short")`, err, store.ErrNotFound)
	_, err = s.SessionByRefresh(ctx, hash("rt-long"))
	wantErr(t, `SessionByRefresh("rt-long")`, err, store.ErrNotFound)
	if got, err := s.SessionByRefresh(ctx, hash("rt-long-2")); err != nil || got.ID != "long" {
		t.Errorf("SessionByRefresh(%q) = %q, %v, want %q", "rt-long-2", got.ID, err, "long")
	}
	if n, err := s.DeleteExpired(ctx, t0.Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("DeleteExpired() again = %d, %v, want 0", n, err)
	}
}

func testRevokeSession(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	now := t0.Add(time.Hour)
	actor := store.Actor{By: "client", Reason: "sign out"}

	e, err := s.RevokeSession(ctx, "s1", now, now.Add(accessLife), actor)
	if err != nil {
		t.Fatalf("RevokeSession() = %v", err)
	}
	want := revocation.Entry{Seq: 1, Kind: revocation.KindSession, Session: "s1", CreatedAt: now, ExpiresAt: now.Add(accessLife)}
	if !entryEqual(e, want) {
		t.Errorf("RevokeSession() = %+v, want %+v", e, want)
	}
	if got, _ := session(t, s, "s1"); !got.RevokedAt.Equal(now) {
		t.Errorf("Session(%q).RevokedAt = %v, want %v", "s1", got.RevokedAt, now)
	}
	if es, err := s.EntriesAfter(ctx, 0, 10); err != nil || len(es) != 1 || !entryEqual(es[0], want) {
		t.Errorf("EntriesAfter(0) = %+v, %v, want [%+v]", es, err, want)
	}
	r, ok := findAudit(t, s, "session.revoke", "s1")
	if !ok || r.Actor != actor || !r.At.Equal(now) {
		t.Errorf("audit of RevokeSession = %+v (found %v), want actor %+v at %v", r, ok, actor, now)
	}

	// Revoking again changes nothing.
	e, err = s.RevokeSession(ctx, "s1", now.Add(time.Minute), now.Add(time.Hour), actor)
	if err != nil || e != (revocation.Entry{}) {
		t.Errorf("RevokeSession() again = %+v, %v, want zero entry, nil", e, err)
	}
	if h := head(t, s); h != 1 {
		t.Errorf("Head() after second revoke = %d, want 1", h)
	}
	if got, _ := session(t, s, "s1"); !got.RevokedAt.Equal(now) {
		t.Errorf("Session(%q).RevokedAt after second revoke = %v, want %v", "s1", got.RevokedAt, now)
	}

	_, err = s.RevokeSession(ctx, "never", now, now, actor)
	wantErr(t, `RevokeSession("never")`, err, store.ErrNotFound)
}

func testRevokeSubject(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	now := t0.Add(time.Hour)
	actor := store.Actor{By: "admin-key", Reason: "role change"}
	e, err := s.RevokeSubject(ctx, store.SubjectRevocation{
		Subject: "alice", Now: now, ExpiresAt: now.Add(accessLife), Actor: actor,
	})
	if err != nil {
		t.Fatalf("RevokeSubject() = %v", err)
	}
	want := revocation.Entry{Seq: 1, Kind: revocation.KindSubject, Subject: "alice", Generation: 1,
		CreatedAt: now, ExpiresAt: now.Add(accessLife)}
	if !entryEqual(e, want) {
		t.Errorf("RevokeSubject() = %+v, want %+v", e, want)
	}
	if es, err := s.EntriesAfter(ctx, 0, 10); err != nil || len(es) != 1 || !entryEqual(es[0], want) {
		t.Errorf("EntriesAfter(0) = %+v, %v, want [%+v]", es, err, want)
	}
	// Without EndSessions the session lives on: only access tokens are cut off.
	if got, err := s.ListSessions(ctx, "alice", now); err != nil || len(got) != 1 {
		t.Errorf("ListSessions(%q) = %v, %v, want [s1]", "alice", ids(got), err)
	}
	if res := rotate(t, s, rotation("rt-s1", "rt-s1-2", now)); res.Outcome != store.Rotated {
		t.Errorf("RotateRefresh() after RevokeSubject = %v (%s), want Rotated", res.Outcome, res.Reason)
	}
	r, ok := findAudit(t, s, "subject.revoke", "alice")
	if !ok || r.Actor != actor || !r.At.Equal(now) {
		t.Errorf("audit of RevokeSubject = %+v (found %v), want actor %+v at %v", r, ok, actor, now)
	}
	// A subject never seen before is created.
	if e := revokeSubject(t, s, "nobody", now); e.Generation != 1 || e.Seq != 2 {
		t.Errorf("RevokeSubject(%q) = %+v, want generation 1, seq 2", "nobody", e)
	}
}

func testRevokeSubjectEndSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("a1", "alice", t0))
	create(t, s, newSession("a2", "alice", t0))
	create(t, s, newSession("b1", "bob", t0))
	now := t0.Add(time.Hour)
	if _, err := s.RevokeSubject(ctx, store.SubjectRevocation{
		Subject: "alice", EndSessions: true, Now: now, ExpiresAt: now.Add(accessLife),
		Actor: store.Actor{By: "admin-key", Reason: "sign out everywhere"},
	}); err != nil {
		t.Fatalf("RevokeSubject() = %v", err)
	}
	for _, id := range []string{"a1", "a2"} {
		if got, _ := session(t, s, id); !got.RevokedAt.Equal(now) {
			t.Errorf("Session(%q).RevokedAt = %v, want %v", id, got.RevokedAt, now)
		}
		res := rotate(t, s, rotation("rt-"+id, "rt-"+id+"-2", now.Add(time.Second)))
		if res.Outcome != store.Refused || res.Reason != "session revoked" {
			t.Errorf("RotateRefresh(%q) = %v (%q), want Refused (session revoked)", "rt-"+id, res.Outcome, res.Reason)
		}
	}
	if got, err := s.ListSessions(ctx, "alice", now); err != nil || len(got) != 0 {
		t.Errorf("ListSessions(%q) = %v, %v, want none", "alice", ids(got), err)
	}
	if got, _ := session(t, s, "b1"); !got.RevokedAt.IsZero() {
		t.Errorf("Session(%q).RevokedAt = %v, want zero (other subject)", "b1", got.RevokedAt)
	}
}

func testRevokeSubjectClaims(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("live", "alice", t0))
	create(t, s, newSession("ended", "alice", t0))
	create(t, s, newSession("bob", "bob", t0))
	now := t0.Add(time.Hour)
	if _, err := s.RevokeSession(ctx, "ended", now, now.Add(accessLife), store.Actor{By: "client"}); err != nil {
		t.Fatalf("RevokeSession() = %v", err)
	}
	admin := json.RawMessage(`{"role":"admin"}`)
	if _, err := s.RevokeSubject(ctx, store.SubjectRevocation{
		Subject: "alice", Claims: admin, Now: now, ExpiresAt: now.Add(accessLife),
		Actor: store.Actor{By: "admin-key", Reason: "promotion"},
	}); err != nil {
		t.Fatalf("RevokeSubject() = %v", err)
	}
	tests := []struct {
		name string
		id   string
		want string
	}{
		{"live session gets the new claims", "live", `{"role":"admin"}`},
		{"revoked session keeps its claims", "ended", `{"role":"user"}`},
		{"other subject keeps its claims", "bob", `{"role":"user"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := session(t, s, tt.id); string(got.Claims) != tt.want {
				t.Errorf("Session(%q).Claims = %s, want %s", tt.id, got.Claims, tt.want)
			}
		})
	}
	// The next refresh carries them, with the new generation.
	res := rotate(t, s, rotation("rt-live", "rt-live-2", now.Add(time.Second)))
	if res.Outcome != store.Rotated || string(res.Session.Claims) != string(admin) || res.Generation != 1 {
		t.Errorf("RotateRefresh() = %v, claims %s, generation %d, want Rotated, %s, 1",
			res.Outcome, res.Session.Claims, res.Generation, admin)
	}
}

func testGeneration(t *testing.T, s store.Store) {
	create(t, s, newSession("s1", "alice", t0))
	for want := int64(1); want <= 3; want++ {
		if e := revokeSubject(t, s, "alice", t0.Add(time.Duration(want)*time.Minute)); e.Generation != want {
			t.Errorf("RevokeSubject() generation = %d, want %d", e.Generation, want)
		}
	}
	if gen := create(t, s, newSession("s2", "alice", t0.Add(time.Hour))); gen != 3 {
		t.Errorf("CreateSession() generation = %d, want 3", gen)
	}
	if gen := create(t, s, newSession("s3", "bob", t0.Add(time.Hour))); gen != 0 {
		t.Errorf("CreateSession(bob) generation = %d, want 0", gen)
	}
	for _, id := range []string{"s1", "s2"} {
		if _, gen := session(t, s, id); gen != 3 {
			t.Errorf("Session(%q) generation = %d, want 3", id, gen)
		}
	}
	if res := rotate(t, s, rotation("rt-s1", "rt-s1-2", t0.Add(time.Hour))); res.Generation != 3 {
		t.Errorf("RotateRefresh() generation = %d, want 3", res.Generation)
	}
}

// testCreateDuringCutoff races session creation against "sign out
// everywhere": every session must end up either revoked by the cutoff or
// created after it (carrying the new generation). A session that is live
// with the old generation escaped the sign-out.
func testCreateDuringCutoff(t *testing.T, nodes []store.Store) {
	ctx := context.Background()
	s := nodes[0]
	for round := range 5 {
		subject := fmt.Sprint("racer-", round)
		const n = 12
		gens := make([]int64, n)
		errs := make([]error, n+1)
		var cutoff revocation.Entry
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var c store.Created
				c, errs[i] = nodes[i%len(nodes)].CreateSession(ctx, newSession(fmt.Sprintf("race-%d-%d", round, i), subject, t0))
				gens[i] = c.Generation
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cutoff, errs[n] = nodes[(round+1)%len(nodes)].RevokeSubject(ctx, store.SubjectRevocation{Subject: subject, EndSessions: true,
				Now: t0, ExpiresAt: t0.Add(accessLife), Actor: store.Actor{By: "test"}})
		}()
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		for i := range n {
			ss, gen, err := s.Session(ctx, fmt.Sprintf("race-%d-%d", round, i))
			if err != nil {
				t.Fatal(err)
			}
			if ss.RevokedAt.IsZero() && gens[i] < cutoff.Generation {
				t.Fatalf("round %d: session %d is live with generation %d < cutoff %d (store says %d): it escaped sign-out everywhere",
					round, i, gens[i], cutoff.Generation, gen)
			}
		}
	}
}
