package client_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/token"
)

func admin() *client.Client { return &client.Client{BaseURL: authorityURL, APIKey: adminKey} }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// subject returns a subject of its own for each test, since they share an
// authority.
func subject(t *testing.T) string { return fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()) }

func TestSessionLifecycle(t *testing.T) {
	ctx, c, sub := testCtx(t), admin(), subject(t)
	tok, err := c.CreateSession(ctx, client.SessionRequest{Subject: sub, Device: "laptop",
		Claims: map[string]any{"roles": []string{"editor"}, "scope": "orders:read"}})
	if err != nil {
		t.Fatalf("CreateSession = %v", err)
	}
	if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" || tok.SessionID == "" ||
		!tok.AccessExpiresAt.After(time.Now()) || tok.ExpiresIn <= 0 {
		t.Fatalf("CreateSession = %+v, want a complete set of tokens", tok)
	}
	in, err := c.Introspect(ctx, tok.AccessToken)
	if err != nil || !in.Active || in.Subject != sub || in.SessionID != tok.SessionID || in.ID == "" ||
		!slices.Equal(in.Audience, []string{"tegata"}) || in.Expiry.Unix() != tok.AccessExpiresAt.Unix() ||
		in.Claims["scope"] != "orders:read" || in.Claims["active"] != nil {
		t.Fatalf("Introspect = %+v, %v, want the session's token, active, with its claims", in, err)
	}
	list, err := c.Sessions(ctx, sub)
	if err != nil || len(list) != 1 || list[0].ID != tok.SessionID || list[0].Device != "laptop" {
		t.Fatalf("Sessions = %+v, %v, want the one session", list, err)
	}
	anon := &client.Client{BaseURL: authorityURL}
	next, err := anon.Refresh(ctx, tok.RefreshToken)
	if err != nil || next.SessionID != tok.SessionID || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("Refresh = %+v, %v, want new tokens of the same session", next, err)
	}
	r, err := c.RevokeSession(ctx, client.SessionRevocation{SessionID: tok.SessionID, Reason: "lost phone"})
	if err != nil || !r.Revoked || r.Entry == nil || r.Entry.Seq == 0 || r.Entry.Kind != "session" || r.Entry.SessionID != tok.SessionID {
		t.Fatalf("RevokeSession = %+v, %v, want a session entry", r, err)
	}
	if r, err := c.RevokeSession(ctx, client.SessionRevocation{SessionID: tok.SessionID}); err != nil || r.Revoked || r.Entry != nil {
		t.Errorf("RevokeSession(again) = %+v, %v, want nothing revoked", r, err)
	}
	if in, err := c.Introspect(ctx, next.AccessToken); err != nil || in.Active || in.Subject != "" {
		t.Errorf("Introspect(revoked) = %+v, %v, want inactive and nothing else", in, err)
	}
	if _, err := anon.Refresh(ctx, next.RefreshToken); !errors.Is(err, client.ErrInvalidGrant) {
		t.Errorf("Refresh(revoked session) = %v, want ErrInvalidGrant", err)
	}
}

func TestRevokeSubjectAndToken(t *testing.T) {
	ctx, c, sub := testCtx(t), admin(), subject(t)
	a, err := c.CreateSession(ctx, client.SessionRequest{Subject: sub, Claims: map[string]any{"roles": []string{"admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.RevokeSubject(ctx, client.SubjectRevocation{Subject: sub, Scope: client.ScopeAccess,
		Claims: map[string]any{"roles": []string{"viewer"}}, Reason: "demoted"})
	if err != nil || !r.Revoked || r.Entry.Kind != "subject" || r.Entry.Subject != sub || r.Entry.Generation != 1 {
		t.Fatalf("RevokeSubject(access) = %+v, %v, want a subject entry of generation 1", r, err)
	}
	if in, _ := c.Introspect(ctx, a.AccessToken); in.Active {
		t.Error("the access token issued before the cutoff is still active")
	}
	b, err := c.Refresh(ctx, a.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh after an access cutoff = %v, want new tokens (the session lives)", err)
	}
	if in, _ := c.Introspect(ctx, b.AccessToken); !in.Active || in.Generation != 1 || fmt.Sprint(in.Claims["roles"]) != "[viewer]" {
		t.Errorf("Introspect(after the cutoff) = %+v, want active with the new roles", in)
	}
	if _, err := (&client.Client{BaseURL: authorityURL}).RevokeToken(ctx, client.TokenRevocation{Token: b.RefreshToken}); err != nil {
		t.Fatalf("RevokeToken = %v", err)
	}
	if in, _ := c.Introspect(ctx, b.AccessToken); in.Active {
		t.Error("the access token is active after RevokeToken")
	}
	if _, err := c.RevokeToken(ctx, client.TokenRevocation{Token: "not-a-token"}); err != nil {
		t.Errorf("RevokeToken(garbage) = %v, want nil (RFC 7009)", err)
	}
}

// TestErrorCodes: each refusal is an *Error that errors.Is matches to the
// sentinel of its code, and to no other.
func TestErrorCodes(t *testing.T) {
	ctx, c := testCtx(t), admin()
	feedKey, err := c.CreateAPIKey(ctx, client.APIKeyRequest{Name: subject(t), Role: client.RoleFeed})
	if err != nil {
		t.Fatal(err)
	}
	feed := &client.Client{BaseURL: authorityURL, APIKey: feedKey.Key}
	keys, err := c.APIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"malformed request", func() error { _, err := c.CreateSession(ctx, client.SessionRequest{}); return err }, client.ErrInvalidRequest},
		{"no API key", func() error {
			_, err := (&client.Client{BaseURL: authorityURL}).Sessions(ctx, "x")
			return err
		}, client.ErrInvalidRequest},
		{"spent refresh token", func() error { _, err := c.Refresh(ctx, "tgr_unknown"); return err }, client.ErrInvalidGrant},
		{"wrong API key", func() error {
			_, err := (&client.Client{BaseURL: authorityURL, APIKey: "tgk_wrong"}).Sessions(ctx, "x")
			return err
		}, client.ErrInvalidToken},
		{"feed key creating a session", func() error {
			_, err := feed.CreateSession(ctx, client.SessionRequest{Subject: "x"})
			return err
		}, client.ErrInsufficientScope},
		{"unknown session", func() error {
			_, err := c.RevokeSession(ctx, client.SessionRevocation{SessionID: "no-such-session"})
			return err
		}, client.ErrNotFound},
		{"the last admin key", func() error {
			for _, k := range keys {
				if k.Role == client.RoleAdmin {
					return c.RevokeAPIKey(ctx, client.APIKeyRevocation{ID: k.ID})
				}
			}
			return nil
		}, client.ErrConflict},
	}
	all := []error{client.ErrInvalidRequest, client.ErrInvalidGrant, client.ErrInvalidToken, client.ErrInsufficientScope,
		client.ErrNotFound, client.ErrConflict, client.ErrRateLimited, client.ErrUnavailable, client.ErrServer}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Description == "" {
				t.Fatalf("error = %v, want an *Error with a description", err)
			}
			for _, s := range all {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
		})
	}
}

func TestRateLimitedCarriesRetryAfter(t *testing.T) {
	ctx, c, sub := testCtx(t), admin(), subject(t)
	for range 100 {
		_, err := c.CreateSession(ctx, client.SessionRequest{Subject: sub})
		if err == nil {
			continue
		}
		var ce *client.Error
		if !errors.Is(err, client.ErrRateLimited) || !errors.As(err, &ce) || ce.RetryAfter <= 0 {
			t.Fatalf("CreateSession past the per-subject limit = %v, want ErrRateLimited with a RetryAfter", err)
		}
		return
	}
	t.Fatal("100 sessions for one subject at once: none refused")
}

// TestNotTheAPI: an answer that is not the API's JSON (a proxy's error
// page) still becomes an *Error, with its text.
func TestNotTheAPI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := (&client.Client{BaseURL: srv.URL}).Sessions(testCtx(t), "x")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 502 || ce.Description != "<html>bad gateway</html>" ||
		!errors.Is(err, client.ErrServer) || ce.RetryAfter != 7*time.Second {
		t.Fatalf("Sessions via a failing proxy = %#v, want a 502 server_error with the page's text and RetryAfter 7s", err)
	}
}

func TestOperatorEndpoints(t *testing.T) {
	authorityURL, c := ownAuthority(t)
	ctx := testCtx(t)
	if err := (&client.Client{BaseURL: authorityURL}).Healthy(ctx); err != nil {
		t.Errorf("Healthy = %v, want nil", err)
	}
	if err := (&client.Client{BaseURL: authorityURL + "/nowhere"}).Healthy(ctx); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Healthy(not an authority) = %v, want ErrNotFound", err)
	}
	d, err := c.Discovery(ctx)
	if err != nil || d.Issuer != authorityURL || d.Audience != "tegata" || d.Algorithm != token.EdDSA || d.MaxLifetime != 900 ||
		d.JWKSURI != authorityURL+"/.well-known/jwks.json" {
		t.Fatalf("Discovery = %+v, %v", d, err)
	}
	ks, err := c.KeySet(ctx)
	if err != nil || len(ks.Keys()) == 0 {
		t.Fatalf("KeySet = %v, %v, want the published keys", ks, err)
	}
	keys, err := c.Keys(ctx)
	if err != nil || len(keys) == 0 || keys[0].ID != ks.Keys()[0].ID {
		t.Fatalf("Keys = %+v, %v, want the published key first", keys, err)
	}
	k, err := c.RotateKey(ctx, "client test")
	if err != nil || k.ID == "" || k.Algorithm != token.EdDSA || !k.SignFrom.After(time.Now()) {
		t.Fatalf("RotateKey = %+v, %v, want a pending EdDSA key", k, err)
	}
	all, err := c.Audit(ctx, client.AuditQuery{})
	records := all.Records
	if err != nil || len(records) == 0 || all.NextAfter != 0 {
		t.Fatalf("Audit = %+v, %v, want records and no next page", all, err)
	}
	last := records[len(records)-1]
	if last.Action != "key.add" || last.Target != k.ID || last.Reason != "client test" || last.By == "" {
		t.Errorf("last audit record = %+v, want the rotation", last)
	}
	page, err := c.Audit(ctx, client.AuditQuery{After: last.ID - 1, Limit: 1})
	if err != nil || len(page.Records) != 1 || page.Records[0].ID != last.ID || page.NextAfter != 0 {
		t.Errorf("Audit(after %d, limit 1) = %+v, %v, want the last record and no next page", last.ID-1, page, err)
	}
	if len(records) > 1 {
		page, err = c.Audit(ctx, client.AuditQuery{Limit: 1})
		if err != nil || len(page.Records) != 1 || page.NextAfter != page.Records[0].ID {
			t.Errorf("Audit(limit 1) of %d records = %+v, %v, want one record and next_after its id", len(records), page, err)
		}
	}
}

func TestAPIKeys(t *testing.T) {
	ctx, c := testCtx(t), admin()
	k, err := c.CreateAPIKey(ctx, client.APIKeyRequest{Name: subject(t), Role: client.RoleAdmin, Reason: "test"})
	if err != nil || k.Key == "" || k.ID == "" || k.Role != client.RoleAdmin {
		t.Fatalf("CreateAPIKey = %+v, %v", k, err)
	}
	list, err := c.APIKeys(ctx)
	i := slices.IndexFunc(list, func(x client.APIKey) bool { return x.ID == k.ID })
	if err != nil || i < 0 || list[i].Key != "" || list[i].Name != k.Name {
		t.Fatalf("APIKeys = %+v, %v, want the new key without its secret", list, err)
	}
	if err := c.RevokeAPIKey(ctx, client.APIKeyRevocation{ID: k.ID, Reason: "test"}); err != nil {
		t.Fatalf("RevokeAPIKey = %v", err)
	}
	if _, err := (&client.Client{BaseURL: authorityURL, APIKey: k.Key}).APIKeys(ctx); !errors.Is(err, client.ErrInvalidToken) {
		t.Errorf("APIKeys with the revoked key = %v, want ErrInvalidToken", err)
	}
}

func TestTokenSource(t *testing.T) {
	ctx, c := testCtx(t), admin()
	start, err := c.CreateSession(ctx, client.SessionRequest{Subject: subject(t)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var refreshed []client.Tokens
	onRefresh := func(t client.Tokens) { mu.Lock(); refreshed = append(refreshed, t); mu.Unlock() }

	fresh := c.TokenSource(start, client.TokenSourceOptions{OnRefresh: onRefresh})
	if at, err := fresh.Token(ctx); err != nil || at != start.AccessToken || len(refreshed) != 0 {
		t.Fatalf("Token(fresh) = %q, %v after %d refreshes, want the token it holds, no refresh", at, err, len(refreshed))
	}
	// Due: expiring within Early, here always. Eight callers at once must
	// refresh one after the other: two refreshes with the same refresh
	// token would be answered with the same successor (grace) or end the
	// session (theft), so every refresh must hand out a new one.
	due := c.TokenSource(start, client.TokenSourceOptions{Early: time.Hour, OnRefresh: onRefresh})
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			var err error
			if got[i], err = due.Token(ctx); err != nil {
				t.Errorf("Token(due) = %v", err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	seen := map[string]bool{start.RefreshToken: true}
	for _, r := range refreshed {
		if seen[r.RefreshToken] {
			t.Errorf("a refresh handed out refresh token %q twice: refreshes ran concurrently", r.RefreshToken)
		}
		seen[r.RefreshToken] = true
	}
	n := len(refreshed)
	mu.Unlock()
	if n != len(got) || due.Tokens().RefreshToken != refreshed[n-1].RefreshToken {
		t.Fatalf("%d refreshes for %d due calls, holding %+v, want one each and the last one held", n, len(got), due.Tokens())
	}
	if in, err := c.Introspect(ctx, due.Tokens().AccessToken); err != nil || !in.Active {
		t.Fatalf("the session after concurrent Token calls: %+v, %v, want active (no theft detected)", in, err)
	}
	if _, err := c.RevokeSession(ctx, client.SessionRevocation{SessionID: start.SessionID}); err != nil {
		t.Fatal(err)
	}
	if _, err := due.Token(ctx); !errors.Is(err, client.ErrInvalidGrant) {
		t.Errorf("Token after the session was revoked = %v, want ErrInvalidGrant", err)
	}
}

// TestRetryAfterForms: a Retry-After too large for a time.Duration
// saturates instead of wrapping into a negative or short wait, and the
// HTTP-date form (RFC 9110 §10.2.3) is read as the wait until then.
func TestRetryAfterForms(t *testing.T) {
	for _, tc := range []struct {
		header string
		ok     func(time.Duration) bool
		want   string
	}{
		{"9223372036854775807", func(d time.Duration) bool { return d == time.Duration(math.MaxInt64) }, "the longest Duration"},
		{"99999999999999999999999", func(d time.Duration) bool { return d == time.Duration(math.MaxInt64) }, "the longest Duration"},
		{"99999999999", func(d time.Duration) bool { return d == time.Duration(math.MaxInt64) }, "the longest Duration"},
		{"30", func(d time.Duration) bool { return d == 30*time.Second }, "30s"},
		{"-5", func(d time.Duration) bool { return d == 0 }, "0"},
		{"soon", func(d time.Duration) bool { return d == 0 }, "0"},
		{time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), func(d time.Duration) bool { return d > 58*time.Minute && d <= time.Hour }, "about an hour"},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), func(d time.Duration) bool { return d == 0 }, "0 (a date past)"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", tc.header)
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}))
		_, err := (&client.Client{BaseURL: srv.URL}).Sessions(testCtx(t), "x")
		srv.Close()
		var ce *client.Error
		if !errors.As(err, &ce) || !tc.ok(ce.RetryAfter) {
			t.Errorf("Retry-After %q: RetryAfter = %v (err %v), want %s", tc.header, ce.RetryAfter, err, tc.want)
		}
	}
}
