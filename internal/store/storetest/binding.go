package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// testBinding is a binding to the key named n (its thumbprint and JWK are
// placeholders: the store keeps them as given).
func testBinding(kind, n string) store.Binding {
	return store.Binding{Kind: kind, Thumbprint: "jkt-" + n, Key: []byte(`{"kty":"OKP","crv":"Ed25519","x":"` + n + `"}`)}
}

func testCreateBound(t *testing.T, s store.Store) {
	ns := newSession("s1", "alice", t0)
	ns.Session.Binding = testBinding(store.BindingDPoP, "k1")
	ns.Actor = store.Actor{By: "app"}
	create(t, s, ns)
	want := ns.Session
	want.RefreshedAt, want.Binding.BoundAt = want.CreatedAt, want.CreatedAt
	for _, read := range []struct {
		name string
		get  func() (store.Session, error)
	}{
		{"Session", func() (store.Session, error) { ss, _, err := s.Session(context.Background(), "s1"); return ss, err }},
		{"SessionByRefresh", func() (store.Session, error) { return s.SessionByRefresh(context.Background(), hash("rt-s1")) }},
		{"ListSessions", func() (store.Session, error) {
			l, err := s.ListSessions(context.Background(), "alice", t0)
			if err != nil || len(l) != 1 {
				return store.Session{}, fmt.Errorf("%d sessions, %v", len(l), err)
			}
			return l[0], nil // before s2 and s3 exist
		}},
	} {
		got, err := read.get()
		if err != nil {
			t.Fatalf("%s(s1) = %v", read.name, err)
		}
		if d := diffSession(got, want); d != "" {
			t.Errorf("%s(s1) after a bound CreateSession: %s", read.name, d)
		}
	}
	if a, ok := findAudit(t, s, "session.bind", "s1"); !ok || a.Actor.By != "app" || a.Actor.Reason != "dpop" || !a.At.Equal(t0) {
		t.Errorf("audit session.bind s1 = %+v, %v; want by app, reason dpop, at %v", a, ok, t0)
	}
	thumbOnly := newSession("s3", "alice", t0)
	thumbOnly.Session.Binding = store.Binding{Kind: store.BindingDPoP, Thumbprint: "jkt-only"}
	create(t, s, thumbOnly)
	if got, _ := session(t, s, "s3"); got.Binding.Thumbprint != "jkt-only" || got.Binding.Key != nil {
		t.Errorf("Session(s3).Binding = %+v, want thumbprint jkt-only and no key", got.Binding)
	}
	create(t, s, newSession("s2", "alice", t0))
	if _, ok := findAudit(t, s, "session.bind", "s2"); ok {
		t.Errorf("audit has session.bind for s2, created unbound")
	}
	if got, _ := session(t, s, "s2"); got.Binding.Bound() {
		t.Errorf("Session(s2).Binding = %+v, want unbound", got.Binding)
	}
}

func testBindSession(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	now := t0.Add(time.Minute)
	a := store.Actor{By: "gate", Reason: "registration"}
	b := testBinding(store.BindingDBSC, "k1")
	got, err := s.BindSession(ctx, "s1", b, now, a)
	if err != nil {
		t.Fatalf("BindSession(s1) = %v", err)
	}
	want := newSession("s1", "alice", t0).Session
	want.RefreshedAt, want.Binding = want.CreatedAt, b
	want.Binding.BoundAt = now
	if d := diffSession(got, want); d != "" {
		t.Errorf("BindSession(s1): %s", d)
	}
	if stored, _ := session(t, s, "s1"); diffSession(stored, want) != "" {
		t.Errorf("Session(s1) after BindSession: %s", diffSession(stored, want))
	}
	if r, ok := findAudit(t, s, "session.bind", "s1"); !ok || r.Actor.By != "gate" || r.Actor.Reason != "dbsc: registration" || !r.At.Equal(now) {
		t.Errorf("audit session.bind s1 = %+v, %v; want by gate, reason %q", r, ok, "dbsc: registration")
	}
	records := len(auditLog(t, s))

	again, err := s.BindSession(ctx, "s1", b, now.Add(time.Minute), a)
	if err != nil || !again.Binding.BoundAt.Equal(now) {
		t.Errorf("BindSession(s1, same key) = %+v, %v; want unchanged, bound at %v", again.Binding, err, now)
	}
	if n := len(auditLog(t, s)); n != records {
		t.Errorf("BindSession(s1, same key) wrote %d audit records, want none", n-records)
	}
	_, err = s.BindSession(ctx, "s1", testBinding(store.BindingDBSC, "k2"), now, a)
	wantErr(t, "BindSession(s1, another key)", err, store.ErrBound)
	_, err = s.BindSession(ctx, "s1", testBinding(store.BindingDPoP, "k1"), now, a)
	wantErr(t, "BindSession(s1, same key, other kind)", err, store.ErrBound)

	create(t, s, newSession("s2", "alice", t0))
	if _, err := s.RevokeSession(ctx, "s2", now, now.Add(accessLife), a); err != nil {
		t.Fatal(err)
	}
	_, err = s.BindSession(ctx, "s2", b, now, a)
	wantErr(t, "BindSession(revoked)", err, store.ErrNotFound)
	create(t, s, newSession("s3", "alice", t0))
	_, err = s.BindSession(ctx, "s3", b, t0.Add(sessionLife), a)
	wantErr(t, "BindSession(expired at now)", err, store.ErrNotFound)
	_, err = s.BindSession(ctx, "nope", b, now, a)
	wantErr(t, "BindSession(unknown)", err, store.ErrNotFound)
	if got, _ := session(t, s, "s3"); got.Binding.Bound() {
		t.Errorf("Session(s3).Binding = %+v after a refused BindSession, want unbound", got.Binding)
	}
}

// testBindSessionConcurrent binds one session to many keys at once, from
// every node: exactly one key wins, every other call gets ErrBound, and
// one record is written.
func testBindSessionConcurrent(t *testing.T, nodes []store.Store) {
	create(t, nodes[0], newSession("s1", "alice", t0))
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = nodes[i%len(nodes)].BindSession(context.Background(), "s1",
				testBinding(store.BindingDPoP, fmt.Sprint("k", i)), t0.Add(time.Second), store.Actor{By: "gate"})
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("BindSession(k%d) and BindSession(k%d) both succeeded", won, i)
		case err == nil:
			won = i
		default:
			wantErr(t, fmt.Sprintf("BindSession(k%d)", i), err, store.ErrBound)
		}
	}
	got, _ := session(t, nodes[0], "s1")
	if won < 0 || got.Binding.Thumbprint != fmt.Sprint("jkt-k", won) {
		t.Fatalf("Session(s1).Binding = %+v, want the winner k%d", got.Binding, won)
	}
	binds := 0
	for _, r := range auditLog(t, nodes[0]) {
		if r.Action == "session.bind" {
			binds++
		}
	}
	if binds != 1 {
		t.Errorf("audit has %d session.bind records, want 1", binds)
	}
}

// testRevokeBindingFailed revokes a session for a failed proof: its entry
// and audit record name the cause; a cause on a subject item is refused.
func testRevokeBindingFailed(t *testing.T, s store.Store) {
	ctx := context.Background()
	ns := newSession("s1", "alice", t0)
	ns.Session.Binding = testBinding(store.BindingDBSC, "k1")
	create(t, s, ns)
	now := t0.Add(time.Minute)
	a := store.Actor{By: "gate", Reason: "refresh proof signed by another key", Entity: "system"}
	out, err := s.Revoke(ctx, []store.Revocation{{SessionID: "s1", Cause: store.CauseBindingFailed,
		Now: now, ExpiresAt: now.Add(accessLife), Actor: a}})
	if err != nil {
		t.Fatalf("Revoke(binding failed) = %v", err)
	}
	want := revocation.Entry{Seq: out[0].Seq, Kind: revocation.KindSession, Session: "s1", CreatedAt: now, ExpiresAt: now.Add(accessLife)}
	if out[0].Seq == 0 || !entryEqual(out[0].Entry, want) {
		t.Errorf("Revoke(binding failed) = %+v, want %+v", out[0].Entry, want)
	}
	es := detailedEntries(t, s)
	wantDetail := store.EntryDetail{Cause: store.CauseBindingFailed, By: "gate", Reason: a.Reason, Entity: "system", Subject: "alice"}
	if len(es) != 1 || !detailEqual(es[0].Detail, wantDetail) {
		t.Errorf("DetailedEntriesAfter(0) = %+v, want detail %+v", es, wantDetail)
	}
	if r, ok := findAudit(t, s, store.CauseBindingFailed, "s1"); !ok || r.Actor.By != "gate" {
		t.Errorf("audit %s s1 = %+v, %v; want by gate", store.CauseBindingFailed, r, ok)
	}
	if _, ok := findAudit(t, s, "session.revoke", "s1"); ok {
		t.Errorf("audit has session.revoke for s1; want only %s", store.CauseBindingFailed)
	}
	_, err = s.Revoke(ctx, []store.Revocation{{Subject: "alice", Cause: store.CauseBindingFailed,
		Now: now, ExpiresAt: now.Add(accessLife), Actor: a}})
	if err == nil {
		t.Errorf("Revoke(subject item with cause %s) = nil, want an error", store.CauseBindingFailed)
	}
}
