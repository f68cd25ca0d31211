package authority

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
	"github.com/tegata-dev/tegata/internal/testtime"
)

var ops = store.Actor{By: "api-key:ops", Reason: "test"}

// twoNodes returns two authorities sharing one store and one clock, as
// two nodes on one Postgres would.
func twoNodes(t *testing.T) (*Authority, *Authority, *testtime.Clock) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := testtime.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	var nodes [2]*Authority
	for i := range nodes {
		nodes[i], err = New(ctx, st, bytes.Repeat([]byte{7}, MasterKeySize), Config{Issuer: "https://auth.test", Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
	}
	return nodes[0], nodes[1], clk
}

func TestCreateAPIKeyRefuses(t *testing.T) {
	a, _ := newTestAuthority(t)
	ctx := context.Background()
	if _, _, err := a.CreateAPIKey(ctx, "billing-backend", RoleAdmin, ops); err != nil {
		t.Fatalf("CreateAPIKey(billing-backend) = %v", err)
	}
	tests := []struct {
		name     string
		key      string
		role     string
		reason   string
		wantCode string
	}{
		{"empty name", "", RoleAdmin, "", CodeInvalidRequest},
		{"name too long", strings.Repeat("k", MaxAPIKeyNameLen+1), RoleAdmin, "", CodeInvalidRequest},
		{"space in name", "billing backend", RoleAdmin, "", CodeInvalidRequest},
		{"slash in name", "a/b", RoleAdmin, "", CodeInvalidRequest},
		{"non-ASCII name", "clé", RoleAdmin, "", CodeInvalidRequest},
		{"no role", "x", "", "", CodeInvalidRequest},
		{"unknown role", "x", "root", "", CodeInvalidRequest},
		{"NUL in reason", "x", RoleFeed, "a\x00b", CodeInvalidRequest},
		{"duplicate name", "billing-backend", RoleFeed, "", CodeConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, secret, err := a.CreateAPIKey(ctx, tc.key, tc.role, store.Actor{By: "t", Reason: tc.reason})
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != tc.wantCode || secret != "" {
				t.Errorf("CreateAPIKey(%q, %q) = %q, %v, want no secret and %s", tc.key, tc.role, secret, err, tc.wantCode)
			}
		})
	}
	if _, _, err := a.CreateAPIKey(ctx, strings.Repeat("k", MaxAPIKeyNameLen), RoleFeed, ops); err != nil {
		t.Errorf("CreateAPIKey(name of the maximum length) = %v, want nil", err)
	}
}

// TestRevokeAPIKeyAcrossNodes: the revoking node refuses the key at once;
// another node that cached it accepts it until the cache TTL has passed,
// never longer.
func TestRevokeAPIKeyAcrossNodes(t *testing.T) {
	a, b, clk := twoNodes(t)
	ctx := context.Background()
	if _, _, err := a.CreateAPIKey(ctx, "ops", RoleAdmin, ops); err != nil {
		t.Fatal(err)
	}
	k, secret, err := a.CreateAPIKey(ctx, "leaked", RoleFeed, ops)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Authority{a, b} {
		if _, err := n.Authenticate(ctx, secret); err != nil {
			t.Fatalf("Authenticate(new key) = %v, want nil", err)
		}
	}
	if err := a.RevokeAPIKey(ctx, k.ID, ops); err != nil {
		t.Fatalf("RevokeAPIKey() = %v", err)
	}
	if _, err := a.Authenticate(ctx, secret); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Authenticate(revoked key) on the revoking node = %v, want ErrUnauthorized at once", err)
	}
	if _, err := b.Authenticate(ctx, secret); err != nil {
		t.Errorf("Authenticate(revoked key) on another node within the TTL = %v, want nil (cached)", err)
	}
	clk.Add(APIKeyCacheTTL + time.Millisecond)
	if _, err := b.Authenticate(ctx, secret); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Authenticate(revoked key) on another node after the TTL = %v, want ErrUnauthorized", err)
	}
	if err := a.RevokeAPIKey(ctx, k.ID, ops); !isCode(err, CodeNotFound) {
		t.Errorf("RevokeAPIKey(already revoked) = %v, want not_found", err)
	}
}

func isCode(err error, code string) bool {
	var ae *Error
	return errors.As(err, &ae) && ae.Code == code
}

// TestAPIKeyCacheEvictionRace: a lookup that read the store before a
// revocation and finishes after it must not put the revoked key back.
func TestAPIKeyCacheEvictionRace(t *testing.T) {
	var c apiKeyCache
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	h := HashSecret("k")
	_, gen, hit := c.get(h, now) // the lookup begins and misses
	if hit {
		t.Fatal("get() on an empty cache hit")
	}
	c.evict("id-1") // the key is revoked meanwhile
	c.put(h, store.APIKey{ID: "id-1"}, now.Add(time.Minute), gen)
	if k, _, ok := c.get(h, now); ok {
		t.Fatalf("get() after a stale put = %+v, want a miss", k)
	}
}

func TestRevokeLastAdminKey(t *testing.T) {
	a, _ := newTestAuthority(t)
	ctx := context.Background()
	k, _, err := a.CreateAPIKey(ctx, "only-admin", RoleAdmin, ops)
	if err != nil {
		t.Fatal(err)
	}
	feed, _, err := a.CreateAPIKey(ctx, "gate", RoleFeed, ops)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeAPIKey(ctx, k.ID, ops); !isCode(err, CodeConflict) {
		t.Errorf("RevokeAPIKey(last admin) = %v, want conflict", err)
	}
	if err := a.RevokeAPIKey(ctx, feed.ID, ops); err != nil {
		t.Errorf("RevokeAPIKey(feed key) = %v, want nil", err)
	}
	for _, id := range []string{"", strings.Repeat("x", 129), "a\x00b", "a\nb"} {
		if err := a.RevokeAPIKey(ctx, id, ops); !isCode(err, CodeInvalidRequest) {
			t.Errorf("RevokeAPIKey(%q) = %v, want invalid_request", id, err)
		}
	}
}

// TestEnsureAPIKeyRevoked: a restart with the secret of a revoked key
// fails, naming the key, rather than bringing it back. (The server names
// the setting to change: internal/server TestRevokedBootstrapKey.)
func TestEnsureAPIKeyRevoked(t *testing.T) {
	a, _ := newTestAuthority(t)
	ctx := context.Background()
	tests := []struct {
		name, role, setting string
	}{
		{"bootstrap", RoleAdmin, "bootstrap API key"},
		{"feed", RoleFeed, "feed API key"},
	}
	if _, _, err := a.CreateAPIKey(ctx, "ops", RoleAdmin, ops); err != nil {
		t.Fatal(err) // so the bootstrap key is not the last admin key
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret := NewAPIKey()
			if err := a.EnsureAPIKey(ctx, tc.name, secret, tc.role, false); err != nil {
				t.Fatal(err)
			}
			k, err := a.Authenticate(ctx, secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.RevokeAPIKey(ctx, k.ID, ops); err != nil {
				t.Fatal(err)
			}
			err = a.EnsureAPIKey(ctx, tc.name, secret, tc.role, false)
			if !errors.Is(err, ErrAPIKeyRevoked) || !strings.Contains(err.Error(), tc.setting) {
				t.Fatalf("EnsureAPIKey(revoked %s key) = %v, want ErrAPIKeyRevoked naming %s", tc.name, err, tc.setting)
			}
			if _, err := a.Authenticate(ctx, secret); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("Authenticate(revoked %s key) after EnsureAPIKey = %v, want ErrUnauthorized", tc.name, err)
			}
		})
	}
}
