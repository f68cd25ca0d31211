package bench

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/bench/history"
)

// nemesis carries out a fault schedule: each fault starts at its time and
// ends after its duration, whatever else is going on.
type nemesis struct {
	cr   *chaosRun
	wg   sync.WaitGroup
	seq  int
	mu   sync.Mutex
	ends map[string]func(context.Context) // faults in effect, by id, and how each ends
}

func newNemesis(cr *chaosRun) *nemesis {
	return &nemesis{cr: cr, ends: map[string]func(context.Context){}}
}

// run carries out sched, then waits for every fault to end.
func (n *nemesis) run(ctx context.Context, sched []fault) {
	for _, f := range sched {
		if d := time.Until(n.cr.began.Add(f.At)); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		n.seq++
		id := fmt.Sprintf("f%d", n.seq)
		n.cr.h.Add(history.Event{P: "nemesis", Kind: history.KindFault, Scope: f.Kind, Detail: f.String(), Op: int64(n.seq)})
		end := n.inject(ctx, id, f)
		if end == nil {
			continue
		}
		n.mu.Lock()
		n.ends[id] = end
		n.mu.Unlock()
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			select {
			case <-ctx.Done():
			case <-time.After(f.Dur):
			}
			n.end(ctx, id, f)
		}()
	}
	if rest := time.Until(n.cr.began.Add(n.cr.cfg.Duration)); rest > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(rest):
		}
	}
}

// end ends fault id if it is still in effect.
func (n *nemesis) end(ctx context.Context, id string, f fault) {
	n.mu.Lock()
	end, ok := n.ends[id]
	delete(n.ends, id)
	n.mu.Unlock()
	if ok {
		end(ctx)
		n.cr.h.Add(history.Event{P: "nemesis", Kind: history.KindFault, Scope: f.Kind, Detail: "healed"})
	}
}

// healAll ends every fault still in effect and waits for the ends.
func (n *nemesis) healAll(ctx context.Context) {
	n.mu.Lock()
	ends := n.ends
	n.ends = map[string]func(context.Context){}
	n.mu.Unlock()
	for _, end := range ends {
		end(context.WithoutCancel(ctx))
	}
	n.wg.Wait()
}

// inject starts f and returns how it ends (nil: it is over at once).
func (n *nemesis) inject(ctx context.Context, id string, f fault) func(context.Context) {
	cr := n.cr
	switch f.Kind {
	case faultNodeKill:
		return n.kill(cr.cc.members[f.Target], "/readyz")
	case faultGateKill:
		return n.kill(cr.cc.gates[f.Target], "/healthz")
	case faultNodePause:
		return n.pause(cr.cc.members[f.Target])
	case faultGatePause:
		return n.pause(cr.cc.gates[f.Target])
	case faultIsolate:
		return n.isolate(id, cr.vs[f.Target:f.Target+f.Count], f.Mode)
	case faultGateIsolate:
		return n.isolateLinks(id, cr.cc.gates[f.Target].name, cr.cc.gateLnk[f.Target], f.Mode)
	case faultCut:
		for _, s := range cr.vs[f.Target : f.Target+f.Count] {
			for _, l := range s.links {
				l.cut()
			}
		}
	case faultGateCut:
		for _, l := range cr.cc.gateLnk[f.Target] {
			l.cut()
		}
	case faultDelay:
		ls := n.slotLinks(cr.vs[f.Target : f.Target+f.Count])
		return applyLinks(id, ls, linkMode{delay: time.Duration(f.Arg) * time.Millisecond})
	case faultNodeStall:
		return applyLinks(id, n.intoNode(f.Target), modeOf(f.Mode))
	case faultPGStall:
		return applyLinks(id, []*link{cr.cc.pgLinks[f.Target]}, modeOf(f.Mode))
	case faultRestart:
		for _, s := range cr.vs[f.Target : f.Target+f.Count] {
			n.restart(ctx, s, time.Duration(f.Arg)*time.Millisecond)
		}
	case faultKeyRotate:
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		if _, err := cr.cc.admin[f.Target%len(cr.cc.admin)].RotateKey(cctx, "chaos"); err != nil {
			cr.faultFailed("%v: %v", f, err)
		}
	case faultAPIKeyRevoke:
		return n.revokeKey(ctx, f)
	case faultPGLock:
		return n.pgLock(ctx, f)
	case faultPGRestart:
		if out, err := exec.CommandContext(ctx, cr.cfg.PGRestartCommand[0], cr.cfg.PGRestartCommand[1:]...).CombinedOutput(); err != nil {
			cr.faultFailed("%v: %v: %s", f, err, out)
		}
	}
	return nil
}

func modeOf(name string) linkMode {
	switch name {
	case isolateStallUp:
		return linkMode{stalled: [2]bool{true, false}}
	case isolateStallDown:
		return linkMode{stalled: [2]bool{false, true}}
	}
	return linkMode{refuse: true}
}

func applyLinks(id string, ls []*link, m linkMode) func(context.Context) {
	for _, l := range ls {
		l.apply(id, m)
	}
	return func(context.Context) {
		for _, l := range ls {
			l.clear(id)
		}
	}
}

func (n *nemesis) slotLinks(ss []*vslot) []*link {
	var ls []*link
	for _, s := range ss {
		ls = append(ls, s.links...)
	}
	return ls
}

// intoNode returns every verifier's and gate's link to node i.
func (n *nemesis) intoNode(i int) []*link {
	var ls []*link
	for _, s := range n.cr.vs {
		ls = append(ls, s.links[i])
	}
	for _, gl := range n.cr.cc.gateLnk {
		ls = append(ls, gl[i])
	}
	return ls
}

// isolate cuts verifiers off from every node; the history learns of it
// once it holds, and of its end once it no longer does.
func (n *nemesis) isolate(id string, ss []*vslot, mode string) func(context.Context) {
	var ends []func(context.Context)
	for _, s := range ss {
		ends = append(ends, n.isolateLinks(id, s.name, s.links, mode))
	}
	return func(ctx context.Context) {
		for _, end := range ends {
			end(ctx)
		}
	}
}

// isolateLinks puts every link of p in mode, and writes so once it holds.
func (n *nemesis) isolateLinks(id, p string, ls []*link, mode string) func(context.Context) {
	m := modeOf(mode)
	for _, l := range ls {
		l.apply(id, m)
	}
	n.cr.h.Add(history.Event{P: p, Kind: history.KindLink, Detail: "isolated"})
	return func(context.Context) {
		n.cr.h.Add(history.Event{P: p, Kind: history.KindLink, Detail: "healed"})
		for _, l := range ls {
			l.clear(id)
		}
	}
}

// kill SIGKILLs m and returns the restart.
func (n *nemesis) kill(m *member, health string) func(context.Context) {
	m.kill()
	return func(ctx context.Context) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := m.start(cctx, n.cr.cfg.Setup, n.cr.cc.hc, health); err != nil {
			n.cr.faultFailed("restarting %s: %v", m.name, err)
		}
	}
}

func (n *nemesis) pause(m *member) func(context.Context) {
	if err := m.signal(syscall.SIGSTOP); err != nil {
		n.cr.faultFailed("pausing %s: %v", m.name, err)
		return nil
	}
	return func(context.Context) { _ = m.signal(syscall.SIGCONT) }
}

// restart restarts a verifier from nothing in the background: it may wait
// for a node to come back.
func (n *nemesis) restart(ctx context.Context, s *vslot, skew time.Duration) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.cr.startVerifier(context.WithoutCancel(ctx), s, skew); err != nil {
			n.cr.faultFailed("restarting %s: %v", s.name, err)
		}
	}()
}

// revokeKey revokes the feed key of a group of verifiers: their streams
// end and they go stale; after Dur they restart with a new key.
func (n *nemesis) revokeKey(ctx context.Context, f fault) func(context.Context) {
	cr := n.cr
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	old, err := cr.keys.renew(cctx, cr.cc.admin[0], f.Target)
	if err == nil {
		err = cr.cc.admin[1%len(cr.cc.admin)].RevokeAPIKey(cctx, client.APIKeyRevocation{ID: old.ID, Reason: "chaos"})
	}
	if err != nil {
		cr.faultFailed("%v: %v", f, err)
		return nil
	}
	return func(ctx context.Context) {
		lo := f.Target * apiKeyGroupSize
		for _, s := range cr.vs[lo:min(lo+apiKeyGroupSize, len(cr.vs))] {
			n.restart(ctx, s, 0)
		}
	}
}

// pgLock holds the revocation log and the sessions locked for Dur, so
// every node's writes wait: a slow Postgres.
func (n *nemesis) pgLock(ctx context.Context, f fault) func(context.Context) {
	cr := n.cr
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.Dur+30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, cr.cc.schema.dsn)
		if err != nil {
			cr.faultFailed("%v: %v", f, err)
			return
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(cctx, fmt.Sprintf(`BEGIN; LOCK TABLE revocations, sessions IN EXCLUSIVE MODE; SELECT pg_sleep(%f); COMMIT`, f.Dur.Seconds()))
		if err != nil {
			cr.faultFailed("%v: %v", f, err)
		}
	}()
	return nil
}
