package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

var operator = store.Actor{By: "api-key:ops", Reason: "ticket 7"}

func apiKey(id, name, secret, role string) store.APIKey {
	return store.APIKey{ID: id, Name: name, Hash: hash(secret), Role: role, CreatedAt: t0}
}

func addAPIKey(t *testing.T, s store.Store, k store.APIKey) {
	t.Helper()
	if err := s.AddAPIKey(context.Background(), k, operator); err != nil {
		t.Fatalf("AddAPIKey(%q) = %v", k.Name, err)
	}
}

func apiKeyNames(t *testing.T, s store.Store) []string {
	t.Helper()
	ks, err := s.ListAPIKeys(context.Background())
	if err != nil {
		t.Fatalf("ListAPIKeys() = %v", err)
	}
	var out []string
	for _, k := range ks {
		out = append(out, k.Name)
	}
	return out
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	admin := apiKey("a1", "backend", "secret-1", "admin")
	feed := apiKey("a2", "gate", "secret-2", "feed")
	feed.CreatedAt = t0.Add(time.Minute)
	addAPIKey(t, s, admin)
	addAPIKey(t, s, feed)
	for _, want := range []store.APIKey{admin, feed} {
		got, err := s.APIKeyByHash(ctx, want.Hash)
		if err != nil || got.ID != want.ID || got.Name != want.Name || got.Hash != want.Hash ||
			got.Role != want.Role || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("APIKeyByHash(%q) = %+v, %v, want %+v", want.Name, got, err, want)
		}
		if r, ok := findAudit(t, s, "apikey.create", want.Name+" ("+want.ID+")"); !ok || r.Actor != operator || !r.At.Equal(want.CreatedAt) {
			t.Errorf("audit apikey.create %q = %+v, %v, want by %+v at %v", want.Name, r, ok, operator, want.CreatedAt)
		}
	}
	_, err := s.APIKeyByHash(ctx, hash("wrong secret"))
	wantErr(t, "APIKeyByHash(unknown)", err, store.ErrNotFound)
	if got := apiKeyNames(t, s); !slices.Equal(got, []string{"backend", "gate"}) {
		t.Errorf("ListAPIKeys() = %q, want backend, gate", got)
	}
}

func testAPIKeyConflicts(t *testing.T, s store.Store) {
	ctx := context.Background()
	addAPIKey(t, s, apiKey("a1", "backend", "secret-1", "admin"))
	addAPIKey(t, s, apiKey("r1", "old", "secret-old", "feed"))
	if err := s.RevokeAPIKey(ctx, "r1", t0, operator); err != nil {
		t.Fatalf("RevokeAPIKey(r1) = %v", err)
	}
	tests := []struct {
		name string
		key  store.APIKey
	}{
		{"same ID", apiKey("a1", "other", "secret-2", "admin")},
		{"same name", apiKey("a2", "backend", "secret-2", "admin")},
		{"same hash", apiKey("a3", "other", "secret-1", "feed")},
		{"ID of a revoked key", apiKey("r1", "other", "secret-3", "feed")},
		{"hash of a revoked key: a revoked secret never comes back", apiKey("a4", "other", "secret-old", "feed")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "AddAPIKey()", s.AddAPIKey(ctx, tt.key, operator), store.ErrConflict)
		})
	}
	if got := apiKeyNames(t, s); !slices.Equal(got, []string{"backend"}) {
		t.Errorf("ListAPIKeys() = %q, want only backend", got)
	}
	if n := len(auditLog(t, s)); n != 3 {
		t.Errorf("audit records = %d, want 3 (two creations, one revocation): refused adds recorded nothing", n)
	}
	// The name of a revoked key is free again: replacing a leaked key
	// keeps the name the deployment knows it by.
	addAPIKey(t, s, apiKey("r2", "old", "secret-new", "feed"))
	if got := apiKeyNames(t, s); !slices.Equal(got, []string{"backend", "old"}) {
		t.Errorf("ListAPIKeys() after reusing a revoked name = %q, want backend, old", got)
	}
}

func testRevokeAPIKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	addAPIKey(t, s, apiKey("a1", "backend", "secret-1", "admin"))
	addAPIKey(t, s, apiKey("a2", "ops", "secret-2", "admin"))
	addAPIKey(t, s, apiKey("f1", "gate", "secret-3", "feed"))
	at := t0.Add(time.Hour)
	if err := s.RevokeAPIKey(ctx, "f1", at, operator); err != nil {
		t.Fatalf("RevokeAPIKey(f1) = %v", err)
	}
	_, err := s.APIKeyByHash(ctx, hash("secret-3"))
	wantErr(t, "APIKeyByHash(revoked)", err, store.ErrNotFound)
	if r, ok := findAudit(t, s, "apikey.revoke", "gate (f1)"); !ok || r.Actor != operator || !r.At.Equal(at) {
		t.Errorf("audit apikey.revoke = %+v, %v, want by %+v at %v", r, ok, operator, at)
	}
	revoked := []struct {
		name   string
		secret string
		want   bool
	}{
		{"revoked", "secret-3", true},
		{"live", "secret-1", false},
		{"unknown", "never issued", false},
	}
	for _, tt := range revoked {
		if got, err := s.APIKeyRevoked(ctx, hash(tt.secret)); err != nil || got != tt.want {
			t.Errorf("APIKeyRevoked(%s) = %v, %v, want %v", tt.name, got, err, tt.want)
		}
	}
	wantErr(t, "RevokeAPIKey(already revoked)", s.RevokeAPIKey(ctx, "f1", at, operator), store.ErrNotFound)
	wantErr(t, "RevokeAPIKey(unknown)", s.RevokeAPIKey(ctx, "nope", at, operator), store.ErrNotFound)
	if err := s.RevokeAPIKey(ctx, "a1", at, operator); err != nil {
		t.Fatalf("RevokeAPIKey(a1, one admin left after) = %v", err)
	}
	wantErr(t, "RevokeAPIKey(last admin)", s.RevokeAPIKey(ctx, "a2", at, operator), store.ErrLastAdminKey)
	if k, err := s.APIKeyByHash(ctx, hash("secret-2")); err != nil || k.ID != "a2" {
		t.Errorf("APIKeyByHash(last admin) after a refused revocation = %+v, %v, want a2", k, err)
	}
	if got := apiKeyNames(t, s); !slices.Equal(got, []string{"ops"}) {
		t.Errorf("ListAPIKeys() = %q, want only ops", got)
	}
}

// testRevokeAPIKeyConcurrent: every admin key revokes itself at once;
// exactly one must survive, whatever the interleaving.
func testRevokeAPIKeyConcurrent(t *testing.T, nodes []store.Store) {
	ctx := context.Background()
	s := nodes[0]
	const n = 8
	for i := range n {
		addAPIKey(t, s, apiKey(fmt.Sprintf("a%d", i), fmt.Sprintf("admin-%d", i), fmt.Sprintf("secret-%d", i), "admin"))
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = nodes[i%len(nodes)].RevokeAPIKey(ctx, fmt.Sprintf("a%d", i), t0, operator) })
	}
	wg.Wait()
	var ok, last int
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrLastAdminKey):
			last++
		default:
			t.Errorf("RevokeAPIKey(a%d) = %v, want nil or ErrLastAdminKey", i, err)
		}
	}
	if ok != n-1 || last != 1 {
		t.Errorf("concurrent self-revocations: %d revoked, %d refused, want %d and 1", ok, last, n-1)
	}
	if got := apiKeyNames(t, s); len(got) != 1 {
		t.Errorf("ListAPIKeys() = %q, want exactly one admin left", got)
	}
}

// testRetireInstalledAPIKeys: a setting's new key retires the keys
// installed from it before, and nothing else.
func testRetireInstalledAPIKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	installed := func(id, secret, role, as string) store.APIKey {
		k := apiKey(id, as+"-"+id, secret, role)
		k.InstalledAs = as
		addAPIKey(t, s, k)
		return k
	}
	old := installed("b1", "old admin secret", "admin", "bootstrap")
	older := installed("b0", "older admin secret", "admin", "bootstrap")
	current := installed("b2", "new admin secret", "admin", "bootstrap")
	feed := installed("f1", "feed secret", "feed", "feed")
	made := apiKey("m1", "backend", "api secret", "admin")
	addAPIKey(t, s, made)
	now := t0.Add(time.Hour)
	by := store.Actor{By: "system", Reason: "replaced"}

	got, err := s.RetireInstalledAPIKeys(ctx, "bootstrap", current.Hash, now, by)
	if err != nil || len(got) != 2 || got[0].ID != older.ID || got[1].ID != old.ID {
		t.Fatalf("RetireInstalledAPIKeys(bootstrap, keep b2) = %+v, %v; want b0 and b1 retired", got, err)
	}
	if k, err := s.APIKeyByHash(ctx, current.Hash); err != nil || k.InstalledAs != "bootstrap" {
		t.Errorf("APIKeyByHash(kept) = %+v, %v; want it live and installed as bootstrap", k, err)
	}
	for _, k := range []store.APIKey{old, older} {
		if revoked, err := s.APIKeyRevoked(ctx, k.Hash); err != nil || !revoked {
			t.Errorf("APIKeyRevoked(%s) = %v, %v; want true", k.ID, revoked, err)
		}
		if r, ok := findAudit(t, s, "apikey.revoke", k.Name+" ("+k.ID+")"); !ok || r.Actor != by || !r.At.Equal(now) {
			t.Errorf("audit apikey.revoke %s = %+v, %v; want by %+v at %v", k.ID, r, ok, by, now)
		}
	}
	if names := apiKeyNames(t, s); !slices.Equal(names, []string{"bootstrap-b2", "feed-f1", "backend"}) {
		t.Errorf("ListAPIKeys() after retiring = %q, want the kept, feed and API-made keys", names)
	}
	// Retiring again retires nothing; a key made through the API that
	// becomes a setting's key is marked as installed from it.
	if got, err := s.RetireInstalledAPIKeys(ctx, "feed", made.Hash, now, by); err != nil || len(got) != 1 || got[0].ID != feed.ID {
		t.Errorf("RetireInstalledAPIKeys(feed, keep an API-made key) = %+v, %v; want f1 retired", got, err)
	}
	if k, _ := s.APIKeyByHash(ctx, made.Hash); k.InstalledAs != "feed" {
		t.Errorf("APIKeyByHash(kept API-made key).InstalledAs = %q, want feed", k.InstalledAs)
	}
	_, err = s.RetireInstalledAPIKeys(ctx, "bootstrap", old.Hash, now, by)
	wantErr(t, "RetireInstalledAPIKeys(keep a revoked key)", err, store.ErrNotFound)
	if k, err := s.APIKeyByHash(ctx, current.Hash); err != nil {
		t.Errorf("APIKeyByHash(b2) after a refused retirement = %+v, %v; want it live", k, err)
	}
}

// testRetireInstalledConcurrent: nodes starting at once with different
// secrets for one setting neither deadlock nor leave two keys: each call
// either retires the others or finds its own key retired (ErrNotFound).
func testRetireInstalledConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 6
	keys := make([]store.APIKey, n)
	for i := range keys {
		keys[i] = apiKey(fmt.Sprintf("k%d", i), fmt.Sprintf("bootstrap-%d", i), fmt.Sprintf("secret %d", i), "admin")
		keys[i].InstalledAs = "bootstrap"
		addAPIKey(t, s, keys[i])
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.RetireInstalledAPIKeys(ctx, "bootstrap", keys[i].Hash, t0.Add(time.Hour), store.Actor{By: "system"})
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("RetireInstalledAPIKeys(keep k%d) = %v, want nil or ErrNotFound", i, err)
		}
	}
	if names := apiKeyNames(t, s); len(names) != 1 || ok < 1 {
		t.Errorf("after %d concurrent retirements: live keys %q, %d calls succeeded; want one key left and at least one success", n, names, ok)
	}
}
