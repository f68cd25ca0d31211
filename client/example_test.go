package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/tegata-dev/tegata/client"
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
