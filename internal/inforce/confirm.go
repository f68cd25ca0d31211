package inforce

import (
	"context"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/store"
)

// Confirmation says whether a log position is in force on every verifier:
// the answer of a revocation's ?confirm=, defined once, by the client that
// reads it.
type Confirmation = client.Confirmation

// Pending is a verifier that had not yet applied the position.
type Pending = client.PendingVerifier

// MaxPending caps the verifiers a Confirmation names: a cluster with
// thousands of lagging verifiers answers with a count, not megabytes.
const MaxPending = 100

// wantEvery is how often a node whose Confirm waits asks the other nodes
// again, in case a message was lost (a listener that reconnected): once
// per node, however many calls wait (see ask). Messages are lost rarely;
// every repeat costs a NOTIFY, and an answer from each node already past
// the position.
const wantEvery = time.Second

// Confirm waits up to wait for position seq (0: the log's head now) to be
// in force and says how it stands. It waits less if ctx ends first. Errors
// of the store only delay the answer: a wait that could not read the other
// nodes' records ends not in force.
func (c *Cluster) Confirm(ctx context.Context, seq int64, wait time.Duration) Confirmation {
	conf := c.confirm(ctx, seq, wait)
	c.metrics.observe(conf)
	return conf
}

// confirm is Confirm without the metrics.
func (c *Cluster) confirm(ctx context.Context, seq int64, wait time.Duration) Confirmation {
	start := c.cfg.Clock.Now()
	ctx, cancel := clock.WithTimeout(ctx, c.cfg.Clock, wait)
	defer cancel()
	if seq <= 0 {
		head, err := c.cfg.Store.Head(ctx)
		if err != nil {
			c.log.Warn("inforce: reading the log head failed", "err", err)
			return Confirmation{Pending: []Pending{}, WaitedMS: c.cfg.Clock.Now().Sub(start).Milliseconds()}
		}
		seq = head // 0 for an empty log: nothing to wait for
	}
	c.cfg.Hub.Ask(seq)
	c.mu.Lock()
	c.localWant = max(c.localWant, seq)
	c.mu.Unlock()
	c.poke()
	// Ask the other nodes while reading their records: the two round
	// trips to the database need not add up.
	asked := make(chan struct{})
	go func() {
		defer close(asked)
		c.ask(ctx, seq)
	}()
	// Every node that could vouch for a state without seq had registered
	// before seq was committed, so this read finds it.
	known := c.readNodes(ctx)
	<-asked
	ask := clock.NewTicker(c.cfg.Clock, wantEvery)
	defer ask.Stop()
	inForce := false
	for {
		var changed <-chan struct{}
		inForce, changed = c.inForce(seq)
		if (inForce && known) || ctx.Err() != nil {
			break
		}
		select {
		case <-changed:
		case <-ask.C:
			if !known {
				known = c.readNodes(ctx)
			}
			c.ask(ctx, seq)
		case <-ctx.Done():
		}
	}
	conf := c.describe(context.WithoutCancel(ctx), seq, inForce && known)
	conf.WaitedMS = c.cfg.Clock.Now().Sub(start).Milliseconds()
	return conf
}

// readNodes merges the nodes' records from the store; it reports whether
// that worked.
func (c *Cluster) readNodes(ctx context.Context) bool {
	nodes, err := c.cfg.Store.FeedNodes(ctx, c.cfg.Clock.Now())
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("inforce: reading the nodes' records failed", "err", err)
		}
		return false
	}
	c.merge(nodes)
	return true
}

// poke wakes Run to look at the hub.
func (c *Cluster) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// ask tells the other nodes that this one waits for seq. The waits of a
// node share its asks: one goes when the highest position it waits for
// rises, and it is repeated at most every wantEvery in case it was lost,
// however many calls wait. On Postgres every message is a NOTIFY, which
// the server commits one at a time across the whole database, the log's
// appends included, and which holds a connection of the node's pool
// while it waits its turn: an ask per waiting call every wantEvery grew
// with the calls waiting, and held the appends and the hub's log reads up
// until the calls waited longer still.
//
// The message names the highest position asked: a node asked for it asks
// its verifiers for it, and announces each rise of its safe position
// while it is behind, which answers the lower waits on the way.
func (c *Cluster) ask(ctx context.Context, seq int64) {
	if c.cfg.Broadcaster == nil {
		return
	}
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	if seq <= c.asked && now.Sub(c.askedAt) < wantEvery {
		c.mu.Unlock()
		return
	}
	c.asked, c.askedAt = max(c.asked, seq), now
	want := c.asked
	c.mu.Unlock()
	c.send(ctx, message{From: c.cfg.NodeID, Want: want})
}

// inForce reports whether seq is in force as far as this node knows, and
// a channel closed when that knowledge changes.
func (c *Cluster) inForce(seq int64) (bool, <-chan struct{}) {
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.own.Safe < seq {
		return false, c.changed
	}
	for _, n := range c.nodes {
		if n.rec.Safe < seq && c.live(n.rec, now) {
			return false, c.changed
		}
	}
	return true, c.changed
}

// live reports whether a node's record may still vouch for a verifier.
func (c *Cluster) live(n store.NodeRecord, now time.Time) bool {
	return !now.After(n.ExpiresAt.Add(c.cfg.Skew))
}

// describe builds the answer: the count of verifiers, and those pending
// when seq is not in force (this node's from its hub, the others' from
// their last written records).
func (c *Cluster) describe(ctx context.Context, seq int64, inForce bool) Confirmation {
	now := c.cfg.Clock.Now()
	conf := Confirmation{InForce: inForce, Pending: []Pending{}}
	conf.Confirmed, _ = c.cfg.Hub.FollowerStats()
	unknown := map[string]bool{} // lagging nodes that did not say who lags
	c.mu.Lock()
	for id, n := range c.nodes {
		if !c.live(n.rec, now) {
			continue
		}
		conf.Confirmed += n.rec.Followers
		switch {
		case inForce || n.rec.Safe >= seq:
		case n.pending != nil && n.want >= seq:
			for _, p := range n.pending {
				if p.Position < seq {
					addPending(&conf, p)
				}
			}
		default:
			unknown[id] = true
		}
	}
	c.mu.Unlock()
	if inForce {
		return conf
	}
	fs, n := c.cfg.Hub.Pending(seq, MaxPending)
	for _, f := range fs {
		addPending(&conf, c.pendingOf(f))
	}
	conf.PendingCount += n - len(fs)
	if len(unknown) > 0 {
		c.pendingElsewhere(ctx, seq, unknown, now, &conf)
	}
	conf.Confirmed = max(0, conf.Confirmed-conf.PendingCount)
	return conf
}

// addPending counts p, and names it while fewer than MaxPending are named.
func addPending(conf *Confirmation, p Pending) {
	conf.PendingCount++
	if len(conf.Pending) < MaxPending {
		conf.Pending = append(conf.Pending, p)
	}
}

// pendingOf is one of this node's followers as a Pending.
func (c *Cluster) pendingOf(f feed.FollowerState) Pending {
	return Pending{ID: f.ID, Name: f.Name, Host: f.Host, Node: c.cfg.NodeID, Position: f.Position, LastHeard: f.Heard.UTC()}
}

// pendingElsewhere adds the verifiers of lagging nodes that did not name
// them that, by their last written records, had not applied seq.
func (c *Cluster) pendingElsewhere(ctx context.Context, seq int64, lagging map[string]bool, now time.Time, conf *Confirmation) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	vs, err := c.cfg.Store.FeedVerifiers(ctx, now.Add(-feed.MaxStaleAfter))
	if err != nil {
		c.log.Warn("inforce: reading verifier records failed", "err", err)
		return
	}
	for _, v := range vs {
		if lagging[v.Node] && v.Position < seq && now.Sub(v.HeardAt) <= v.StaleAfter {
			addPending(conf, Pending{ID: v.ID, Name: v.Name, Host: v.Host, Node: v.Node,
				Position: v.Position, LastHeard: v.HeardAt.UTC()})
		}
	}
}
