package authority

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier"
)

func newTestAuthority(t testing.TB) (*Authority, *testtime.Clock) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := testtime.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	a, err := New(context.Background(), st, bytes.Repeat([]byte{7}, MasterKeySize), Config{Issuer: "https://auth.test", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return a, clk
}

func TestSealer(t *testing.T) {
	s, err := newSealer(bytes.Repeat([]byte{1}, MasterKeySize), "purpose A")
	if err != nil {
		t.Fatal(err)
	}
	other, err := newSealer(bytes.Repeat([]byte{2}, MasterKeySize), "purpose A")
	if err != nil {
		t.Fatal(err)
	}
	otherPurpose, err := newSealer(bytes.Repeat([]byte{1}, MasterKeySize), "purpose B")
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.seal([]byte("secret"), []byte("row-1"))
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("sealed data contains the plaintext")
	}
	if pt, err := s.open(sealed, []byte("row-1")); err != nil || string(pt) != "secret" {
		t.Fatalf("open = %q, %v, want secret", pt, err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name   string
		s      *sealer
		sealed []byte
		aad    string
	}{
		{"wrong master key", other, sealed, "row-1"},
		{"other purpose", otherPurpose, sealed, "row-1"},
		{"moved to another row", s, sealed, "row-2"},
		{"tampered", s, tampered, "row-1"},
		{"truncated", s, sealed[:10], "row-1"},
	}
	for _, tc := range tests {
		if _, err := tc.s.open(tc.sealed, []byte(tc.aad)); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: open = %v, want ErrSealed", tc.name, err)
		}
	}
	if _, err := newSealer([]byte("short"), "x"); err == nil {
		t.Error("newSealer(short key) = nil error")
	}
}

// TestRetiredKeyCannotSign forges a token with a retired key's private half
// after its grace period (a stolen old key): verifiers refuse it.
func TestRetiredKeyCannotSign(t *testing.T) {
	a, clk := newTestAuthority(t)
	ctx := context.Background()
	old, ok := a.ring().current(clk.Now())
	if !ok {
		t.Fatal("no signing key")
	}
	if _, err := a.RotateKey(ctx, UseAccess, store.Actor{By: "test"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(a.cfg.KeyPublishDelay + a.keyWindow() + time.Second)
	if err := a.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if cur, _ := a.ring().current(clk.Now()); cur.ID == old.ID {
		t.Fatal("the retired key still signs")
	}
	now := clk.Now().Truncate(time.Second)
	forged, err := token.Sign(old, token.Claims{Issuer: a.cfg.Issuer, Subject: "mallory", Audience: []string{a.cfg.Audience},
		IssuedAt: now, Expiry: now.Add(time.Minute), ID: "j", SessionID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verifier().Verify(ctx, forged); !errors.Is(err, verifier.ErrUnknownKey) {
		t.Fatalf("Verify(token signed by a retired key after its grace) = %v, want ErrUnknownKey", err)
	}
}

func TestKeyStates(t *testing.T) {
	a, clk := newTestAuthority(t)
	ctx := context.Background()
	first, ok := a.ring().current(clk.Now())
	if !ok {
		t.Fatal("no signing key")
	}
	k, err := a.RotateKey(ctx, UseAccess, store.Actor{By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	states := func() map[string]string {
		keys, err := a.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, k := range keys {
			m[k.ID] = k.State
		}
		return m
	}
	steps := []struct {
		advance       time.Duration
		first, second string
	}{
		{0, "active", "pending"},
		{a.cfg.KeyPublishDelay, "retired", "active"},
		{a.keyWindow(), "expired", "active"},
	}
	for i, s := range steps {
		clk.Add(s.advance)
		if err := a.ReloadKeys(ctx); err != nil {
			t.Fatalf("step %d: ReloadKeys = %v", i, err)
		}
		got := states()
		if got[first.ID] != s.first || got[k.ID] != s.second {
			t.Fatalf("step %d: states = %v, want first %s, second %s", i, got, s.first, s.second)
		}
	}
}

func TestClaimsValidation(t *testing.T) {
	a, _ := newTestAuthority(t)
	tests := []struct {
		name string
		req  SessionRequest
	}{
		{"empty subject", SessionRequest{}},
		{"long subject", SessionRequest{Subject: string(bytes.Repeat([]byte("x"), MaxSubjectLen+1))}},
		{"invalid UTF-8", SessionRequest{Subject: "\xff"}},
		{"newline in subject", SessionRequest{Subject: "a\nb"}},
		{"reserved claim", SessionRequest{Subject: "a", Claims: map[string]any{"sid": "x"}}},
		{"sgen is reserved", SessionRequest{Subject: "a", Claims: map[string]any{"sgen": 9}}},
		{"long device", SessionRequest{Subject: "a", Device: string(bytes.Repeat([]byte("d"), MaxDeviceLen+1))}},
	}
	for _, tc := range tests {
		_, err := a.CreateSession(context.Background(), tc.req)
		var ae *Error
		if !errors.As(err, &ae) || ae.Code != CodeInvalidRequest {
			t.Errorf("%s: CreateSession = %v, want invalid_request", tc.name, err)
		}
	}
}

func TestOneRotationAtATime(t *testing.T) {
	a, clk := newTestAuthority(t)
	ctx := context.Background()
	if _, err := a.RotateKey(ctx, UseAccess, store.Actor{By: "test"}); err != nil {
		t.Fatal(err)
	}
	_, err := a.RotateKey(ctx, UseAccess, store.Actor{By: "test"})
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != CodeConflict {
		t.Fatalf("second RotateKey while one is pending = %v, want conflict", err)
	}
	clk.Add(a.cfg.KeyPublishDelay)
	if _, err := a.RotateKey(ctx, UseAccess, store.Actor{By: "test"}); err != nil {
		t.Fatalf("RotateKey after the pending key signs = %v, want nil", err)
	}
}

// TestTextStoresAccept: input a Postgres text column refuses (NUL, invalid
// UTF-8) is the caller's mistake, refused before it reaches any store.
func TestTextStoresAccept(t *testing.T) {
	a, _ := newTestAuthority(t)
	ctx := context.Background()
	live, err := a.CreateSession(ctx, SessionRequest{Subject: "a"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"NUL in device", func() error {
			_, err := a.CreateSession(ctx, SessionRequest{Subject: "a", Device: "x\x00y"})
			return err
		}},
		{"invalid UTF-8 session id", func() error {
			_, err := a.RevokeSession(ctx, "\xff", store.Actor{By: "test"})
			return err
		}},
		{"NUL in session id", func() error {
			_, err := a.RevokeSession(ctx, "a\x00b", store.Actor{By: "test"})
			return err
		}},
		{"NUL in reason", func() error {
			_, err := a.RevokeSession(ctx, live.SessionID, store.Actor{By: "test", Reason: "x\x00"})
			return err
		}},
		{"invalid UTF-8 reason", func() error {
			_, err := a.RotateKey(ctx, UseAccess, store.Actor{By: "test", Reason: "\xff"})
			return err
		}},
	}
	for _, tc := range tests {
		var ae *Error
		if err := tc.call(); !errors.As(err, &ae) || ae.Code != CodeInvalidRequest {
			t.Errorf("%s: err = %v, want invalid_request", tc.name, err)
		}
	}
	if _, err := a.Verifier().Verify(ctx, live.AccessToken); err != nil {
		t.Fatalf("Verify(live token) = %v, want nil: a refused call revoked it", err)
	}
}

func TestEnsureAPIKeyKeepsRoles(t *testing.T) {
	a, _ := newTestAuthority(t)
	ctx := context.Background()
	secret := NewAPIKey()
	if err := a.EnsureAPIKey(ctx, "bootstrap", secret, RoleAdmin, false); err != nil {
		t.Fatal(err)
	}
	if err := a.EnsureAPIKey(ctx, "bootstrap", secret, RoleAdmin, false); err != nil {
		t.Fatalf("EnsureAPIKey(same key, same role) = %v, want nil", err)
	}
	// The admin secret reused as the read-only feed key must not pass
	// silently: it would still hold admin rights.
	if err := a.EnsureAPIKey(ctx, "feed", secret, RoleFeed, false); err == nil {
		t.Fatal("EnsureAPIKey(admin secret as feed key) = nil, want an error")
	}
	if err := a.EnsureAPIKey(ctx, "bootstrap", "", RoleAdmin, false); err == nil {
		t.Fatal(`EnsureAPIKey("") = nil, want an error`)
	}
}

func TestConfigValidation(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no issuer", Config{}},
		{"negative access TTL", Config{Issuer: "i", AccessTTL: -time.Minute}},
		{"negative leeway: entries would die before their tokens", Config{Issuer: "i", Leeway: -time.Second}},
		{"negative publish delay: signing before publishing", Config{Issuer: "i", KeyPublishDelay: -time.Second}},
		{"negative status list TTL", Config{Issuer: "i", StatusLists: StatusListConfig{TTL: -time.Second}}},
		{"unknown algorithm", Config{Issuer: "i", Algorithm: "HS256"}},
	}
	for _, tc := range tests {
		if _, err := New(context.Background(), st, bytes.Repeat([]byte{7}, MasterKeySize), tc.cfg); err == nil {
			t.Errorf("%s: New = nil error, want refusal", tc.name)
		}
	}
}

// TestIntrospectRefusesWhenTheLogIsUnreadable: a node that cannot read the
// revocation log must not vouch for a token (verifiers introspect exactly
// when they are stale themselves).
func TestIntrospectRefusesWhenTheLogIsUnreadable(t *testing.T) {
	a, clk := newTestAuthority(t)
	ctx := context.Background()
	tk, err := a.CreateSession(ctx, SessionRequest{Subject: "ivan"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := a.Introspect(ctx, tk.AccessToken); err != nil || c == nil {
		t.Fatalf("Introspect(fresh) = %v, %v, want active", c, err)
	}
	clk.Add(StaleAfter + time.Second)
	if c, err := a.Introspect(ctx, tk.AccessToken); err != nil || c == nil {
		t.Fatalf("Introspect(after a quiet spell, store reachable) = %v, %v, want active (it catches up)", c, err)
	}
	if err := a.Ready(); err != nil {
		t.Errorf("Ready(store reachable) = %v, want nil", err)
	}
	clk.Add(StaleAfter + time.Second)
	a.store.Close() // the database is gone
	if c, err := a.Introspect(ctx, tk.AccessToken); !errors.Is(err, ErrStale) {
		t.Fatalf("Introspect(log unreadable) = %v, %v, want ErrStale", c, err)
	}
	if err := a.Ready(); !errors.Is(err, ErrStale) {
		t.Errorf("Ready(log unreadable) = %v, want ErrStale", err)
	}
}

// TestNoRefreshGrace: with a negative RefreshGrace there is no grace
// window, so a second use of a rotated token at the same instant is theft.
func TestNoRefreshGrace(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := testtime.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	a, err := New(context.Background(), st, bytes.Repeat([]byte{7}, MasterKeySize),
		Config{Issuer: "https://auth.test", Clock: clk, RefreshGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	if g := a.Config().RefreshGrace; g >= 0 {
		t.Fatalf("effective RefreshGrace after -1 = %v, want negative (off)", g)
	}
	ctx := context.Background()
	tok, err := a.CreateSession(ctx, SessionRequest{Subject: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Fatalf("first Refresh = %v", err)
	}
	if _, err := a.Refresh(ctx, tok.RefreshToken); !errors.Is(err, ErrReuse) {
		t.Fatalf("second Refresh at the same instant = %v, want ErrReuse (no grace)", err)
	}
}

// TestAlgorithmChangeAppliesAtRotation: keys keep their algorithm; an
// authority started with another one says so and signs with it from the
// next rotation.
func TestAlgorithmChangeAppliesAtRotation(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	clk := testtime.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	master := bytes.Repeat([]byte{7}, MasterKeySize)
	if _, err := New(ctx, st, master, Config{Issuer: "https://auth.test", Clock: clk}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a, err := New(ctx, st, master, Config{Issuer: "https://auth.test", Clock: clk, Algorithm: token.ES256,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "configured_alg=ES256") || !strings.Contains(logs.String(), "key_alg=EdDSA") {
		t.Errorf("log of a start with ES256 over EdDSA keys = %q, want a warning naming both", logs.String())
	}
	k, err := a.RotateKey(ctx, UseAccess, store.Actor{By: "test", Reason: "switch to ES256"})
	if err != nil || k.Algorithm != token.ES256 {
		t.Fatalf("RotateKey = %+v, %v, want an ES256 key", k, err)
	}
}

// TestReloadKeepsAnUnchangedRing: reloading keys that did not change, at
// an instant that changes none of their states, keeps the ring built
// before (no private half opened again); a new key, a key whose
// retirement comes, and one whose publication ends each give a new ring.
func TestReloadKeepsAnUnchangedRing(t *testing.T) {
	a, clk := newTestAuthority(t)
	ctx := context.Background()
	reload := func(what string, wantNew bool) *keyring {
		t.Helper()
		before := a.ring()
		if err := a.ReloadKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if got := a.ring() != before; got != wantNew {
			t.Fatalf("%s: ReloadKeys() built a new ring = %v, want %v", what, got, wantNew)
		}
		return a.ring()
	}
	first, _ := a.ring().current(clk.Now())
	reload("nothing changed", false)
	clk.Add(time.Minute)
	reload("a minute later", false)
	before := a.ring()
	k, err := a.RotateKey(ctx, UseAccess, store.Actor{By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ring() == before {
		t.Fatal("RotateKey kept the ring without the new key")
	}
	reload("after the rotation", false)
	clk.Add(a.cfg.KeyPublishDelay)
	r := reload("the first key's retirement", true)
	if cur, _ := r.current(clk.Now()); cur.ID != k.ID {
		t.Errorf("after the retirement the ring signs with %s, want %s", cur.ID, k.ID)
	}
	reload("after the retirement", false)
	clk.Add(a.keyWindow() + time.Second)
	r = reload("the end of the first key's publication", true)
	if strings.Contains(string(r.jwks), first.ID) {
		t.Errorf("JWKS after the first key's publication ended still holds it")
	}
	reload("after its publication ended", false)
}

// TestReloadFollowsTheKeyWindow: a retired key stays in the JWKS for as
// long as the longest lifetime leased (the key window). When that window
// shrinks (a longer lease ends), a reload with the keys unchanged builds
// the ring again, and a key past the shorter window leaves the JWKS then,
// not at the next change of the keys.
func TestReloadFollowsTheKeyWindow(t *testing.T) {
	a, clk := newTestAuthority(t)
	ctx := context.Background()
	short := a.life.view.Load()
	life := a.cfg.AccessTTL
	a.life.view.Store(&leaseView{leases: []store.LifetimeLease{{Lifetime: 4 * life, Until: clk.Now().Add(24 * time.Hour)}}, readAt: clk.Now()})
	first, _ := a.ring().current(clk.Now())
	if _, err := a.RotateKey(ctx, UseAccess, store.Actor{By: "test"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(a.cfg.KeyPublishDelay) // the first key retires
	if err := a.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * life) // within the long window, past the short one
	if _, err := a.RotateKey(ctx, UseAccess, store.Actor{By: "test"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(a.ring().jwks), first.ID) {
		t.Fatalf("JWKS within the %v window after the first key retired lacks it", a.keyWindow())
	}
	a.life.view.Store(short)
	if err := a.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(a.ring().jwks), first.ID) {
		t.Errorf("JWKS %v after the first key retired, with a window of %v, still holds it", 2*life, a.keyWindow())
	}
}
