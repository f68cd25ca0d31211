package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

func signingKey(id string, created, signFrom time.Time) store.SigningKey {
	return store.SigningKey{
		ID:         id,
		Algorithm:  "EdDSA",
		Public:     []byte("public " + id),
		PrivateEnc: []byte("sealed private " + id),
		CreatedAt:  created,
		SignFrom:   signFrom,
	}
}

func keyIDs(ks []store.SigningKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.ID
	}
	return out
}

func testKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	actor := store.Actor{By: "admin-key", Reason: "scheduled rotation"}
	k1 := signingKey("k1", t0, t0)
	k2 := signingKey("k2", t0.Add(time.Hour), t0.Add(2*time.Hour))
	for _, k := range []store.SigningKey{k1, k2} {
		if err := s.AddKey(ctx, k, actor); err != nil {
			t.Fatalf("AddKey(%q) = %v", k.ID, err)
		}
	}
	// k2 retires k1 from the moment k2 starts signing.
	k1.RetiredAt = k2.SignFrom
	ks, err := s.ListKeys(ctx)
	if err != nil || !slices.Equal(keyIDs(ks), []string{"k1", "k2"}) {
		t.Fatalf("ListKeys() = %v, %v, want [k1 k2]", keyIDs(ks), err)
	}
	for i, want := range []store.SigningKey{k1, k2} {
		got := ks[i]
		if got.Algorithm != want.Algorithm || !bytes.Equal(got.Public, want.Public) ||
			!bytes.Equal(got.PrivateEnc, want.PrivateEnc) || !got.CreatedAt.Equal(want.CreatedAt) ||
			!got.SignFrom.Equal(want.SignFrom) || !got.RetiredAt.Equal(want.RetiredAt) {
			t.Errorf("ListKeys()[%d] = %+v, want %+v", i, got, want)
		}
	}
	if r, ok := findAudit(t, s, "key.add", "k2"); !ok || r.Actor != actor {
		t.Errorf("audit of AddKey = %+v (found %v), want actor %+v", r, ok, actor)
	}

	// A duplicate is refused and retires nothing.
	err = s.AddKey(ctx, signingKey("k2", t0.Add(3*time.Hour), t0.Add(3*time.Hour)), actor)
	wantErr(t, `AddKey("k2") again`, err, store.ErrConflict)
	if ks, _ := s.ListKeys(ctx); len(ks) != 2 || !ks[1].RetiredAt.IsZero() {
		t.Errorf("ListKeys() after failed AddKey = %+v, want k2 still signing", ks)
	}

	tests := []struct {
		name   string
		before time.Time
		want   int64
		left   []string
	}{
		{"retired exactly then", k1.RetiredAt, 0, []string{"k1", "k2"}},
		{"retired before", k1.RetiredAt.Add(time.Microsecond), 1, []string{"k2"}},
		{"never deletes a signing key", t0.Add(100 * time.Hour), 0, []string{"k2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := s.DeleteKeysRetiredBefore(ctx, tt.before)
			if err != nil || n != tt.want {
				t.Errorf("DeleteKeysRetiredBefore(%v) = %d, %v, want %d", tt.before, n, err, tt.want)
			}
			if ks, _ := s.ListKeys(ctx); !slices.Equal(keyIDs(ks), tt.left) {
				t.Errorf("ListKeys() = %v, want %v", keyIDs(ks), tt.left)
			}
		})
	}
}

// testKeyPurposes: a key of one purpose never retires a key of the other.
func testKeyPurposes(t *testing.T, s store.Store) {
	ctx := context.Background()
	actor := store.Actor{By: "system"}
	access := signingKey("access", t0, t0)
	events := signingKey("events", t0.Add(time.Hour), t0.Add(time.Hour))
	events.Algorithm, events.Purpose = "RS256", store.PurposeEvents
	events2 := events
	events2.ID, events2.CreatedAt, events2.SignFrom = "events2", t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	for _, k := range []store.SigningKey{access, events, events2} {
		if err := s.AddKey(ctx, k, actor); err != nil {
			t.Fatalf("AddKey(%q) = %v", k.ID, err)
		}
	}
	ks, err := s.ListKeys(ctx)
	if err != nil || len(ks) != 3 {
		t.Fatalf("ListKeys() = %v, %v", keyIDs(ks), err)
	}
	if !ks[0].RetiredAt.IsZero() || ks[0].Purpose != "" {
		t.Errorf("access key = %+v, want live with no purpose: event keys do not retire it", ks[0])
	}
	if ks[1].Purpose != store.PurposeEvents || !ks[1].RetiredAt.Equal(events2.SignFrom) || !ks[2].RetiredAt.IsZero() {
		t.Errorf("event keys = %+v, %+v, want the first retired when the second signs", ks[1], ks[2])
	}
}

// testFirstKeyOnce: of several callers adding the first key to an empty
// store at once (authority nodes starting together), exactly one adds it;
// later calls add nothing.
func testFirstKeyOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 8
	added := make(chan bool, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			ok, err := s.AddFirstKey(ctx, signingKey(fmt.Sprint("first-", i), t0, t0), store.Actor{By: "system", Reason: "first start"})
			added <- ok
			errs <- err
		}()
	}
	count := 0
	for range n {
		if <-added {
			count++
		}
		if err := <-errs; err != nil {
			t.Errorf("AddFirstKey = %v", err)
		}
	}
	ks, err := s.ListKeys(ctx)
	if count != 1 || err != nil || len(ks) != 1 {
		t.Fatalf("%d concurrent AddFirstKey: %d added, ListKeys() = %v, %v; want exactly one", n, count, keyIDs(ks), err)
	}
	if ok, err := s.AddFirstKey(ctx, signingKey("late", t0, t0), store.Actor{By: "system"}); ok || err != nil {
		t.Errorf("AddFirstKey on a store with a key = %v, %v, want false, nil", ok, err)
	}
}
