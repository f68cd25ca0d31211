package verifier

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/localverifier"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/token"
)

// local is a local verifier (Config.Local) over keys and a set the test
// controls, as the authority uses it.
type local struct {
	clock *fakeClock
	key   token.SigningKey
	keys  *token.KeySet
	set   *revocation.Set
	v     *Verifier
}

func newLocal(t testing.TB, cacheSize int) *local {
	t.Helper()
	l := &local{clock: newClock(), key: newSigningKey(t, "k1", token.EdDSA), set: revocation.NewSet(0)}
	ks, err := token.NewKeySet(token.PublicKey{ID: "k1", Algorithm: token.EdDSA, Key: l.key.Private.Public()})
	if err != nil {
		t.Fatalf("NewKeySet = %v", err)
	}
	l.keys = ks
	cfg := Config{Issuer: testIssuer, Audience: testAudience, CacheSize: cacheSize,
		Logger: slog.New(slog.DiscardHandler)}
	cfg.Clock = l.clock
	cfg.Local = &localverifier.Source{Keys: func() token.KeyLookup { return l.keys }, Set: l.set}
	if l.v, err = New(context.Background(), cfg); err != nil {
		t.Fatalf("New(local) = %v", err)
	}
	return l
}

func (l *local) claims(sub string) token.Claims {
	now := l.clock.Now()
	return token.Claims{Issuer: testIssuer, Subject: sub, Audience: []string{testAudience},
		IssuedAt: now, Expiry: now.Add(10 * time.Minute), ID: randomID(), SessionID: randomID()}
}

func TestLocalVerify(t *testing.T) {
	l := newLocal(t, 0)
	c := l.claims("alice")
	raw := sign(t, l.key, c)
	ctx := context.Background()
	if _, err := l.v.Verify(ctx, raw); err != nil {
		t.Fatalf("Verify(valid) = %v, want nil", err)
	}
	if s := l.v.State(); !s.Ready || s.Keys != 1 {
		t.Errorf("State() = %+v, want ready with 1 key", s)
	}
	if err := l.v.WaitReady(ctx); err != nil {
		t.Errorf("WaitReady = %v, want nil", err)
	}
	// Cached now; a revocation applied by the caller counts at once.
	if err := l.set.Apply(revocation.Entry{Seq: 1, Kind: revocation.KindSession, Session: c.SessionID,
		ExpiresAt: l.clock.In(time.Hour)}); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	if _, err := l.v.Verify(ctx, raw); !errors.Is(err, ErrRevoked) {
		t.Errorf("Verify(cached, revoked) = %v, want %v", err, ErrRevoked)
	}
	if err := l.v.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestCacheHitRechecksTime(t *testing.T) {
	l := newLocal(t, 0)
	c := l.claims("alice")
	raw := sign(t, l.key, c)
	ctx := context.Background()
	if _, err := l.v.Verify(ctx, raw); err != nil {
		t.Fatalf("Verify(valid) = %v, want nil", err)
	}
	l.clock.Add(10*time.Minute + DefaultLeeway)
	if _, err := l.v.Verify(ctx, raw); err != nil {
		t.Errorf("Verify(at exp + leeway) = %v, want nil", err)
	}
	l.clock.Add(time.Second)
	if _, err := l.v.Verify(ctx, raw); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify(cached, after exp + leeway) = %v, want %v", err, ErrExpired)
	}
	if l.v.cache.get(raw) != nil {
		t.Errorf("expired token still cached")
	}
}

func TestCacheHitRechecksKey(t *testing.T) {
	l := newLocal(t, 0)
	raw := sign(t, l.key, l.claims("alice"))
	ctx := context.Background()
	if _, err := l.v.Verify(ctx, raw); err != nil {
		t.Fatalf("Verify(valid) = %v, want nil", err)
	}
	other := newSigningKey(t, "k2", token.EdDSA)
	ks, err := token.NewKeySet(token.PublicKey{ID: "k2", Algorithm: token.EdDSA, Key: other.Private.Public()})
	if err != nil {
		t.Fatalf("NewKeySet = %v", err)
	}
	l.keys = ks // k1 withdrawn
	if _, err := l.v.Verify(ctx, raw); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify(cached, key withdrawn) = %v, want %v", err, ErrUnknownKey)
	}
}

// TestCacheKeyedByTheKidVerificationUsed: a token is cached under the key
// that verified it, even when its header spells kid twice (a case variant
// after the exact name, which encoding/json lets win), so it never
// outlives the withdrawal of its real key.
func TestCacheKeyedByTheKidVerificationUsed(t *testing.T) {
	l := newLocal(t, 0)
	other := newSigningKey(t, "k2", token.EdDSA)
	both, err := token.NewKeySet(
		token.PublicKey{ID: "k1", Algorithm: token.EdDSA, Key: l.key.Private.Public()},
		token.PublicKey{ID: "k2", Algorithm: token.EdDSA, Key: other.Private.Public()})
	if err != nil {
		t.Fatalf("NewKeySet = %v", err)
	}
	l.keys = both
	raw := craftRawHeader(t, l.key, `{"alg":"EdDSA","typ":"at+jwt","kid":"k1","KID":"k2"}`, payloadOf(l.claims("alice")))
	ctx := context.Background()
	if _, err := l.v.Verify(ctx, raw); err != nil {
		t.Fatalf("Verify(kid k1 with a KID k2 variant) = %v, want nil (k1 verifies it)", err)
	}
	onlyK2, err := token.NewKeySet(token.PublicKey{ID: "k2", Algorithm: token.EdDSA, Key: other.Private.Public()})
	if err != nil {
		t.Fatalf("NewKeySet = %v", err)
	}
	l.keys = onlyK2 // k1, the key that verified the token, is withdrawn
	if _, err := l.v.Verify(ctx, raw); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify(cached, verifying key withdrawn) = %v, want %v", err, ErrUnknownKey)
	}
}

// TestCacheHitRechecksKeyMaterial: a kid that comes back naming other key
// material does not keep tokens of the old key alive.
func TestCacheHitRechecksKeyMaterial(t *testing.T) {
	l := newLocal(t, 0)
	raw := sign(t, l.key, l.claims("alice"))
	ctx := context.Background()
	if _, err := l.v.Verify(ctx, raw); err != nil {
		t.Fatalf("Verify(valid) = %v, want nil", err)
	}
	other := newSigningKey(t, "k1", token.EdDSA) // same kid, other key
	ks, err := token.NewKeySet(token.PublicKey{ID: "k1", Algorithm: token.EdDSA, Key: other.Private.Public()})
	if err != nil {
		t.Fatalf("NewKeySet = %v", err)
	}
	l.keys = ks
	if _, err := l.v.Verify(ctx, raw); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify(cached, kid now names another key) = %v, want %v", err, ErrSignature)
	}
}

func TestCacheBounded(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{
		{"one shard", 5},
		{"several shards", 100},
		{"default", DefaultCacheSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(tt.size)
			now := time.Unix(1000, 0)
			claims := &Claims{t: token.Claims{Expiry: now.Add(time.Hour)}}
			for i := 0; i < 2*tt.size; i++ {
				c.put(randomID(), &cached{claims: claims, key: token.PublicKey{ID: "k1"}}, now)
			}
			if n := c.len(); n > tt.size+len(c.shards) || n < tt.size/2 {
				t.Errorf("len after %d puts = %d, want about %d", 2*tt.size, n, tt.size)
			}
			if n := c.sweep(now.Add(time.Hour)); n == 0 || c.len() != 0 {
				t.Errorf("sweep(at exp) removed %d, left %d; want all removed", n, c.len())
			}
		})
	}
	if c := newCache(-1); c != nil {
		t.Errorf("newCache(-1) = %v, want nil (disabled)", c)
	}
}

func TestCacheDisabled(t *testing.T) {
	l := newLocal(t, -1)
	raw := sign(t, l.key, l.claims("alice"))
	for i := 0; i < 2; i++ {
		if _, err := l.v.Verify(context.Background(), raw); err != nil {
			t.Errorf("Verify(no cache) #%d = %v, want nil", i, err)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"no token", ErrNoToken, "no token"},
		{"expired", errors.Join(errors.New("x"), ErrExpired), "token expired"},
		{"revoked", ErrRevoked, "token revoked"},
		{"inactive", ErrInactive, "token revoked"},
		{"stale", ErrStale, "verifier not in sync with authority"},
		{"unavailable", ErrUnavailable, "verifier not in sync with authority"},
		{"signature", ErrSignature, "token invalid"},
		{"malformed", ErrMalformed, "token invalid"},
		{"other", errors.New("boom"), "token invalid"},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestVerifySharesImmutableClaims: Verify hands every call for a token the
// claims it cached, and nothing a caller gets from them changes what the
// next call sees.
func TestVerifySharesImmutableClaims(t *testing.T) {
	l := newLocal(t, 0)
	c := l.claims("alice")
	c.Extra = map[string]any{"roles": []any{"reader"}, "tenant": "t1"}
	raw := sign(t, l.key, c)
	ctx := context.Background()
	first, err := l.v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("Verify(valid) = %v, want nil", err)
	}
	again, _ := l.v.Verify(ctx, raw)
	if again != first {
		t.Error("Verify(same token) = other claims, want the cached ones")
	}
	roles, _ := first.Claim("roles")
	roles.([]any)[0] = "admin"
	first.Copy().Extra["roles"] = []any{"admin"}
	first.Audience()[0] = "elsewhere"
	if !again.Has("roles", "reader") || again.Has("roles", "admin") {
		t.Errorf("cached roles after callers changed what they got: Has(reader) = %v, Has(admin) = %v, want true, false",
			again.Has("roles", "reader"), again.Has("roles", "admin"))
	}
	if aud := again.Audience(); len(aud) != 1 || aud[0] != c.Audience[0] {
		t.Errorf("cached Audience() = %v, want %v", aud, c.Audience)
	}
	if v, ok := again.Claim("tenant"); !ok || v != "t1" {
		t.Errorf("Claim(tenant) = %v, %v, want t1, true", v, ok)
	}
	if names := again.ClaimNames(); !slices.Equal(names, []string{"roles", "tenant"}) {
		t.Errorf("ClaimNames() = %v, want [roles tenant]", names)
	}
	if err := l.set.Apply(revocation.Entry{Seq: 1, Kind: revocation.KindSubject, Subject: "alice", Generation: 1,
		ExpiresAt: l.clock.In(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.v.Verify(ctx, raw); !errors.Is(err, ErrRevoked) {
		t.Errorf("Verify(cut off subject) = %v, want ErrRevoked", err)
	}
}

// TestCacheKeyIsNotTrusted: the cache finds tokens by their last bytes, so
// a forged token ending like a cached one must miss and fail verification,
// not be taken for it.
func TestCacheKeyIsNotTrusted(t *testing.T) {
	l := newLocal(t, 0)
	c := l.claims("alice")
	raw := sign(t, l.key, c)
	ctx := context.Background()
	if _, err := l.v.Verify(ctx, raw); err != nil {
		t.Fatalf("Verify(valid) = %v", err)
	}
	forged := l.claims("mallory")
	head, payload, _ := cutToken(t, sign(t, l.key, forged))
	_, _, sig := cutToken(t, raw)
	fake := head + "." + payload + "." + sig // mallory's claims, alice's signature
	if _, err := l.v.Verify(ctx, fake); !errors.Is(err, token.ErrSignature) {
		t.Fatalf("Verify(token ending like a cached one) = %v, want token.ErrSignature", err)
	}
	if _, err := l.v.Verify(ctx, raw); err != nil {
		t.Errorf("Verify(valid) after the forgery = %v, want nil", err)
	}
}

func cutToken(t *testing.T, raw string) (head, payload, sig string) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", raw, len(parts))
	}
	return parts[0], parts[1], parts[2]
}

// TestLocalConfigRefused: a local verifier has no discovery to take the
// issuer from, and MaxLifetime cannot be off for it either.
func TestLocalConfigRefused(t *testing.T) {
	src := &localverifier.Source{Keys: func() token.KeyLookup { return &token.KeySet{} }, Set: revocation.NewSet(0)}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no issuer", Config{}},
		{"negative MaxLifetime", Config{Issuer: testIssuer, MaxLifetime: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Local = src
			if v, err := New(context.Background(), tc.cfg); err == nil {
				t.Errorf("New(%+v) = %v, nil; want an error", tc.cfg, v)
			}
		})
	}
}
