package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/client"
)

// TestRevokeClaimsFlag: tegata revoke --subject S --scope access --claims
// JSON changes what the subject's next refresh carries ('{}' clears it),
// and a value that is not a JSON object, or --claims with --session, is a
// usage error that shows the form.
func TestRevokeClaimsFlag(t *testing.T) {
	r, env := startServer(t)
	c := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	ctx := context.Background()
	tests := []struct {
		name, claims, want string
	}{
		{"demote", `{"roles":["viewer"]}`, "map[roles:[viewer]]"},
		{"clear", `{}`, "map[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := c.CreateSession(ctx, client.SessionRequest{Subject: "sam-" + tt.name, Claims: map[string]any{"roles": []string{"admin"}}})
			if err != nil {
				t.Fatal(err)
			}
			code, out := runCLI([]string{"revoke", "--subject", "sam-" + tt.name, "--scope", "access", "--claims", tt.claims}, env)
			if code != 0 {
				t.Fatalf("revoke --claims %s = exit %d\n%s", tt.claims, code, out)
			}
			next, err := c.Refresh(ctx, tok.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			in, err := c.Introspect(ctx, next.AccessToken)
			if err != nil || fmt.Sprint(in.Claims) != tt.want {
				t.Errorf("claims after revoke --claims %s = %v, %v, want %s", tt.claims, in.Claims, err, tt.want)
			}
		})
	}
	for _, args := range [][]string{
		{"revoke", "--subject", "sam", "--claims", "roles=viewer"},
		{"revoke", "--subject", "sam", "--claims", `["viewer"]`},
		{"revoke", "--session", "x", "--claims", `{}`},
	} {
		code, out := runCLI(args, env)
		if code != 2 || !strings.Contains(out, "--claims") {
			t.Errorf("%q = exit %d\n%s\nwant 2 naming --claims", args, code, out)
		}
	}
}
