package storetest

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// testSubjects pins prefix search in byte order, whatever the database's
// collation: upper case before lower case, non-ASCII after ASCII, the
// prefix's end exact, keyset pages, and live session counts.
func testSubjects(t *testing.T, s store.Store) {
	ctx := context.Background()
	subjects := []string{"alice", "alice.b", "alicf", "Alice", "al", "bob", "al\u00e9", "al\U0010FFFF", "al\U0010FFFFz", "am"}
	for i, sub := range subjects {
		create(t, s, newSession("s"+string(rune('a'+i)), sub, t0))
	}
	create(t, s, newSession("s-alice-2", "alice", t0))
	if _, err := s.RevokeSession(ctx, "s-alice-2", t0.Add(time.Second), t0.Add(time.Hour), store.Actor{By: "ops"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		prefix, after string
		limit         int
		want          []string
	}{
		{"prefix", "alic", "", 10, []string{"alice", "alice.b", "alicf"}},
		{"case sensitive", "Al", "", 10, []string{"Alice"}},
		{"byte order", "al", "", 10, []string{"al", "alice", "alice.b", "alicf", "al\u00e9", "al\U0010FFFF", "al\U0010FFFFz"}},
		{"last code point", "al\U0010FFFF", "", 10, []string{"al\U0010FFFF", "al\U0010FFFFz"}},
		{"page", "al", "", 2, []string{"al", "alice"}},
		{"next page", "al", "alice", 2, []string{"alice.b", "alicf"}},
		{"all", "", "alicf", 3, []string{"al\u00e9", "al\U0010FFFF", "al\U0010FFFFz"}},
		{"none", "zed", "", 10, nil},
		{"no limit", "al", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Subjects(ctx, store.SubjectQuery{Prefix: tt.prefix, After: tt.after, Limit: tt.limit, Now: t0.Add(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, g := range got {
				names = append(names, g.Subject)
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("Subjects(%q after %q, %d) = %q, want %q", tt.prefix, tt.after, tt.limit, names, tt.want)
			}
		})
	}
	got, err := s.Subjects(ctx, store.SubjectQuery{Prefix: "alice", Limit: 1, Now: t0.Add(time.Minute)})
	if err != nil || len(got) != 1 || got[0].LiveSessions != 1 {
		t.Errorf("Subjects(alice) = %+v, %v, want alice with 1 live session (one revoked)", got, err)
	}
	got, err = s.Subjects(ctx, store.SubjectQuery{Prefix: "alice", Limit: 1, Now: t0.Add(sessionLife)})
	if err != nil || len(got) != 1 || got[0].LiveSessions != 0 {
		t.Errorf("Subjects(alice) once expired = %+v, %v, want alice with 0 live sessions", got, err)
	}
}

// testSearchAudit pins each filter of SearchAudit, newest first, keyset
// pages, and AuditCounts.
func testSearchAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, sub := range []string{"alice", "bob", "alice"} {
		at := t0.Add(time.Duration(i) * time.Minute)
		if _, err := s.RevokeSubject(ctx, store.SubjectRevocation{Subject: sub, Now: at, ExpiresAt: at.Add(time.Hour),
			Actor: store.Actor{By: "api-key:" + []string{"ops", "ops", "sec"}[i]}}); err != nil {
			t.Fatal(err)
		}
	}
	create(t, s, newSession("s1", "carol", t0))
	if _, err := s.RevokeSession(ctx, "s1", t0.Add(3*time.Minute), t0.Add(time.Hour), store.Actor{By: "client"}); err != nil {
		t.Fatal(err)
	}
	all := auditLog(t, s)
	if len(all) != 4 {
		t.Fatalf("AuditLog = %d records, want 4", len(all))
	}
	id := func(i int) int64 { return all[i].ID }
	tests := []struct {
		name string
		q    store.AuditQuery
		want []int64
	}{
		{"all, newest first", store.AuditQuery{Limit: 10}, []int64{id(3), id(2), id(1), id(0)}},
		{"actor", store.AuditQuery{Actor: "api-key:ops", Limit: 10}, []int64{id(1), id(0)}},
		{"action", store.AuditQuery{Actions: []string{"session.revoke"}, Limit: 10}, []int64{id(3)}},
		{"actions", store.AuditQuery{Actions: []string{"session.revoke", "subject.revoke"}, Limit: 10}, []int64{id(3), id(2), id(1), id(0)}},
		{"target", store.AuditQuery{Target: "alice", Limit: 10}, []int64{id(2), id(0)}},
		{"time", store.AuditQuery{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute), Limit: 10}, []int64{id(2), id(1)}},
		{"page", store.AuditQuery{Limit: 2}, []int64{id(3), id(2)}},
		{"next page", store.AuditQuery{Before: id(2), Limit: 2}, []int64{id(1), id(0)}},
		{"every filter", store.AuditQuery{Actor: "api-key:sec", Actions: []string{"subject.revoke"}, Target: "alice", From: t0, Limit: 10}, []int64{id(2)}},
		{"no limit", store.AuditQuery{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := s.SearchAudit(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range rs {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("SearchAudit(%+v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
	counts, err := s.AuditCounts(ctx, t0.Add(time.Minute))
	if err != nil || counts["subject.revoke"] != 2 || counts["session.revoke"] != 1 || len(counts) != 2 {
		t.Errorf("AuditCounts(t0+1m) = %v, %v, want subject.revoke 2, session.revoke 1", counts, err)
	}
}

// testSessionSubjects pins SessionSubjects: every stored session among the
// ids (a revoked one included), duplicates once, unknown ids absent.
func testSessionSubjects(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	create(t, s, newSession("s2", "bob", t0))
	create(t, s, newSession("s3", "carol", t0))
	if _, err := s.RevokeSession(ctx, "s2", t0.Add(time.Second), t0.Add(time.Hour), store.Actor{By: "ops"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ids  []string
		want map[string]string
	}{
		{"some", []string{"s1", "s2", "alice", "s1"}, map[string]string{"s1": "alice", "s2": "bob"}},
		{"none stored", []string{"nope"}, map[string]string{}},
		{"no ids", nil, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.SessionSubjects(ctx, tt.ids)
			if err != nil || !maps.Equal(got, tt.want) {
				t.Errorf("SessionSubjects(%q) = %v, %v, want %v", tt.ids, got, err, tt.want)
			}
		})
	}
}
