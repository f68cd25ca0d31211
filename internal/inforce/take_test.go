package inforce

import (
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestLaterExpiryKept: a node's message numbered while its flush was
// writing has the higher version and the expiry of the flush before; the
// flushed record, read from the store, the lower version and the later
// expiry, which the node's leases may run to. In either order, a wait
// counts the node (behind, here) until the later expiry has passed, and
// no longer.
func TestLaterExpiryKept(t *testing.T) {
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	flushed := store.NodeRecord{ID: "b", Safe: 1, Head: 1, Followers: 1, Version: 1, UpdatedAt: now, ExpiresAt: now.Add(12 * time.Second)}
	sent := flushed
	sent.Version, sent.ExpiresAt = 2, now.Add(11*time.Second)
	message := func(c *Cluster) { c.mergeMessage(toMessage(sent)) }
	stored := func(c *Cluster) { c.merge([]store.NodeRecord{flushed}) }
	tests := []struct {
		name          string
		first, second func(*Cluster)
	}{
		{"message, then the stored record", message, stored},
		{"stored record, then the message", stored, message},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testtime.NewClock(now)
			c := New(Config{NodeID: "a", Clock: clk, Skew: time.Second})
			c.own.Safe = 5
			tt.first(c)
			tt.second(c)
			clk.Set(now.Add(12*time.Second + 500*time.Millisecond)) // past the message's expiry and the skew
			if in, _ := c.inForce(5); in {
				t.Errorf("inForce(5) at %v, b behind until %v = true, want false", clk.Now(), flushed.ExpiresAt)
			}
			clk.Set(now.Add(13*time.Second + time.Nanosecond)) // past the flushed record's expiry and the skew
			if in, _ := c.inForce(5); !in {
				t.Errorf("inForce(5) at %v, b's records all expired = false, want true", clk.Now())
			}
		})
	}
}
