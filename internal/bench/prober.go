package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// prober measures gate latency open loop: it sends one /auth request every
// 1/rate, to the gates in turn, each in a goroutine of its own, so a slow
// answer delays no later probe and latency under load is not understated.
type prober struct {
	c     *cluster
	token string
	every time.Duration

	mu  sync.Mutex
	cur *recorder

	refused  atomic.Int64 // probes not answered 200
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

func newProber(c *cluster, token string, rate float64) *prober {
	return &prober{c: c, token: token, every: time.Duration(float64(time.Second) / rate), cur: &recorder{}}
}

func (p *prober) start(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.every)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p.wg.Add(1)
			go p.probe(ctx, p.c.gateURL[i%len(p.c.gateURL)])
		}
	}()
}

func (p *prober) probe(ctx context.Context, gate string) {
	defer p.wg.Done()
	p.mu.Lock()
	rec := p.cur
	p.mu.Unlock()
	sent := time.Now()
	revoked, err := revokedAt(ctx, p.c.hc, gate, p.token)
	if ctx.Err() != nil {
		return
	}
	if err != nil || revoked {
		p.refused.Add(1)
		return
	}
	rec.add(time.Since(sent))
}

// phase ends the current phase and returns its latencies. Probes in flight
// still count towards the phase they were sent in, but not towards the
// summary returned here.
func (p *prober) phase() Summary {
	p.mu.Lock()
	rec := p.cur
	p.cur = &recorder{}
	p.mu.Unlock()
	return summarize(rec.take())
}

// stop ends probing and waits for the probes in flight.
func (p *prober) stop() {
	p.stopOnce.Do(func() {
		p.cancel()
		p.wg.Wait()
	})
}
