package inforce

import (
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/store"
)

// TestListedStateFollowsRenewals: a verifier heard at the pace its feed
// client renews (feed.RenewShare) is listed current until a renewal is
// overdue by more than a round trip and a flush (two seconds), and stale
// from then on.
func TestListedStateFollowsRenewals(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, bound := range []time.Duration{time.Second, 10 * time.Second, time.Hour} {
		every := bound / feed.RenewShare
		for _, tc := range []struct {
			name string
			ago  time.Duration
			want string
		}{
			{"heard just now", 0, StateCurrent},
			{"its renewal due", every, StateCurrent},
			{"its renewal two seconds late", every + 2*time.Second, StateCurrent},
			{"its renewal over two seconds late", every + 2*time.Second + time.Millisecond, StateStale},
			{"a renewal missed", 2*every + 2*time.Second + time.Millisecond, StateStale},
		} {
			v := store.VerifierRecord{ID: "v", StaleAfter: bound, Ready: true, HeardAt: now.Add(-tc.ago)}
			if got := view(v, "", 0, nil, now).State; got != tc.want {
				t.Errorf("bound %v, %s (heard %v ago): state %q, want %q", bound, tc.name, tc.ago, got, tc.want)
			}
		}
	}
}
