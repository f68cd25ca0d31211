package server_test

import (
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/statuslist"
)

// TestStatusListIndexInvalidPastExpiry: a revoked token's index stays
// INVALID for the hold past its revocation's expiry (the leeway past the
// token's exp), so a Relying Party accepting the token within that much
// clock skew still finds it revoked; only then it reads VALID.
func TestStatusListIndexInvalidPastExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hold time.Duration // 0: the default
		want time.Duration // how long past exp the index must read INVALID
	}{
		{"default covers ASP.NET's five minutes", 0, authority.DefaultLeeway + authority.DefaultStatusListHold},
		{"configured", time.Minute, authority.DefaultLeeway + time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, func(c *server.Config) { c.Authority.StatusLists.Hold = tt.hold })
			tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tk.SessionID}); err != nil {
				t.Fatal(err)
			}
			toExp := tk.AccessExpiresAt.Sub(e.clock.Now())
			e.clock.Add(toExp + tt.want - 2*time.Second)
			if s := statusIn(t, e, tk.AccessToken); s != statuslist.Invalid {
				t.Errorf("status %v past exp = %d, want INVALID", tt.want-2*time.Second, s)
			}
			e.clock.Add(4 * time.Second)
			if s := statusIn(t, e, tk.AccessToken); s != statuslist.Valid {
				t.Errorf("status %v past exp = %d, want VALID (the hold is over)", tt.want+2*time.Second, s)
			}
		})
	}
}
