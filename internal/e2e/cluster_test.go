package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/verifier"
)

// cluster is N authority nodes sharing one Postgres schema, master key and
// API keys, as a production deployment would.
type cluster struct {
	t       *testing.T
	dsn     string
	master  string
	apiKey  string
	feedKey string
	nodes   []*server.Running
	addrs   []string
	dsns    []string      // per node: c.dsn, or a way to it through a proxy
	clocks  []clock.Clock // per node: nil (the wall clock) or the test's
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, dsn: migrated.Schema(t), master: randomB64(32),
		apiKey: authority.NewAPIKey(), feedKey: authority.NewAPIKey()}
	for range n {
		c.add(c.dsn)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	return c
}

// add starts one more node reaching Postgres at dsn and returns its index.
func (c *cluster) add(dsn string) int {
	return c.addClock(dsn, nil)
}

// addClock is add for a node on clk (nil: the wall clock).
func (c *cluster) addClock(dsn string, clk clock.Clock) int {
	c.nodes = append(c.nodes, nil)
	c.addrs = append(c.addrs, "127.0.0.1:0")
	c.dsns = append(c.dsns, dsn)
	c.clocks = append(c.clocks, clk)
	c.start(len(c.nodes) - 1)
	return len(c.nodes) - 1
}

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func quietLogger() *slog.Logger {
	if os.Getenv("TEGATA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start (re)starts node i, on its previous address if it had one.
func (c *cluster) start(i int) {
	c.t.Helper()
	var r *server.Running
	// The old listener may linger briefly on the node's address.
	testtime.Eventually(c.t, 5*time.Second, fmt.Sprintf("node %d to start", i), func() error {
		var err error
		r, err = server.Start(context.Background(), server.Config{
			Addr: c.addrs[i], DataDir: c.t.TempDir(), DB: c.dsns[i], Issuer: "https://auth.e2e.test",
			MasterKey: c.master, APIKey: c.apiKey, FeedKey: c.feedKey,
			Limits: &httpapi.Limits{}, Logger: quietLogger(), Clock: c.clocks[i],
			SSFInsecurePush: true, // event receivers of the tests are on loopback
		})
		return err
	})
	c.nodes[i] = r
	c.addrs[i] = r.URL[len("http://"):]
}

func (c *cluster) stop(i int) {
	if c.nodes[i] == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.nodes[i].Shutdown(ctx); err != nil {
		c.t.Logf("shutdown node %d: %v", i, err)
	}
	c.nodes[i] = nil
}

func (c *cluster) url(i int) string { return "http://" + c.addrs[i] }

func (c *cluster) client(i int) *client.Client {
	return &client.Client{BaseURL: c.url(i), APIKey: c.apiKey}
}

// follow starts a verifier following the given base URLs with the
// read-only feed key and the default staleness bound, and waits until it
// is ready.
func (c *cluster) follow(urls ...string) *verifier.Verifier {
	c.t.Helper()
	return c.followStale(0, urls...)
}

// followStale is follow with the staleness bound staleAfter (zero: the
// default).
func (c *cluster) followStale(staleAfter time.Duration, urls ...string) *verifier.Verifier {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{Authorities: urls, APIKey: c.feedKey, Audience: "tegata",
		StaleAfter: staleAfter, Logger: quietLogger()})
	if err != nil {
		c.t.Fatalf("verifier.New(%v): %v", urls, err)
	}
	c.t.Cleanup(func() { _ = v.Close() })
	if err := v.WaitReady(ctx); err != nil {
		c.t.Fatalf("verifier following %v not ready: %v (state %+v)", urls, err, v.State())
	}
	return v
}

// sessions creates n sessions spread over the nodes, in parallel.
func (c *cluster) sessions(n int, prefix string) []client.Tokens {
	c.t.Helper()
	out := make([]client.Tokens, n)
	parallel(c.t, n, 16, func(i int) error {
		var err error
		out[i], err = c.client(i%len(c.nodes)).CreateSession(context.Background(), client.SessionRequest{Subject: fmt.Sprint(prefix, i)})
		return err
	})
	return out
}

// parallel runs fn(0..n-1) on `workers` goroutines and fails on any error.
func parallel(t *testing.T, n, workers int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, n)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					errs <- fmt.Errorf("item %d: %w", i, err)
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// eventually waits until cond returns nil (testtime.Eventually).
func eventually(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	testtime.Eventually(t, within, what, cond)
}

// allRevoked checks that v rejects every token as revoked.
func allRevoked(v *verifier.Verifier, toks []client.Tokens) error {
	missing := 0
	var last error
	for _, tk := range toks {
		if _, err := v.Verify(context.Background(), tk.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
			missing++
			last = err
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d tokens not rejected as revoked (last: %v; state %+v)", missing, len(toks), last, v.State())
	}
	return nil
}

// cutProxy is a TCP proxy whose connections can be cut, to break a
// verifier's feed stream mid-way.
type cutProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   []net.Conn
	blocked bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *cutProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		blocked, target := p.blocked, p.target
		p.mu.Unlock()
		if blocked {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); out.Close() }()
		go func() { _, _ = io.Copy(in, out); in.Close() }()
	}
}

// block cuts every connection and refuses new ones until unblock.
func (p *cutProxy) block() {
	p.mu.Lock()
	p.blocked = true
	p.mu.Unlock()
	p.cut()
}

// retarget sends new connections to target.
func (p *cutProxy) retarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *cutProxy) unblock() {
	p.mu.Lock()
	p.blocked = false
	p.mu.Unlock()
}

// cutRepeatedly cuts the proxy's connections every interval until the
// returned stop is called, which returns how many streams were cut.
func (p *cutProxy) cutRepeatedly(every time.Duration) (stop func() int) {
	done := make(chan struct{})
	cuts := make(chan int, 1)
	go func() {
		total := 0
		for {
			select {
			case <-done:
				cuts <- total
				return
			case <-time.After(every):
				total += p.cut()
			}
		}
	}()
	return func() int {
		close(done)
		return <-cuts
	}
}

// cut closes every connection through the proxy; new ones still work.
func (p *cutProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	n := len(p.conns) / 2
	p.conns = nil
	return n
}
