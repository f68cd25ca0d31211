package console_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/verifier"
)

// TestConsoleTokensHaveTheirOwnAudience: a console session's access tokens,
// at sign-in and after refresh, carry authority.ConsoleAudience, never the
// apps' audience. An app's verifier following the node, and a gate on it,
// refuse them with the audience error; introspection calls them not
// active. The console goes on working with them (pages, refresh, sign
// out), RFC 7009 revocation of one ends its session, and the console
// refuses an app's token.
func TestConsoleTokensHaveTheirOwnAudience(t *testing.T) {
	t.Parallel()
	backends(t, nil, func(t *testing.T, e *env) {
		b := e.signedIn(t)
		at := b.cookies["__Host-tegata-console"]
		wantAudience(t, "the sign-in's access token", at, authority.ConsoleAudience)
		user, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		wantAudience(t, "a user's access token", user.AccessToken, authority.DefaultAudience)

		gk, err := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "app", Role: "gate"})
		if err != nil {
			t.Fatal(err)
		}
		v, err := verifier.New(ctx(t), verifier.Config{Authorities: []string{e.URL}, APIKey: gk.Key, Logger: quiet})
		if err != nil {
			t.Fatalf("verifier.New: %v", err)
		}
		t.Cleanup(func() { _ = v.Close() })
		if err := v.WaitReady(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(ctx(t), user.AccessToken); err != nil {
			t.Fatalf("app verifier: Verify(user token) = %v, want it accepted", err)
		}
		if _, err := v.Verify(ctx(t), at); !errors.Is(err, verifier.ErrAudience) {
			t.Errorf("app verifier: Verify(console token) = %v, want %v", err, verifier.ErrAudience)
		}
		if n := gateRefusals(t, v, at); n != 1 {
			t.Errorf("gate: %v refusals for audience of the console token, want 1", n)
		}
		gc := &client.Client{BaseURL: e.URL, APIKey: gk.Key}
		for name, tok := range map[string]string{"console": at, "user": user.AccessToken} {
			in, err := gc.Introspect(ctx(t), tok)
			if err != nil || in.Active != (name == "user") {
				t.Errorf("Introspect(%s token) = active %v, %v; want active only for the user's", name, in.Active, err)
			}
		}

		wantStatus(t, "users page", b.get("/console/users"), http.StatusOK)
		e.clock.Add(2 * time.Minute) // due for refresh
		wantStatus(t, "overview when due for refresh", b.get("/console/"), http.StatusOK)
		refreshed := b.cookies["__Host-tegata-console"]
		if refreshed == at {
			t.Fatal("the console did not refresh its access token")
		}
		wantAudience(t, "the refreshed access token", refreshed, authority.ConsoleAudience)
		if _, err := e.Authority.Verifier().Verify(ctx(t), refreshed); !errors.Is(err, verifier.ErrAudience) {
			t.Errorf("the node's app verifier: Verify(refreshed console token) = %v, want %v", err, verifier.ErrAudience)
		}
		wantStatus(t, "sign out", b.post("/console/logout", nil), http.StatusSeeOther)
		wantStatus(t, "overview after signing out", b.get("/console/"), http.StatusSeeOther)

		b = e.signedIn(t)
		anon := &client.Client{BaseURL: e.URL}
		if _, err := anon.RevokeToken(ctx(t), client.TokenRevocation{Token: b.cookies["__Host-tegata-console"]}); err != nil {
			t.Fatalf("RevokeToken(console access token) = %v", err)
		}
		wantStatus(t, "overview after its access token was revoked", b.get("/console/"), http.StatusSeeOther)

		user, err = e.admin.Refresh(ctx(t), user.RefreshToken) // issued on the node's clock
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Authority.ConsoleVerifier().Verify(ctx(t), user.AccessToken); !errors.Is(err, verifier.ErrAudience) {
			t.Errorf("ConsoleVerifier().Verify(user token) = %v, want %v", err, verifier.ErrAudience)
		}
		app := newBrowser(t, e.ConsoleURL)
		app.cookies["__Host-tegata-console"] = user.AccessToken
		res := app.get("/console/")
		wantStatus(t, "overview with an app's token", res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/console/login?") {
			t.Errorf("an app's token sent to %q, want the sign-in page", loc)
		}
	})
}

// gateRefusals asks a forward-auth gate on v about a bearer token, which
// it must refuse, and returns its count of refusals for the audience.
func gateRefusals(t *testing.T, v *verifier.Verifier, tok string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	g, err := gate.New(v, gate.Config{Metrics: reg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	req, err := http.NewRequest("GET", srv.URL+gate.PathAuth, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("gate: GET %s with the token = %d, want 401", gate.PathAuth, res.StatusCode)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tegata_gate_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if l := m.GetLabel(); len(l) == 1 && l[0].GetValue() == "audience" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// payload decodes a token's claims, unverified.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token of %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func wantAudience(t *testing.T, what, tok, want string) {
	t.Helper()
	if got := payload(t, tok)["aud"]; got != want {
		t.Errorf("%s: aud %v, want %q", what, got, want)
	}
}

// TestConsoleSessionsNotSignalled: a Shared Signals receiver hears of
// users' sessions ending, never of the operator console's (a sign-out, an
// API key's sessions ended).
func TestConsoleSessionsNotSignalled(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	fk, err := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "receiver", Role: "feed"})
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	body := json.RawMessage(`{"delivery":{"method":"urn:ietf:rfc:8936"},"tegata_poll_key":"` + fk.ID + `"}`)
	if err := e.admin.Do(ctx(t), "POST", "/ssf/streams", body, &st); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	b := e.signedIn(t)
	wantStatus(t, "sign out", b.post("/console/logout", nil), http.StatusSeeOther)
	b = e.signedIn(t)
	sub := consoleSubject(t, e)
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: sub, Scope: client.ScopeSessions}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "overview after the key's sessions ended", b.get("/console/"), http.StatusSeeOther)
	user, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: user.SessionID}); err != nil {
		t.Fatal(err)
	}

	var out struct {
		Sets map[string]string `json:"sets"`
	}
	rx := &client.Client{BaseURL: e.URL, APIKey: fk.Key}
	if err := rx.Do(ctx(t), "POST", "/ssf/poll/"+st["stream_id"].(string), map[string]any{"returnImmediately": true}, &out); err != nil {
		t.Fatalf("poll: %v", err)
	}
	var about []string
	for _, set := range out.Sets {
		sub, _ := json.Marshal(payload(t, set)["sub_id"])
		about = append(about, string(sub))
	}
	if len(about) != 1 || !strings.Contains(about[0], `"sub":"alice"`) || strings.Contains(about[0], "tegata-console") {
		t.Errorf("SETs about %v, want one, about alice's session", about)
	}
}
