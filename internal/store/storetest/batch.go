package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// WriteStats is the optional capability of a store that commits concurrent
// writes together (group commit): how many writes it committed, in how many
// transactions. The suite uses it to make sure its concurrent tests really
// formed batches.
type WriteStats interface {
	WriteStats() (writes, batches int64)
}

// testRevokeBulk revokes sessions and subjects in one call: every item in
// order, one audit record each, consecutive seqs.
func testRevokeBulk(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, id := range []string{"s1", "s2", "s3"} {
		create(t, s, newSession(id, "alice", t0))
	}
	create(t, s, newSession("b1", "bob", t0))
	now := t0.Add(time.Minute)
	exp := now.Add(accessLife)
	by := store.Actor{By: "admin-key", Reason: "incident"}
	items := []store.Revocation{
		{SessionID: "s1", Now: now, ExpiresAt: exp, Actor: by},
		{Subject: "alice", EndSessions: true, Now: now, ExpiresAt: exp, Actor: by},
		{SessionID: "s2", Now: now, ExpiresAt: exp, Actor: by}, // ended by the item before
		{Subject: "bob", Claims: json.RawMessage(`{"role":"viewer"}`), Now: now, ExpiresAt: exp, Actor: by},
		{Subject: "alice", Now: now, ExpiresAt: exp, Actor: by},
		{SessionID: "b1", Now: now, ExpiresAt: exp, Actor: by},
		{Subject: "nobody", EndSessions: true, Now: now, ExpiresAt: exp, Actor: by},
	}
	got, err := s.Revoke(ctx, items)
	if err != nil {
		t.Fatalf("Revoke() = %v", err)
	}
	// Sessions: s1 ended by item 0; alice's s2 and s3 by item 1; then
	// nothing left of alice's; bob's b1 (live when his claims change).
	want := []store.Revoked{
		{Entry: revocation.Entry{Seq: 1, Kind: revocation.KindSession, Session: "s1", CreatedAt: now, ExpiresAt: exp}, Sessions: 1},
		{Entry: revocation.Entry{Seq: 2, Kind: revocation.KindSubject, Subject: "alice", Generation: 1, CreatedAt: now, ExpiresAt: exp}, Sessions: 2},
		{},
		{Entry: revocation.Entry{Seq: 3, Kind: revocation.KindSubject, Subject: "bob", Generation: 1, CreatedAt: now, ExpiresAt: exp}, Sessions: 1},
		{Entry: revocation.Entry{Seq: 4, Kind: revocation.KindSubject, Subject: "alice", Generation: 2, CreatedAt: now, ExpiresAt: exp}, Sessions: 0},
		{Entry: revocation.Entry{Seq: 5, Kind: revocation.KindSession, Session: "b1", CreatedAt: now, ExpiresAt: exp}, Sessions: 1},
		{Entry: revocation.Entry{Seq: 6, Kind: revocation.KindSubject, Subject: "nobody", Generation: 1, CreatedAt: now, ExpiresAt: exp}, Sessions: 0},
	}
	if len(got) != len(want) {
		t.Fatalf("Revoke() = %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if !entryEqual(got[i].Entry, want[i].Entry) || got[i].Sessions != want[i].Sessions {
			t.Errorf("Revoke() outcome %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	logged, err := s.EntriesAfter(ctx, 0, 100)
	if err != nil || !slices.Equal(seqs(logged), []int64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("EntriesAfter(0) = %v, %v, want seqs 1..6", seqs(logged), err)
	}
	for _, id := range []string{"s1", "s2", "s3", "b1"} {
		if ss, _ := session(t, s, id); !ss.RevokedAt.Equal(now) {
			t.Errorf("Session(%q).RevokedAt = %v, want %v", id, ss.RevokedAt, now)
		}
	}
	if ss, gen := session(t, s, "b1"); string(ss.Claims) != `{"role":"viewer"}` || gen != 1 {
		t.Errorf("Session(%q) = claims %s, generation %d, want the new claims, 1", "b1", ss.Claims, gen)
	}
	var actions []string
	for _, r := range auditLog(t, s) {
		if r.Actor != by || !r.At.Equal(now) {
			t.Errorf("audit record %+v, want actor %+v at %v", r, by, now)
		}
		actions = append(actions, r.Action+" "+r.Target)
	}
	wantActions := []string{"session.revoke s1", "subject.revoke alice", "subject.revoke bob", "subject.revoke alice", "session.revoke b1", "subject.revoke nobody"}
	if !slices.Equal(actions, wantActions) {
		t.Errorf("audit trail = %q, want %q", actions, wantActions)
	}
}

// testRevokeBulkAllOrNothing: an item naming an unknown session fails the
// whole call, which writes nothing, and the error names the item.
func testRevokeBulkAllOrNothing(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	now := t0.Add(time.Minute)
	items := []store.Revocation{
		{Subject: "carol", EndSessions: true, Now: now, ExpiresAt: now.Add(accessLife)},
		{SessionID: "s1", Now: now, ExpiresAt: now.Add(accessLife)},
		{SessionID: "never", Now: now, ExpiresAt: now.Add(accessLife)},
	}
	_, err := s.Revoke(ctx, items)
	var ie *store.ItemError
	if !errors.As(err, &ie) || ie.Index != 2 || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Revoke() = %v, want an *ItemError for item 2 wrapping ErrNotFound", err)
	}
	if h := head(t, s); h != 0 {
		t.Errorf("Head() after a failed Revoke = %d, want 0", h)
	}
	if ss, gen := session(t, s, "s1"); !ss.RevokedAt.IsZero() || gen != 0 {
		t.Errorf("Session(%q) after a failed Revoke: revoked at %v, generation %d, want live, 0", "s1", ss.RevokedAt, gen)
	}
	if rs := auditLog(t, s); len(rs) != 0 {
		t.Errorf("audit after a failed Revoke = %+v, want nothing", rs)
	}
	if e := revokeSubject(t, s, "carol", now); e.Generation != 1 {
		t.Errorf("RevokeSubject(carol) after a failed Revoke: generation %d, want 1 (the failed cutoff left nothing)", e.Generation)
	}
}

// testConcurrentFailuresIsolated runs many writes at once, a few of which
// fail for themselves (an unknown session in a bulk revocation, a session ID
// that exists): those callers get their error, nothing of theirs is
// written, and every other write commits as if alone.
func testConcurrentFailuresIsolated(t *testing.T, s store.Store) {
	ctx := context.Background()
	warm(t, s, 20)
	create(t, s, newSession("taken", "alice", t0))
	const n = 60
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			switch {
			case i%20 == 7: // a bulk revocation with a bad item
				_, errs[i] = s.Revoke(ctx, []store.Revocation{
					{Subject: fmt.Sprint("bad-", i), Now: t0, ExpiresAt: t0.Add(accessLife)},
					{SessionID: fmt.Sprint("missing-", i), Now: t0, ExpiresAt: t0.Add(accessLife)},
				})
			case i%20 == 13: // a creation that conflicts
				ns := newSession("taken", "alice", t0)
				ns.Refresh.Hash = hash(fmt.Sprint("other-", i))
				_, errs[i] = s.CreateSession(ctx, ns)
			case i%2 == 0:
				_, errs[i] = s.RevokeSubject(ctx, store.SubjectRevocation{Subject: fmt.Sprint("good-", i),
					Now: t0, ExpiresAt: t0.Add(accessLife)})
			default:
				_, errs[i] = s.CreateSession(ctx, newSession(fmt.Sprint("new-", i), "alice", t0))
			}
		})
	}
	close(start)
	wg.Wait()
	var good int
	for i, err := range errs {
		switch {
		case i%20 == 7:
			var ie *store.ItemError
			if !errors.As(err, &ie) || ie.Index != 1 || !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Revoke() #%d = %v, want an *ItemError for item 1 wrapping ErrNotFound", i, err)
			}
		case i%20 == 13:
			wantErr(t, fmt.Sprintf("CreateSession(taken) #%d", i), err, store.ErrConflict)
		case err != nil:
			t.Errorf("write #%d = %v, want success (others' failures must not fail it)", i, err)
		default:
			good++
			if i%2 == 1 {
				session(t, s, fmt.Sprint("new-", i))
			}
		}
	}
	es, err := s.EntriesAfter(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if len(e.Subject) > 4 && e.Subject[:4] == "bad-" {
			t.Errorf("entry %+v of a failed bulk revocation is in the log", e)
		}
	}
	if len(es) != n/2 {
		t.Errorf("log has %d entries, want %d (one per successful subject revocation)", len(es), n/2)
	}
	if ws, ok := s.(WriteStats); ok {
		writes, batches := ws.WriteStats()
		t.Logf("%d of %d writes succeeded; the store committed %d writes in %d transactions", good, n, writes, batches)
	}
}

// testBatchesForm makes sure concurrent writes really share transactions
// when the store commits in batches, so that the concurrency tests above
// test batches at all.
func testBatchesForm(t *testing.T, s store.Store) {
	ws, ok := s.(WriteStats)
	if !ok {
		t.Skip("the store does not report WriteStats")
	}
	ctx := context.Background()
	warm(t, s, 20)
	w0, b0 := ws.WriteStats()
	for round := 0; ; round++ {
		const n = 100
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				if _, err := s.RevokeSubject(ctx, store.SubjectRevocation{Subject: fmt.Sprintf("u%d-%d", round, i),
					Now: t0, ExpiresAt: t0.Add(accessLife)}); err != nil {
					t.Errorf("RevokeSubject() = %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		w, b := ws.WriteStats()
		if w-w0 != int64(n*(round+1)) {
			t.Fatalf("WriteStats() writes = %d, want %d", w-w0, n*(round+1))
		}
		if b-b0 < w-w0 {
			return
		}
		if round == 20 {
			t.Fatalf("%d concurrent writes, 21 times, never shared a transaction", n)
		}
	}
}
