package inforce

import (
	"context"
	"slices"
	"time"
)

// members returns the URLs the live nodes advertise, this one's included,
// sorted: what verifiers are told to follow. A node that wrote its record
// as it stopped, or whose record has expired, is left out.
func (c *Cluster) members(now time.Time) []string {
	var urls []string
	if c.cfg.Advertise != "" {
		urls = append(urls, c.cfg.Advertise)
	}
	c.mu.Lock()
	for _, n := range c.nodes {
		if r := n.rec; r.Advertise != "" && !r.Stopped && r.ExpiresAt.After(now) {
			urls = append(urls, r.Advertise)
		}
	}
	c.mu.Unlock()
	slices.Sort(urls)
	return slices.Compact(urls)
}

// MarkStopped writes this node's record one last time, marked stopped: a
// node starting with --new-epoch or --restored need not wait for it to
// lapse, and verifiers stop being pointed at it. Call it only once Run has
// returned and the hub and the API have stopped serving: the mark says the
// process serves nobody. The record keeps the expiry last written, which
// still bounds the leases the node granted.
func (c *Cluster) MarkStopped(ctx context.Context) error {
	r := c.record()
	r.Version, r.UpdatedAt, r.Stopped = c.version.Add(1), c.cfg.Clock.Now(), true
	_, err := c.cfg.Store.SaveFollowers(ctx, r, nil)
	return err
}
