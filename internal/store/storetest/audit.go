package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

func testAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	// The changes write their own records, in their transactions.
	k := apiKey("k1", "backend", "secret-1", "admin")
	k.CreatedAt = t0
	if err := s.AddAPIKey(ctx, k, store.Actor{By: "ops", Reason: "ticket 1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddKey(ctx, signingKey("kid-1", t0.Add(time.Second), t0.Add(time.Second)), store.Actor{By: "ops"}); err != nil {
		t.Fatal(err)
	}
	create(t, s, newSession("s1", "alice", t0))
	if _, err := s.RevokeSession(ctx, "s1", t0.Add(2*time.Second), t0.Add(time.Hour), store.Actor{By: "client", Reason: "sign out"}); err != nil {
		t.Fatal(err)
	}
	in := []store.AuditRecord{
		{At: t0, Actor: store.Actor{By: "ops", Reason: "ticket 1"}, Action: "apikey.create", Target: "backend (k1)"},
		{At: t0.Add(time.Second), Actor: store.Actor{By: "ops"}, Action: "key.add", Target: "kid-1"},
		{At: t0.Add(2 * time.Second), Actor: store.Actor{By: "client", Reason: "sign out"}, Action: "session.revoke", Target: "s1"},
	}
	all := auditLog(t, s)
	if len(all) != len(in) {
		t.Fatalf("AuditLog(0) = %d records, want %d", len(all), len(in))
	}
	for i, got := range all {
		want := in[i]
		if got.Actor != want.Actor || got.Action != want.Action || got.Target != want.Target || !got.At.Equal(want.At) {
			t.Errorf("AuditLog()[%d] = %+v, want %+v", i, got, want)
		}
		if i > 0 && got.ID <= all[i-1].ID {
			t.Errorf("AuditLog()[%d].ID = %d, want above %d", i, got.ID, all[i-1].ID)
		}
	}
	tests := []struct {
		name  string
		after int64
		limit int
		want  []int64
	}{
		{"first page", 0, 2, []int64{all[0].ID, all[1].ID}},
		{"next page", all[1].ID, 2, []int64{all[2].ID}},
		{"past the end", all[2].ID, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := s.AuditLog(ctx, tt.after, tt.limit)
			var got []int64
			for _, r := range rs {
				got = append(got, r.ID)
			}
			if err != nil || len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Errorf("AuditLog(%d, %d) = %v, %v, want %v", tt.after, tt.limit, got, err, tt.want)
			}
		})
	}
}

// testCreateRecord: a session created with a Record writes that record,
// by its Actor, its target the session, in the creation's transaction; one
// created without writes none (and one bound, session.bind besides).
func testCreateRecord(t *testing.T, s store.Store) {
	signIn := newSession("s1", "tegata-console:k1", t0)
	signIn.Record, signIn.Actor = store.ActionConsoleSignIn, store.Actor{By: "api-key:ops", Reason: "console sign-in, key k1"}
	create(t, s, signIn)
	plain := newSession("s2", "alice", t0)
	plain.Actor = store.Actor{By: "app", Reason: "sign-in"}
	create(t, s, plain)
	bound := newSession("s3", "tegata-console:k1", t0)
	bound.Record, bound.Actor = store.ActionConsoleSignIn, store.Actor{By: "api-key:ops", Reason: "r"}
	bound.Session.Binding = testBinding(store.BindingDPoP, "k3")
	create(t, s, bound)
	var got []string
	for _, r := range auditLog(t, s) {
		got = append(got, fmt.Sprintf("%s %s by %s (%s) at %v", r.Action, r.Target, r.Actor.By, r.Actor.Reason, r.At.Equal(t0)))
	}
	want := []string{
		"console.sign_in s1 by api-key:ops (console sign-in, key k1) at true",
		"console.sign_in s3 by api-key:ops (r) at true",
		"session.bind s3 by api-key:ops (dpop: r) at true",
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit trail after three creations = %q, want %q", got, want)
	}
}
