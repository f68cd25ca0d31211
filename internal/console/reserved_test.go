package console_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/console"
)

// TestConsoleSessionOnlyThroughConsole: a console session's refresh token
// is refused by the public refresh endpoint, with or without an API key,
// with a DBSC proof or without, with a clear invalid_grant that spends and
// revokes nothing, so the console refreshes it next as before. A gate key
// neither reads nor binds a console session (an admin key reads it), and
// still revokes it. The console refreshes no other session.
func TestConsoleSessionOnlyThroughConsole(t *testing.T) {
	t.Parallel()
	backends(t, nil, func(t *testing.T, e *env) {
		b := e.signedIn(t)
		rt := b.cookies["__Host-tegata-console-refresh"]
		ss := consoleSessions(t, e, console.SubjectPrefix)
		if rt == "" || len(ss) != 1 {
			t.Fatalf("after sign-in: refresh cookie %q, %d console sessions; want one of each", rt, len(ss))
		}
		sid := ss[0].ID
		sub := consoleSubject(t, e)
		gk, err := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "web-gate", Role: "gate"})
		if err != nil {
			t.Fatal(err)
		}
		anon := &client.Client{BaseURL: e.URL}
		gate := &client.Client{BaseURL: e.URL, APIKey: gk.Key}

		refreshes := []struct {
			name string
			call func() error
		}{
			{"without an API key", func() error { _, err := anon.Refresh(ctx(t), rt); return err }},
			{"with a gate key", func() error { _, err := gate.Refresh(ctx(t), rt); return err }},
			{"with an admin key", func() error { _, err := e.admin.Refresh(ctx(t), rt); return err }},
			{"with a DBSC proof", func() error { _, err := gate.RefreshDBSC(ctx(t), rt, "not.a.proof"); return err }},
		}
		for _, r := range refreshes {
			err := r.call()
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest || ce.Code != "invalid_grant" ||
				!strings.Contains(ce.Description, "console") {
				t.Errorf("refresh of the console session %s = %v, want 400 invalid_grant naming the console", r.name, err)
			}
		}

		wantAPIError(t, "GET /v1/sessions/{sid} with a gate key", func() error { _, err := gate.Session(ctx(t), sid); return err }, http.StatusForbidden)
		wantAPIError(t, "GET /v1/subjects/{sub}/sessions with a gate key", func() error { _, err := gate.Sessions(ctx(t), sub); return err }, http.StatusForbidden)
		for name, c := range map[string]*client.Client{"gate": gate, "admin": e.admin} {
			wantAPIError(t, "bind with a "+name+" key", func() error {
				_, err := c.BindSession(ctx(t), client.BindRequest{SessionID: sid, Kind: client.BindingDBSC, JWK: publicJWK(t), RefreshToken: rt})
				return err
			}, http.StatusBadRequest)
		}
		if s, err := e.admin.Session(ctx(t), sid); err != nil || s.Binding != nil {
			t.Errorf("admin Session(%q) = %+v, %v; want the unbound session", sid, s, err)
		}

		e.clock.Add(2 * time.Minute) // due for the console's own refresh
		wantStatus(t, "overview after the refused refreshes", b.get("/console/"), http.StatusOK)
		if b.cookies["__Host-tegata-console-refresh"] == rt {
			t.Errorf("the console did not rotate the refresh token")
		}
		if got := consoleSessions(t, e, console.SubjectPrefix); len(got) != 1 || got[0].ID != sid {
			t.Errorf("console sessions after the refused refreshes = %+v, want %q alone", got, sid)
		}

		user, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Authority.RefreshWith(ctx(t), authority.RefreshRequest{RefreshToken: user.RefreshToken, Console: true})
		var ae *authority.Error
		if !errors.As(err, &ae) || ae.Code != authority.CodeInvalidGrant {
			t.Errorf("a console refresh of a user's session = %v, want invalid_grant", err)
		}
		if _, err := anon.Refresh(ctx(t), user.RefreshToken); err != nil {
			t.Errorf("the user's refresh after the console's refused one = %v, want new tokens", err)
		}

		if _, err := gate.RevokeSession(ctx(t), client.SessionRevocation{SessionID: sid, Reason: "gate"}); err != nil {
			t.Errorf("a gate key revoking the console session = %v, want it revoked", err)
		}
		wantStatus(t, "overview after the gate revoked the session", b.get("/console/"), http.StatusSeeOther)
	})
}

// consoleSubject is the subject of the one API key with a console
// session.
func consoleSubject(t *testing.T, e *env) string {
	t.Helper()
	keys, err := e.admin.APIKeys(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if ss, err := e.admin.Sessions(ctx(t), console.SubjectPrefix+k.ID); err == nil && len(ss) > 0 {
			return console.SubjectPrefix + k.ID
		}
	}
	t.Fatal("no API key has a console session")
	return ""
}

func wantAPIError(t *testing.T, what string, call func() error, status int) {
	t.Helper()
	var ce *client.Error
	if err := call(); !errors.As(err, &ce) || ce.Status != status {
		t.Errorf("%s = %v, want %d", what, err, status)
	}
}

// publicJWK is a fresh P-256 public key as a JWK.
func publicJWK(t *testing.T) json.RawMessage {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y
	enc := base64.RawURLEncoding.EncodeToString
	b, err := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "x": enc(raw[1:33]), "y": enc(raw[33:])})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
