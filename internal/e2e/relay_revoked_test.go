package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestRelayKeyRevoked: when the node revokes the relay's key, it ends the
// relay's stream and refuses it; the relay then ends its followers'
// streams too, as the node ends those of a revoked key, so that they
// learn at once that their key is refused rather than at their next
// reconnect, and refuse tokens.
func TestRelayKeyRevoked(t *testing.T) {
	t.Parallel()
	g := newRelayRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := g.admin().CreateAPIKey(ctx, client.APIKeyRequest{Name: "relay-revoked", Role: authority.RoleFeed})
	if err != nil {
		t.Fatal(err)
	}
	r := g.startRelay("127.0.0.1:0", k.Key, 10*time.Second, g.url())
	r.waitReady(t)
	// A bound long enough that its stream would not idle out (¾ of it)
	// within the wait below.
	c, _ := g.follow("behind", k.Key, time.Minute, r.url())
	waitFresh(t, c, "the verifier behind the relay")
	if err := g.admin().RevokeAPIKey(ctx, client.APIKeyRevocation{ID: k.ID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	testtime.Eventually(t, 10*time.Second, "the verifier behind the relay to be refused", func() error {
		if st := c.State(); st.Refusals == 0 || !errors.Is(st.RefusedErr, feed.ErrRefused) {
			return errors.New("not refused")
		}
		return nil
	})
}
