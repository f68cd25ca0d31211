package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/verifier"
)

// follow starts a verifier named name following e and waits until it is
// ready.
func follow(t *testing.T, e *env, name string) *verifier.Verifier {
	t.Helper()
	v, err := verifier.New(ctx(t), verifier.Config{Authorities: []string{e.URL}, APIKey: e.APIKey, Name: name,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.WaitReady(ctx(t)); err != nil {
		t.Fatalf("WaitReady: %v (%+v)", err, v.State())
	}
	return v
}

// TestConfirmedRevocationSingleNode: on embedded SQLite, a revocation with
// ?confirm= returns once every verifier has it, and the list names them.
func TestConfirmedRevocationSingleNode(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	vs := []*verifier.Verifier{follow(t, e, "api-1"), follow(t, e, "api-2")}
	list, err := e.admin.Verifiers(ctx(t))
	if err != nil {
		t.Fatalf("Verifiers: %v", err)
	}
	names := map[string]client.Verifier{}
	for _, v := range list.Verifiers {
		names[v.Name] = v
	}
	for i, name := range []string{"api-1", "api-2"} {
		got, ok := names[name]
		if !ok || got.ID != vs[i].State().ID || got.NodeURL != e.URL || got.StaleAfterMS != 10_000 {
			t.Fatalf("Verifiers()[%s] = %+v (ok %v), want id %s following %s", name, got, ok, vs[i].State().ID, e.URL)
		}
	}

	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID, Reason: "test", Confirm: 5 * time.Second})
	if err != nil {
		t.Fatalf("RevokeSession(Confirm 5s): %v", err)
	}
	c := r.Confirmation
	if c == nil || !c.InForce || c.Confirmed != 2 || len(c.Pending) != 0 {
		t.Fatalf("confirmation = %+v, want in force on 2 verifiers", c)
	}
	for i, v := range vs {
		if _, err := v.Verify(context.Background(), tok.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
			t.Errorf("verifier %d: Verify right after the confirmed revocation = %v, want ErrRevoked", i, err)
		}
	}

	// Already revoked: nothing new, still confirmed (the earlier entry is
	// below the head).
	r, err = e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID, Reason: "again", Confirm: time.Second})
	if err != nil || r.Revoked || r.Confirmation == nil || !r.Confirmation.InForce {
		t.Fatalf("revoking again with confirm = %+v, %v; want revoked false, in force", r, err)
	}
	// The bulk endpoint confirms its last entry.
	tok3, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "carol"})
	bulk, err := e.admin.RevokeMany(ctx(t), client.BulkRevocation{Items: []client.RevokeItem{{SessionID: tok3.SessionID}},
		Confirm: 5 * time.Second})
	if err != nil {
		t.Fatalf("RevokeMany(Confirm 5s): %v", err)
	}
	if c := bulk.Confirmation; c == nil || !c.InForce || c.Confirmed != 2 {
		t.Fatalf("bulk revocation with confirm: confirmation %+v, want in force on 2", c)
	}
	for i, v := range vs {
		if _, err := v.Verify(context.Background(), tok3.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
			t.Errorf("verifier %d after the confirmed bulk revocation: Verify = %v, want ErrRevoked", i, err)
		}
	}
	// So does RFC 7009 revocation, with an admin key.
	tok4, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "carol"})
	if c, err := e.admin.RevokeToken(ctx(t), client.TokenRevocation{Token: tok4.RefreshToken, Confirm: 5 * time.Second}); err != nil || c == nil || !c.InForce || c.Confirmed != 2 {
		t.Fatalf("RevokeToken(Confirm 5s) = %+v, %v; want in force on 2", c, err)
	}
	for i, v := range vs {
		if _, err := v.Verify(context.Background(), tok4.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
			t.Errorf("verifier %d after the confirmed token revocation: Verify = %v, want ErrRevoked", i, err)
		}
	}
	// The metrics count the verifiers by state and the confirmed calls.
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`tegata_verifiers{state="current"} 2`, `tegata_verifiers{state="stale"} 0`,
		`tegata_verifiers_worst_lag_entries 0`, `tegata_confirm_total{outcome="in_force"} 4`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /metrics lacks %q:\n%s", want, body)
		}
	}
	// Without confirm nothing changes.
	tok2, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "carol"})
	if r, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok2.SessionID, Reason: ""}); err != nil || r.Confirmation != nil || !r.Revoked {
		t.Fatalf("RevokeSession without confirm = %+v, %v; want revoked, no confirmation", r, err)
	}
}

func TestConfirmBadInput(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "dave"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, key, body, ctype string
		status                       int
	}{
		{"not a duration", "/v1/sessions/" + tok.SessionID + "/revoke?confirm=soon", e.APIKey, "{}", "application/json", 400},
		{"negative", "/v1/subjects/dave/revoke?confirm=-1s", e.APIKey, "{}", "application/json", 400},
		{"twice", "/v1/subjects/dave/revoke?confirm=1s&confirm=2s", e.APIKey, "{}", "application/json", 400},
		{"token revoke without a key", "/v1/token/revoke?confirm=1s", "", "token=" + tok.AccessToken, "application/x-www-form-urlencoded", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, b := postAs(t, e.URL+tt.path, tt.key, tt.ctype, tt.body)
			if status != tt.status || !strings.Contains(b, `"error"`) {
				t.Errorf("POST %s = %d %s, want %d with a JSON error", tt.path, status, b, tt.status)
			}
		})
	}
	// Nothing was revoked by the refused calls.
	if !active(t, e, tok.AccessToken) {
		t.Errorf("token inactive after refused calls, want active")
	}
	// confirm on a public endpoint authenticates as every keyed route
	// does: a role without access gets the challenge, and failed guesses
	// count against the address.
	feedKey := createKey(t, e.admin, "edge", authority.RoleFeed)
	resp, _ := postResp(t, e.URL+"/v1/token/revoke?confirm=1s", feedKey.Key, "application/x-www-form-urlencoded", "token=x")
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusForbidden || !strings.Contains(ch, `error="insufficient_scope"`) {
		t.Errorf("confirm with a feed key = %d, WWW-Authenticate %q; want 403 with an insufficient_scope challenge", resp.StatusCode, ch)
	}
	for i := 0; ; i++ {
		status, b := postAs(t, e.URL+"/v1/token/revoke?confirm=1s", "tgk_guess", "application/x-www-form-urlencoded", "token=x")
		if status == http.StatusTooManyRequests {
			break
		}
		if status != http.StatusUnauthorized || i > 30 {
			t.Fatalf("confirm with a wrong key #%d = %d %s, want 401 until 429", i, status, b)
		}
	}
	// With the admin key, token revocation confirms too.
	status, b := postAs(t, e.URL+"/v1/token/revoke?confirm=2s", e.APIKey, "application/x-www-form-urlencoded", "token="+tok.AccessToken)
	if status != 200 || !strings.Contains(b, `"in_force":true`) {
		t.Errorf("POST /v1/token/revoke?confirm=2s with the admin key = %d %s, want 200 in force", status, b)
	}
}

// postAs posts body to url with key (none if empty) and returns the
// answer's status and body.
func postAs(t *testing.T, url, key, ctype, body string) (int, string) {
	t.Helper()
	resp, b := postResp(t, url, key, ctype, body)
	return resp.StatusCode, b
}

// postResp is postAs returning the answer itself (its body read and
// closed) with the body.
func postResp(t *testing.T, url, key, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
