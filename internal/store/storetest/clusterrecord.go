package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// testRecordCluster: the home and settings are recorded for the epoch
// named, kept by a later claim, and left alone for another epoch.
func testRecordCluster(t *testing.T, s store.Store) {
	ctx := context.Background()
	settings := map[string]string{"audience": "app", "access_ttl": "15m0s"}
	if _, err := s.ClaimCluster(ctx, store.ClusterInfo{Issuer: "https://auth.example", Epoch: "epoch-1", CreatedAt: t0, Settings: settings}); err != nil {
		t.Fatalf("ClaimCluster = %v", err)
	}
	home, err := s.Home(ctx)
	if err != nil {
		t.Fatalf("Home() = %v", err)
	}
	if again, err := s.Home(ctx); err != nil || again != home {
		t.Errorf("Home() again = %q, %v; want %q: the same database", again, err, home)
	}
	got, err := s.RecordCluster(ctx, "epoch-1", "home-1", nil)
	if err != nil || got.Home != "home-1" || !reflect.DeepEqual(got.Settings, settings) {
		t.Fatalf("RecordCluster(epoch-1, home-1, nil) = %+v, %v; want home-1 and the claimed settings", got, err)
	}
	changed := map[string]string{"audience": "other"}
	if got, err = s.RecordCluster(ctx, "epoch-2", "home-2", changed); err != nil || got.Home != "home-1" || !reflect.DeepEqual(got.Settings, settings) {
		t.Errorf("RecordCluster(epoch-2) = %+v, %v; want nothing changed (the epoch is epoch-1)", got, err)
	}
	if got, err = s.RecordCluster(ctx, "epoch-1", "", changed); err != nil || got.Home != "home-1" || !reflect.DeepEqual(got.Settings, changed) {
		t.Errorf("RecordCluster(epoch-1, \"\", changed) = %+v, %v; want the home kept and the settings replaced", got, err)
	}
	if c, err := s.ClaimCluster(ctx, store.ClusterInfo{Issuer: "x", Epoch: "y"}); err != nil || c.Home != "home-1" || !reflect.DeepEqual(c.Settings, changed) {
		t.Errorf("ClaimCluster after RecordCluster = %+v, %v; want the record kept", c, err)
	}
}

// testResetAfterRestore: a cutoff ends every live session, deletes the
// access token keys (not the event keys), revokes the API keys not kept,
// and records it all, once.
func testResetAfterRestore(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.ClaimCluster(ctx, store.ClusterInfo{Issuer: "https://auth.example", Epoch: "epoch-1", CreatedAt: t0}); err != nil {
		t.Fatalf("ClaimCluster = %v", err)
	}
	create(t, s, newSession("s1", "alice", t0))
	create(t, s, newSession("s2", "bob", t0))
	if _, err := s.RevokeSession(ctx, "s2", t0, t0.Add(accessLife), operator); err != nil {
		t.Fatalf("RevokeSession = %v", err)
	}
	access, events := signingKey("k-access", t0, t0), signingKey("k-events", t0, t0)
	events.Purpose = store.PurposeEvents
	for _, k := range []store.SigningKey{access, events} {
		if err := s.AddKey(ctx, k, operator); err != nil {
			t.Fatalf("AddKey(%s) = %v", k.ID, err)
		}
	}
	addAPIKey(t, s, apiKey("a1", "bootstrap", "secret-boot", "admin"))
	addAPIKey(t, s, apiKey("a2", "app", "secret-app", "admin"))
	now := t0.Add(time.Hour)
	r := store.RestoreReset{OldEpoch: "epoch-1", Epoch: "epoch-2", Home: "home-2", Now: now, Cutoff: true,
		Keep: [][32]byte{hash("secret-boot")}, Actor: store.Actor{By: "system", Reason: "restore"}}
	info, did, err := s.ResetAfterRestore(ctx, r)
	if err != nil {
		t.Fatalf("ResetAfterRestore = %v", err)
	}
	if info.Epoch != "epoch-2" || info.Home != "home-2" || !info.RestoredAt.Equal(now) {
		t.Errorf("ResetAfterRestore info = %+v, want epoch-2, home-2, restored at %v", info, now)
	}
	if !did.Applied || did.Sessions != 1 || did.Keys != 1 || len(did.APIKeys) != 1 || did.APIKeys[0].ID != "a2" {
		t.Errorf("ResetAfterRestore outcome = %+v, want applied, 1 session, 1 key, API key a2", did)
	}
	if sess, _ := session(t, s, "s1"); !sess.RevokedAt.Equal(now) {
		t.Errorf("session s1 revoked at %v, want %v", sess.RevokedAt, now)
	}
	if sess, _ := session(t, s, "s2"); !sess.RevokedAt.Equal(t0) {
		t.Errorf("session s2 revoked at %v, want %v kept", sess.RevokedAt, t0)
	}
	keys, err := s.ListKeys(ctx)
	if err != nil || !reflect.DeepEqual(keyIDs(keys), []string{"k-events"}) {
		t.Errorf("ListKeys after the reset = %v, %v; want only k-events", keyIDs(keys), err)
	}
	if got := apiKeyNames(t, s); !reflect.DeepEqual(got, []string{"bootstrap"}) {
		t.Errorf("live API keys after the reset = %v, want [bootstrap]", got)
	}
	if _, ok := findAudit(t, s, "apikey.revoke", "app (a2)"); !ok {
		t.Errorf("no apikey.revoke audit record for app (a2)")
	}
	r.Epoch = "epoch-3"
	if info, did, err = s.ResetAfterRestore(ctx, r); err != nil || did.Applied || info.Epoch != "epoch-2" {
		t.Errorf("ResetAfterRestore(epoch-1 again) = %+v, %+v, %v; want nothing done, epoch-2 kept", info, did, err)
	}
}

// testResetAfterRestoreKeep: without a cutoff only the epoch and home
// change.
func testResetAfterRestoreKeep(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.ClaimCluster(ctx, store.ClusterInfo{Issuer: "https://auth.example", Epoch: "epoch-1", CreatedAt: t0}); err != nil {
		t.Fatalf("ClaimCluster = %v", err)
	}
	create(t, s, newSession("s1", "alice", t0))
	addAPIKey(t, s, apiKey("a2", "app", "secret-app", "admin"))
	r := store.RestoreReset{OldEpoch: "epoch-1", Epoch: "epoch-2", Home: "home-2", Now: t0, Actor: store.Actor{By: "system", Reason: "restore"}}
	if info, did, err := s.ResetAfterRestore(ctx, r); err != nil || !did.Applied || did.Sessions != 0 || info.Epoch != "epoch-2" {
		t.Fatalf("ResetAfterRestore(no cutoff) = %+v, %+v, %v; want applied, nothing revoked", info, did, err)
	}
	if sess, _ := session(t, s, "s1"); !sess.RevokedAt.IsZero() {
		t.Errorf("session s1 revoked at %v, want live", sess.RevokedAt)
	}
	if got := apiKeyNames(t, s); !reflect.DeepEqual(got, []string{"app"}) {
		t.Errorf("live API keys = %v, want [app]", got)
	}
}

// testReseal: SealedValues lists the signing keys' private keys and the
// streams' push credentials; Reseal replaces those still holding the bytes
// read, and leaves one changed meanwhile alone.
func testReseal(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.AddKey(ctx, signingKey("k1", t0, t0), operator); err != nil {
		t.Fatalf("AddKey = %v", err)
	}
	addStream(t, s, newStream("st1"))
	vs, err := s.SealedValues(ctx)
	if err != nil {
		t.Fatalf("SealedValues() = %v", err)
	}
	want := []store.SealedValue{{Kind: store.SealedSigningKey, ID: "k1", Sealed: []byte("sealed private k1")},
		{Kind: store.SealedStreamAuth, ID: "st1", Sealed: []byte("sealed")}}
	if !reflect.DeepEqual(vs, want) {
		t.Fatalf("SealedValues() = %+v, want %+v", vs, want)
	}
	vs[0].New, vs[1].New = []byte("resealed k1"), []byte("resealed st1")
	stale := store.SealedValue{Kind: store.SealedSigningKey, ID: "k1", Sealed: []byte("not what is stored"), New: []byte("lost")}
	if n, err := s.Reseal(ctx, append(vs, stale)); err != nil || n != 2 {
		t.Fatalf("Reseal() = %d, %v; want 2 replaced", n, err)
	}
	keys, err := s.ListKeys(ctx)
	if err != nil || len(keys) != 1 || string(keys[0].PrivateEnc) != "resealed k1" {
		t.Errorf("ListKeys() after Reseal = %+v, %v; want k1 resealed", keys, err)
	}
	if got := getStream(t, s, "st1"); string(got.AuthHeader) != "resealed st1" {
		t.Errorf("Stream(st1).AuthHeader after Reseal = %q, want resealed st1", got.AuthHeader)
	}
}
