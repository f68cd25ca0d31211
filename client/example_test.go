package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/verifier"
)

// An app backend signs a user in once it has checked their password (or
// passkey, or SSO): the tokens go to the user's client, the verifiers check
// the access token locally.
func ExampleClient_CreateSession() {
	// authorityURL and adminKey: where the authority runs and an admin API
	// key (tegata apikeys create --name my-backend).
	c := &client.Client{BaseURL: authorityURL, APIKey: adminKey}
	ctx := context.Background()
	t, err := c.CreateSession(ctx, client.SessionRequest{
		Subject: "user-42",
		Device:  "Firefox on laptop",
		Claims:  map[string]any{"roles": []string{"editor"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	in, err := c.Introspect(ctx, t.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.TokenType, in.Active, in.Subject, in.Claims["roles"])
	// Output: Bearer true user-42 [editor]
}

// Signing a user out of one device takes effect at every verifier at once;
// the session's refresh token stops working too.
func ExampleClient_RevokeSession() {
	c := &client.Client{BaseURL: authorityURL, APIKey: adminKey}
	ctx := context.Background()
	t, err := c.CreateSession(ctx, client.SessionRequest{Subject: "user-7", Device: "phone"})
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.RevokeSession(ctx, client.SessionRevocation{SessionID: t.SessionID, Reason: "lost phone"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("revoked:", r.Revoked)
	_, err = c.Refresh(ctx, t.RefreshToken)
	fmt.Println("refresh refused:", errors.Is(err, client.ErrInvalidGrant))
	// Output:
	// revoked: true
	// refresh refused: true
}

// A role change that must take effect now without signing the user out:
// every access token issued before is refused, and the next refresh carries
// the new roles.
func ExampleClient_RevokeSubject() {
	c := &client.Client{BaseURL: authorityURL, APIKey: adminKey}
	ctx := context.Background()
	t, err := c.CreateSession(ctx, client.SessionRequest{Subject: "user-9", Claims: map[string]any{"roles": []string{"admin"}}})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.RevokeSubject(ctx, client.SubjectRevocation{Subject: "user-9", Scope: client.ScopeAccess,
		Claims: map[string]any{"roles": []string{"viewer"}}, Reason: "demoted"})
	if err != nil {
		log.Fatal(err)
	}
	old, _ := c.Introspect(ctx, t.AccessToken)
	next, err := c.Refresh(ctx, t.RefreshToken)
	if err != nil {
		log.Fatal(err)
	}
	now, _ := c.Introspect(ctx, next.AccessToken)
	fmt.Println(old.Active, now.Active, now.Claims["roles"])
	// Output: false true [viewer]
}

// A Go program that holds a session itself (a command-line tool signed in
// as its user) gets a current access token from a TokenSource, which
// refreshes it shortly before it expires and reports each new refresh token
// so the program can store it.
func ExampleTokenSource() {
	c := &client.Client{BaseURL: authorityURL, APIKey: adminKey}
	ctx := context.Background()
	t, err := c.CreateSession(ctx, client.SessionRequest{Subject: "user-3", Device: "cli"})
	if err != nil {
		log.Fatal(err)
	}
	// A TokenSource needs no API key: the refresh token is the credential.
	user := &client.Client{BaseURL: authorityURL}
	ts := user.TokenSource(t, client.TokenSourceOptions{
		OnRefresh: func(t client.Tokens) { /* store t.RefreshToken */ },
	})
	at, err := ts.Token(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(at == t.AccessToken) // still fresh: no refresh
	// Output: true
}

// A DPoP client (a CLI holding its own key) calls an API that asks for
// server nonces (verifier.Config DPoPNonce, tegata gate --dpop-nonce)
// through an http.Client built on the TokenSource's Transport: the first
// request is refused with use_dpop_nonce and retried with the nonce by
// the Transport, with the same body; the following ones carry the nonce
// from the start.
func ExampleTokenSource_Transport() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // kept on the device
	if err != nil {
		log.Fatal(err)
	}
	jkt, err := client.Thumbprint(key.Public())
	if err != nil {
		log.Fatal(err)
	}
	backend := &client.Client{BaseURL: authorityURL, APIKey: adminKey}
	ctx := context.Background()
	t, err := backend.CreateSession(ctx, client.SessionRequest{Subject: "user-5", Device: "cli", DPoPJKT: jkt})
	if err != nil {
		log.Fatal(err)
	}

	// The API: the verifier middleware, asking proofs for its nonces.
	api := httptest.NewUnstartedServer(nil)
	apiURL := "http://" + api.Listener.Addr().String()
	v, err := verifier.New(ctx, verifier.Config{Authorities: []string{authorityURL}, APIKey: adminKey,
		PublicURL: apiURL, DPoPNonce: 5 * time.Minute, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	if err := v.WaitReady(ctx); err != nil { // the revocation feed is followed
		log.Fatal(err)
	}
	api.Config.Handler = v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.FromContext(r.Context())
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s ordered %s", c.Subject(), b)
	}))
	api.Start()
	defer api.Close()

	// The client.
	ts := (&client.Client{BaseURL: authorityURL}).TokenSource(t, client.TokenSourceOptions{DPoP: key})
	hc := &http.Client{Transport: ts.Transport(nil)}
	for _, item := range []string{"tea", "rice"} {
		res, err := hc.Post(apiURL+"/orders", "text/plain", strings.NewReader(item))
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Println(res.StatusCode, string(b))
	}
	// Output:
	// 200 user-5 ordered tea
	// 200 user-5 ordered rice
}
