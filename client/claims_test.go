package client_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// TestDemotionClearingClaimsTakesEffect: a subject revocation whose claims
// are null or {} clears the claims of the subject's sessions, single or
// bulk, by raw JSON or by the client with an empty map; the next refresh
// carries no roles. A gate key still may only sign out: claims of any
// kind, null included, are refused.
func TestDemotionClearingClaimsTakesEffect(t *testing.T) {
	ctx, c := testCtx(t), admin()
	single := func(body string) func(sub string) error {
		return func(sub string) error {
			return c.Do(ctx, "POST", "/v1/subjects/"+url.PathEscape(sub)+"/revoke", json.RawMessage(body), nil)
		}
	}
	bulk := func(claims string) func(sub string) error {
		return func(sub string) error {
			body := fmt.Sprintf(`{"items":[{"subject":%q,"scope":"access","claims":%s}]}`, sub, claims)
			return c.Do(ctx, "POST", "/v1/revocations", json.RawMessage(body), nil)
		}
	}
	tests := []struct {
		name   string
		demote func(sub string) error
	}{
		{"single null", single(`{"scope":"access","claims":null}`)},
		{"single empty", single(`{"scope":"access","claims":{}}`)},
		{"bulk null", bulk("null")},
		{"bulk empty", bulk("{}")},
		{"client RevokeSubject empty map", func(sub string) error {
			_, err := c.RevokeSubject(ctx, client.SubjectRevocation{Subject: sub, Scope: client.ScopeAccess, Claims: map[string]any{}})
			return err
		}},
		{"client RevokeMany empty map", func(sub string) error {
			_, err := c.RevokeMany(ctx, client.BulkRevocation{Items: []client.RevokeItem{{Subject: sub, Scope: client.ScopeAccess, Claims: map[string]any{}}}})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := subject(t)
			tok, err := c.CreateSession(ctx, client.SessionRequest{Subject: sub, Claims: map[string]any{"roles": []string{"admin"}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.demote(sub); err != nil {
				t.Fatalf("demotion = %v, want nil", err)
			}
			next, err := c.Refresh(ctx, tok.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh after the demotion = %v, want new tokens", err)
			}
			in, err := c.Introspect(ctx, next.AccessToken)
			if err != nil || !in.Active || len(in.Claims) != 0 {
				t.Errorf("Introspect(after clearing) = %+v, %v, want active with no claims", in, err)
			}
		})
	}

	t.Run("gate key may not send claims, null included", func(t *testing.T) {
		k, err := c.CreateAPIKey(ctx, client.APIKeyRequest{Name: fmt.Sprintf("gate-%d", time.Now().UnixNano()), Role: "gate"})
		if err != nil {
			t.Fatal(err)
		}
		g := &client.Client{BaseURL: authorityURL, APIKey: k.Key}
		sub := subject(t)
		for _, body := range []string{`{"claims":null}`, `{"claims":{}}`, `{"scope":"sessions","claims":null}`} {
			err := g.Do(ctx, "POST", "/v1/subjects/"+url.PathEscape(sub)+"/revoke", json.RawMessage(body), nil)
			if !errors.Is(err, client.ErrInsufficientScope) {
				t.Errorf("gate key POST revoke %s = %v, want ErrInsufficientScope", body, err)
			}
		}
		if err := g.Do(ctx, "POST", "/v1/subjects/"+url.PathEscape(sub)+"/revoke", json.RawMessage(`{"scope":"sessions"}`), nil); err != nil {
			t.Errorf("gate key signing a subject out = %v, want nil", err)
		}
	})
}
