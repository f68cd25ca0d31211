package inforce

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/store"
)

// States of a verifier in a Listing.
const (
	StateCurrent = "current" // had every entry recorded when it was last heard
	StateBehind  = "behind"  // lacked entries recorded before it was last heard
	StateStale   = "stale"   // says it is not current, or has been silent a while (silentAfter)
)

// VerifierView is one verifier in a Listing (the wire type, defined once
// by the client that reads GET /v1/verifiers).
type VerifierView = client.Verifier

// NodeView is one authority node in a Listing.
type NodeView = client.Node

// Listing is every live verifier of the cluster: the answer of GET
// /v1/verifiers.
type Listing = client.Verifiers

// maxLagLookups bounds the log reads one listing makes to date the
// oldest entry each distinct position lacks.
const maxLagLookups = 64

// listWait bounds how long List waits for the verifiers to report the
// log's head.
const listWait = time.Second

// List returns the verifiers heard within their staleness bound, on any
// node: this node's from its hub, the others' as last written (at most a
// second or two old). Verifiers report their positions only when asked, so
// it first asks every node's verifiers for the log's head and waits up to
// listWait for them (as a confirmation does, without counting as one):
// the positions listed are then fresh, and those still behind are the
// verifiers that lag.
func (c *Cluster) List(ctx context.Context) (Listing, error) {
	if head, err := c.cfg.Store.Head(ctx); err == nil && head > 0 {
		c.confirm(ctx, head, listWait)
	}
	l, _, err := c.list(ctx)
	return l, err
}

// Current is List without asking the verifiers first: their positions
// as last reported, at once (the operator console's overview).
func (c *Cluster) Current(ctx context.Context) (Listing, error) {
	l, _, err := c.list(ctx)
	return l, err
}

// list is List without asking first; it also returns how many verifiers
// went silent past their bound within SilentHold (see silent), which the
// listing leaves out.
func (c *Cluster) list(ctx context.Context) (Listing, int, error) {
	now := c.cfg.Clock.Now()
	head, err := c.cfg.Store.Head(ctx)
	if err != nil {
		return Listing{}, 0, fmt.Errorf("inforce: list: %w", err)
	}
	nodes, err := c.cfg.Store.FeedNodes(ctx, now)
	if err != nil {
		return Listing{}, 0, fmt.Errorf("inforce: list: %w", err)
	}
	recs, err := c.cfg.Store.FeedVerifiers(ctx, now.Add(-feed.MaxStaleAfter))
	if err != nil {
		return Listing{}, 0, fmt.Errorf("inforce: list: %w", err)
	}
	l := Listing{Head: head, Verifiers: []VerifierView{}, Nodes: c.nodeViews(nodes)}
	urls := map[string]string{c.cfg.NodeID: c.cfg.URL}
	for _, n := range nodes {
		urls[n.ID] = n.URL
	}
	vs := c.merged(recs)
	created := c.lagDates(ctx, head, vs)
	for _, v := range vs {
		if now.Sub(v.HeardAt) > v.StaleAfter {
			continue
		}
		l.Verifiers = append(l.Verifiers, view(v, urls[v.Node], head, created, now))
	}
	sort.Slice(l.Verifiers, func(i, j int) bool {
		a, b := l.Verifiers[i], l.Verifiers[j]
		if a.NodeURL != b.NodeURL {
			return a.NodeURL < b.NodeURL
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
	return l, silent(vs, now), nil
}

// merged returns the stored records with this node's followers (fresher)
// in place of their stored copies, newest record per verifier.
func (c *Cluster) merged(recs []store.VerifierRecord) map[string]store.VerifierRecord {
	m := make(map[string]store.VerifierRecord, len(recs))
	for _, r := range recs {
		m[r.ID] = r
	}
	for _, f := range c.cfg.Hub.Followers() {
		if old, ok := m[f.ID]; ok && old.HeardAt.After(f.Heard) {
			continue
		}
		m[f.ID] = store.VerifierRecord{ID: f.ID, Name: f.Name, Host: f.Host, Version: f.Version, Node: c.cfg.NodeID,
			Position: f.Position, Ready: f.Ready, StaleAfter: f.StaleAfter, HeardAt: f.Heard}
	}
	return m
}

func (c *Cluster) nodeViews(nodes []store.NodeRecord) []NodeView {
	own := c.record()
	followers, _ := c.cfg.Hub.FollowerStats()
	out := []NodeView{{ID: own.ID, URL: own.URL, Head: own.Head, Safe: own.Safe, Followers: followers,
		UpdatedAt: own.UpdatedAt.UTC()}}
	for _, n := range nodes {
		if n.ID != c.cfg.NodeID {
			out = append(out, NodeView{ID: n.ID, URL: n.URL, Head: n.Head, Safe: n.Safe, Followers: n.Followers, UpdatedAt: n.UpdatedAt.UTC()})
		}
	}
	return out
}

// lagDates returns, for each distinct position behind head (at most
// maxLagLookups of them, the lowest first), when the first entry after it
// was recorded.
func (c *Cluster) lagDates(ctx context.Context, head int64, vs map[string]store.VerifierRecord) map[int64]time.Time {
	var positions []int64
	seen := map[int64]bool{}
	for _, v := range vs {
		if v.Position < head && !seen[v.Position] {
			seen[v.Position] = true
			positions = append(positions, v.Position)
		}
	}
	sort.Slice(positions, func(i, j int) bool { return positions[i] < positions[j] })
	out := map[int64]time.Time{}
	for i, p := range positions {
		if i == maxLagLookups {
			break
		}
		es, err := c.cfg.Store.EntriesAfter(ctx, p, 1)
		if err == nil && len(es) > 0 {
			out[p] = es[0].CreatedAt
		}
	}
	return out
}

// silentAfter is how long a verifier may go unheard before it is listed
// as stale: the age another node's record of it may reach while it is
// well. That node rewrites the record at every renewal
// (feed.Hub.ChangedFollowers), which a verifier sends once 1/RenewShare of
// its bound has passed: that, and the renewal's round trip, plus a flush
// and some slack.
func silentAfter(bound time.Duration) time.Duration {
	return bound/feed.RenewShare + 2*time.Second
}

func view(v store.VerifierRecord, nodeURL string, head int64, created map[int64]time.Time, now time.Time) VerifierView {
	out := VerifierView{ID: v.ID, Name: v.Name, Host: v.Host, Version: v.Version, Node: v.Node, NodeURL: nodeURL,
		Position: v.Position, LagEntries: max(0, head-v.Position), LastHeard: v.HeardAt.UTC(),
		StaleAfterMS: v.StaleAfter.Milliseconds(), State: StateCurrent}
	if t, ok := created[v.Position]; ok && v.HeardAt.After(t) {
		out.LagMS = v.HeardAt.Sub(t).Milliseconds()
	}
	switch {
	case !v.Ready || now.Sub(v.HeardAt) > silentAfter(v.StaleAfter):
		out.State = StateStale
	case out.LagMS > 0:
		out.State = StateBehind
	}
	return out
}
