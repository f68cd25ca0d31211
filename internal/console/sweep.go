package console

import (
	"context"
	"encoding/json"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/store"
)

// sweepEvery is how often Run looks for idle console sessions.
const sweepEvery = time.Minute

// Run revokes, once every sweepEvery on clk, the console sessions idle
// longer than the idle timeout or older than maxSession, as their next
// request would: an operator who never comes back leaves no live session
// behind. Every node serving the console sweeps; a session revoked twice
// is recorded once. Run returns when ctx ends.
func (c *Console) Run(ctx context.Context, clk clock.Clock) error {
	t := clock.NewTicker(clk, sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := c.sweep(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("console: sweeping idle sessions failed", "err", err)
			}
		}
	}
}

// sweep revokes the idle console sessions, reading the console subjects a
// page at a time.
func (c *Console) sweep(ctx context.Context) error {
	q := store.SubjectQuery{Prefix: SubjectPrefix, Limit: pageSize, Now: c.now()}
	for {
		subs, err := c.st.Subjects(ctx, q)
		if err != nil {
			return err
		}
		for _, s := range subs {
			if s.LiveSessions == 0 {
				continue
			}
			if err := c.sweepSubject(ctx, s.Subject); err != nil {
				return err
			}
		}
		if len(subs) < q.Limit {
			return nil
		}
		q.After = subs[len(subs)-1].Subject
	}
}

// sweepSubject revokes the idle sessions of one console subject.
func (c *Console) sweepSubject(ctx context.Context, subject string) error {
	ss, err := c.a.Sessions(ctx, subject)
	if err != nil {
		return err
	}
	for _, s := range ss {
		op, since, ok := sessionOperator(s)
		if !ok || !c.idle(s.RefreshedAt, since) {
			continue
		}
		c.revokeOwn(ctx, op, endIdle)
	}
	return nil
}

// sessionOperator is the operator of a stored console session.
func sessionOperator(s store.Session) (*operator, time.Time, bool) {
	var claims map[string]any
	_ = json.Unmarshal(s.Claims, &claims) // claims unreadable: no operator
	return operatorOf(s.Subject, s.ID, func(name string) (any, bool) { v, ok := claims[name]; return v, ok })
}
