package server_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier"
)

// active asks the authority (RFC 7662) whether an access token is active.
func active(t *testing.T, e *env, at string) bool {
	t.Helper()
	res, err := e.admin.Introspect(ctx(t), at)
	if err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	return res.Active
}

func grantErr(t *testing.T, err error) *client.Error {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "invalid_grant" {
		t.Fatalf("refresh error = %v, want 400 invalid_grant", err)
	}
	return ce
}

func TestCreateVerifyRevoke(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop", Claims: map[string]any{"roles": []string{"admin"}}})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.SessionID == "" || tok.RefreshToken == "" || !tok.AccessExpiresAt.After(e.clock.Now()) {
		t.Fatalf("CreateSession = %+v, want bearer tokens", tok)
	}
	v := e.Authority.Verifier()
	c, err := v.Verify(ctx(t), tok.AccessToken)
	if err != nil {
		t.Fatalf("Verify(new token) = %v, want nil", err)
	}
	if c.Subject() != "alice" || c.SessionID() != tok.SessionID || c.Copy().Extra["roles"] == nil {
		t.Fatalf("claims = %+v, want sub alice, sid %s and roles", c, tok.SessionID)
	}
	header, _, err := token.Inspect(tok.AccessToken)
	if err != nil || header["typ"] != "at+jwt" || header["alg"] != "EdDSA" || header["kid"] == "" {
		t.Fatalf("header = %v (%v), want typ at+jwt, alg EdDSA, kid", header, err)
	}
	if !active(t, e, tok.AccessToken) {
		t.Fatal("introspect(new token) = inactive, want active")
	}
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID, Reason: "lost laptop"}); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	// Same process: rejected as soon as the revoke call has returned.
	if _, err := v.Verify(ctx(t), tok.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("Verify(after revoke) = %v, want ErrRevoked", err)
	}
	if active(t, e, tok.AccessToken) {
		t.Fatal("introspect(after revoke) = active, want inactive")
	}
	_, err = e.anon.Refresh(ctx(t), tok.RefreshToken)
	grantErr(t, err)
	// Revoking again changes nothing and says so.
	r, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID})
	if err != nil || r.Revoked {
		t.Fatalf("second RevokeSession = %+v, %v, want revoked=false", r, err)
	}
}

func TestRefreshRotationAndTheft(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	first, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "bob", Device: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.anon.Refresh(ctx(t), first.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("Refresh returned the same tokens, want new ones")
	}
	// Within the grace window and before the successor is used: the same
	// successor again (a second tab), no theft.
	again, err := e.anon.Refresh(ctx(t), first.RefreshToken)
	if err != nil {
		t.Fatalf("grace replay: %v", err)
	}
	if again.RefreshToken != second.RefreshToken {
		t.Fatal("grace replay returned a different refresh token: the chain forked")
	}
	third, err := e.anon.Refresh(ctx(t), second.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh(successor): %v", err)
	}
	// The successor was used: presenting the first token again is theft.
	_, err = e.anon.Refresh(ctx(t), first.RefreshToken)
	if ce := grantErr(t, err); !strings.Contains(ce.Description, "revoked") {
		t.Fatalf("reuse description = %q, want it to say the session was revoked", ce.Description)
	}
	if active(t, e, third.AccessToken) {
		t.Fatal("access token of a session revoked for reuse is still active")
	}
	_, err = e.anon.Refresh(ctx(t), third.RefreshToken)
	grantErr(t, err)
	if !strings.Contains(e.logs.String(), "reuse detected") {
		t.Fatal("reuse was not logged")
	}
}

func TestRefreshReplayAfterGraceIsTheft(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	first, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "carol"})
	second, err := e.anon.Refresh(ctx(t), first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(11 * time.Second) // default grace is 10 s
	_, err = e.anon.Refresh(ctx(t), first.RefreshToken)
	grantErr(t, err)
	_, err = e.anon.Refresh(ctx(t), second.RefreshToken)
	grantErr(t, err) // the whole session went
}

func TestConcurrentRefreshIsNotTheft(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	first, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "dave"})
	const n = 8
	var wg sync.WaitGroup
	got := make([]client.Tokens, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = e.anon.Refresh(ctx(t), first.RefreshToken) }()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent refresh %d: %v", i, errs[i])
		}
		if got[i].RefreshToken != got[0].RefreshToken {
			t.Fatalf("concurrent refreshes got different successors: the chain forked")
		}
	}
	if _, err := e.anon.Refresh(ctx(t), got[0].RefreshToken); err != nil {
		t.Fatalf("Refresh(successor) = %v, want success: the session must live", err)
	}
}

func TestSubjectCutoffIsExact(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	v := e.Authority.Verifier()
	before, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "erin", Device: "a", Claims: map[string]any{"role": "admin"}})
	other, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "erin", Device: "b", Claims: map[string]any{"role": "admin"}})
	bystander, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "frank"})
	// The clock does not move: cutoff and later tokens share the same second.
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "erin", Scope: "access", Reason: "demoted", Claims: map[string]any{"role": "viewer"}}); err != nil {
		t.Fatalf("RevokeSubject: %v", err)
	}
	for _, at := range []string{before.AccessToken, other.AccessToken} {
		if _, err := v.Verify(ctx(t), at); !errors.Is(err, verifier.ErrRevoked) {
			t.Fatalf("Verify(token issued before cutoff) = %v, want ErrRevoked", err)
		}
	}
	after, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "erin", Device: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx(t), after.AccessToken); err != nil {
		t.Fatalf("Verify(token issued after cutoff, same second) = %v, want nil", err)
	}
	if _, err := v.Verify(ctx(t), bystander.AccessToken); err != nil {
		t.Fatalf("Verify(other subject) = %v, want nil", err)
	}
	// scope=access keeps sessions: the next refresh carries the new claims.
	fresh, err := e.anon.Refresh(ctx(t), before.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh after scope=access cutoff: %v", err)
	}
	c, err := v.Verify(ctx(t), fresh.AccessToken)
	if err != nil || c.Copy().Extra["role"] != "viewer" {
		t.Fatalf("refreshed claims = %v (%v), want role viewer", c, err)
	}
}

func TestSignOutEverywhere(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	var toks []client.Tokens
	for i := range 3 {
		tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "gina", Device: fmt.Sprint("device-", i)})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Second) // "newest first" needs distinct creation times
		toks = append(toks, tk)
	}
	list, err := e.admin.Sessions(ctx(t), "gina")
	if err != nil || len(list) != 3 {
		t.Fatalf("Sessions = %d (%v), want 3", len(list), err)
	}
	if list[0].Device != "device-2" {
		t.Fatalf("Sessions[0].Device = %q, want newest first (device-2)", list[0].Device)
	}
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "gina", Scope: "sessions", Reason: "password changed"}); err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if active(t, e, tk.AccessToken) {
			t.Fatal("access token still active after sign-out everywhere")
		}
		_, err := e.anon.Refresh(ctx(t), tk.RefreshToken)
		grantErr(t, err)
	}
	if list, _ := e.admin.Sessions(ctx(t), "gina"); len(list) != 0 {
		t.Fatalf("Sessions after sign-out everywhere = %d, want 0", len(list))
	}
}

func TestClientRevocation(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, which := range []string{"refresh", "access"} {
		t.Run(which, func(t *testing.T) {
			tk, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "hank", Device: which})
			presented := tk.RefreshToken
			if which == "access" {
				presented = tk.AccessToken
			}
			if _, err := e.anon.RevokeToken(ctx(t), client.TokenRevocation{Token: presented}); err != nil {
				t.Fatalf("RevokeToken: %v", err)
			}
			if active(t, e, tk.AccessToken) {
				t.Fatal("token active after the client revoked its session")
			}
		})
	}
	// RFC 7009: an unknown token is not an error.
	if _, err := e.anon.RevokeToken(ctx(t), client.TokenRevocation{Token: "not-a-token"}); err != nil {
		t.Fatalf("RevokeToken(garbage) = %v, want nil", err)
	}
}

func TestRevocationsExpireFromMemory(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	v := e.Authority.Verifier()
	for i := range 50 {
		tk, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: fmt.Sprint("user-", i)})
		if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tk.SessionID}); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.State().Entries; n != 50 {
		t.Fatalf("entries after 50 revocations = %d, want 50", n)
	}
	// Access tokens live 15 min + 30 s leeway; after that no covered token
	// can be valid and the entries go.
	e.clock.Add(16 * time.Minute)
	e.Authority.Sweep(ctx(t))
	if n := v.State().Entries; n != 0 {
		t.Fatalf("entries after expiry = %d, want 0", n)
	}
	head, err := e.Store.Head(ctx(t))
	if err != nil || head != 50 {
		t.Fatalf("log head after prune = %d, %v, want 50", head, err)
	}
	if left, err := e.Store.EntriesAfter(ctx(t), 0, 100); err != nil || len(left) != 1 || left[0].Seq != 50 {
		t.Fatalf("log after prune = %v, %v, want only the head entry 50", left, err)
	}
}

var tokenInspect = token.Inspect

func TestIdleSessionsAreNotListed(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	if _, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "olga", Device: "old phone"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(29 * 24 * time.Hour)
	if list, _ := e.admin.Sessions(ctx(t), "olga"); len(list) != 1 {
		t.Fatalf("Sessions after 29 idle days = %d, want 1", len(list))
	}
	e.clock.Add(2 * 24 * time.Hour) // past the 30-day refresh idle timeout
	if list, _ := e.admin.Sessions(ctx(t), "olga"); len(list) != 0 {
		t.Fatalf("Sessions after 31 idle days = %+v, want none: the refresh token has idled out", list)
	}
}
