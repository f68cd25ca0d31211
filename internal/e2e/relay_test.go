package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/verifier"
)

// relayRig is one authority node on SQLite, relays following it and feed
// clients following the relays.
type relayRig struct {
	t               *testing.T
	dir             string
	addr            string
	master          string
	apiKey, feedKey string
	node            *server.Running
}

func newRelayRig(t *testing.T) *relayRig {
	t.Helper()
	g := &relayRig{t: t, dir: t.TempDir(), addr: "127.0.0.1:0", master: randomB64(32),
		apiKey: authority.NewAPIKey(), feedKey: authority.NewAPIKey()}
	g.start(false)
	t.Cleanup(g.stop)
	return g
}

// start (re)starts the node on its address and data; newEpoch gives its
// log a new epoch.
func (g *relayRig) start(newEpoch bool) {
	g.t.Helper()
	testtime.Eventually(g.t, 5*time.Second, "the node to start", func() error {
		r, err := server.Start(context.Background(), server.Config{
			Addr: g.addr, DataDir: g.dir, Issuer: "https://auth.relay.test", MasterKey: g.master,
			APIKey: g.apiKey, FeedKey: g.feedKey, Limits: &httpapi.Limits{}, Logger: quietLogger(), NewEpoch: newEpoch,
		})
		if err == nil {
			g.node, g.addr = r, r.URL[len("http://"):]
		}
		return err
	})
}

func (g *relayRig) stop() {
	if g.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = g.node.Shutdown(ctx)
	g.node = nil
}

func (g *relayRig) url() string { return "http://" + g.addr }

func (g *relayRig) admin() *client.Client { return &client.Client{BaseURL: g.url(), APIKey: g.apiKey} }

// relayProc is a relay served on a loopback address.
type relayProc struct {
	relay  *feed.Relay
	addr   string
	srv    *http.Server
	cancel context.CancelFunc
	done   chan error
}

func (p *relayProc) url() string { return "http://" + p.addr }

// startRelay starts a relay following upstream with key on addr
// ("127.0.0.1:0": any port), with the staleness bound staleAfter.
func (g *relayRig) startRelay(addr, key string, staleAfter time.Duration, upstream ...string) *relayProc {
	g.t.Helper()
	var ln net.Listener
	testtime.Eventually(g.t, 5*time.Second, "the relay's address", func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	r := feed.NewRelay(feed.RelayConfig{URLs: upstream, APIKey: key, Host: "e2e", StaleAfter: staleAfter, Logger: quietLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	p := &relayProc{relay: r, addr: ln.Addr().String(), srv: &http.Server{Handler: r}, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- r.Run(ctx) }()
	go func() { _ = p.srv.Serve(ln) }()
	g.t.Cleanup(p.stop)
	return p
}

// stop ends the relay: its streams are cut, as when its process ends.
func (p *relayProc) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
	_ = p.srv.Close()
	p.cancel = nil
}

// waitReady waits until the relay serves and holds a lease.
func (p *relayProc) waitReady(t *testing.T) {
	t.Helper()
	testtime.Eventually(t, 10*time.Second, "the relay to be ready", p.relay.Ready)
}

// applied records what a feed client applied; hold, when set, blocks
// ApplyMany until it is closed.
type applied struct {
	mu     sync.Mutex
	seqs   map[int64]bool
	resets int
	hold   chan struct{}
}

func (a *applied) applyMany(es []revocation.Entry) (int, error) {
	a.mu.Lock()
	hold := a.hold
	a.mu.Unlock()
	if hold != nil {
		<-hold
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range es {
		a.seqs[e.Seq] = true
	}
	return len(es), nil
}

func (a *applied) has(seq int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seqs[seq]
}

// follow starts a named feed client following urls with key and the
// staleness bound staleAfter.
func (g *relayRig) follow(name, key string, staleAfter time.Duration, urls ...string) (*feed.Client, *applied) {
	g.t.Helper()
	a := &applied{seqs: map[int64]bool{}}
	c := &feed.Client{URLs: urls, APIKey: key, ApplyMany: a.applyMany, Logger: quietLogger(),
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Reset: func() {
			a.mu.Lock()
			a.seqs, a.resets = map[int64]bool{}, a.resets+1
			a.mu.Unlock()
		},
		Follower: &feed.Follower{ID: feed.NewFollowerID(), Name: name, StaleAfter: staleAfter}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	g.t.Cleanup(func() {
		cancel()
		<-done
	})
	return c, a
}

// fresh reports whether c holds a lease now.
func fresh(c *feed.Client) bool { return c.State().FreshUntil.After(time.Now()) }

func waitFresh(t *testing.T, c *feed.Client, name string) {
	t.Helper()
	testtime.Eventually(t, 10*time.Second, name+" to hold a lease", func() error {
		if st := c.State(); !st.Synced || !fresh(c) {
			return fmt.Errorf("state %+v", st)
		}
		return nil
	})
}

func (g *relayRig) revoke(subject string, confirm time.Duration) client.Revocation {
	g.t.Helper()
	ctx := context.Background()
	tk, err := g.admin().CreateSession(ctx, client.SessionRequest{Subject: subject})
	if err != nil {
		g.t.Fatal(err)
	}
	rv, err := g.admin().RevokeSession(ctx, client.SessionRevocation{SessionID: tk.SessionID, Confirm: confirm})
	if err != nil || rv.Entry == nil {
		g.t.Fatalf("RevokeSession = %+v, %v", rv, err)
	}
	return rv
}

// TestRelayPropagates: entries revoked on the node, one at a time and in
// bulk, reach every verifier that follows a relay; the node sees one
// follower (the relay), and a confirmation counts it in force once the
// verifiers behind it have applied the entry.
func TestRelayPropagates(t *testing.T) {
	t.Parallel()
	g := newRelayRig(t)
	r := g.startRelay("127.0.0.1:0", g.feedKey, 10*time.Second, g.url())
	r.waitReady(t)
	var cs []*feed.Client
	var as []*applied
	for i := range 3 {
		c, a := g.follow(fmt.Sprint("behind-", i), g.feedKey, 10*time.Second, r.url())
		waitFresh(t, c, fmt.Sprint("verifier ", i))
		cs, as = append(cs, c), append(as, a)
	}
	rv := g.revoke("one", 5*time.Second)
	if cf := rv.Confirmation; cf == nil || !cf.InForce || cf.Confirmed != 1 {
		t.Fatalf("revocation through a relay, confirm=5s: %+v, want in force, 1 confirmed (the relay)", cf)
	}
	for i, a := range as {
		if !a.has(rv.Entry.Seq) {
			t.Fatalf("verifier %d behind the relay lacks seq %d after the confirmation", i, rv.Entry.Seq)
		}
	}
	items := make([]client.RevokeItem, 2000)
	for i := range items {
		items[i] = client.RevokeItem{Subject: fmt.Sprint("bulk-", i)}
	}
	bulk, err := g.admin().RevokeMany(context.Background(), client.BulkRevocation{Items: items, Confirm: 10 * time.Second})
	if err != nil || bulk.Confirmation == nil || !bulk.Confirmation.InForce {
		t.Fatalf("bulk revocation through a relay = %+v, %v; want in force", bulk.Confirmation, err)
	}
	for i, a := range as {
		for _, it := range bulk.Items {
			if !a.has(it.Seq) {
				t.Fatalf("verifier %d behind the relay lacks bulk seq %d after the confirmation", i, it.Seq)
			}
		}
		if st := cs[i].State(); st.Position < bulk.Items[len(bulk.Items)-1].Seq {
			t.Fatalf("verifier %d position %d, want >= %d", i, st.Position, bulk.Items[len(bulk.Items)-1].Seq)
		}
	}
}

// TestRelayConfirmWaitsForVerifierBehind: a verifier behind a relay that
// has not applied an entry, and still holds its lease, keeps the node's
// confirmation pending (202, the relay named); once it applies the entry,
// the next confirmation is in force.
func TestRelayConfirmWaitsForVerifierBehind(t *testing.T) {
	t.Parallel()
	g := newRelayRig(t)
	r := g.startRelay("127.0.0.1:0", g.feedKey, 10*time.Second, g.url())
	r.waitReady(t)
	quick, _ := g.follow("quick", g.feedKey, 10*time.Second, r.url())
	slow, sa := g.follow("slow", g.feedKey, 10*time.Second, r.url())
	waitFresh(t, quick, "quick")
	waitFresh(t, slow, "slow")
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	defer release() // a failing test must not leave the verifier blocked
	sa.mu.Lock()
	sa.hold = hold
	sa.mu.Unlock()
	rv := g.revoke("held", 1500*time.Millisecond)
	cf := rv.Confirmation
	if cf == nil || cf.InForce || len(cf.Pending) != 1 || cf.Pending[0].Name != "relay e2e" {
		t.Fatalf("confirmation with a verifier behind the relay holding the entry back = %+v; want pending on the relay", cf)
	}
	if !fresh(slow) || slow.State().Position >= rv.Entry.Seq {
		t.Fatalf("the held verifier: state %+v; the test needs it fresh and behind seq %d", slow.State(), rv.Entry.Seq)
	}
	release()
	rv2 := g.revoke("released", 5*time.Second)
	if cf := rv2.Confirmation; cf == nil || !cf.InForce {
		t.Fatalf("confirmation once the verifier applied = %+v, want in force", cf)
	}
	if slow.State().Position < rv2.Entry.Seq {
		t.Fatalf("in force, yet the verifier behind the relay is at %d < %d", slow.State().Position, rv2.Entry.Seq)
	}
}

// TestRelayRestartResume: a verifier resumes from its position across a
// restart of its relay on the same address: no reset, and what was
// revoked meanwhile reaches it.
func TestRelayRestartResume(t *testing.T) {
	t.Parallel()
	g := newRelayRig(t)
	r := g.startRelay("127.0.0.1:0", g.feedKey, 10*time.Second, g.url())
	r.waitReady(t)
	c, a := g.follow("resumer", g.feedKey, 10*time.Second, r.url())
	waitFresh(t, c, "resumer")
	first := g.revoke("before", 5*time.Second)
	addr := r.addr
	r.stop()
	second := g.revoke("meanwhile", 0)
	r2 := g.startRelay(addr, g.feedKey, 10*time.Second, g.url())
	r2.waitReady(t)
	testtime.Eventually(t, 10*time.Second, "the verifier to apply what was revoked while the relay was down", func() error {
		if !a.has(second.Entry.Seq) {
			return fmt.Errorf("state %+v", c.State())
		}
		return nil
	})
	a.mu.Lock()
	resets, kept := a.resets, a.seqs[first.Entry.Seq]
	a.mu.Unlock()
	if resets != 0 || !kept {
		t.Fatalf("after the relay's restart: %d resets, seq %d kept %v; want a resume: no reset", resets, first.Entry.Seq, kept)
	}
	waitFresh(t, c, "resumer after the restart")
}

// TestRelayCutOffGoesStale: a relay cut off from its node lets its
// verifiers' leases run out no later than its own: a verifier with a
// longer bound than the relay's still goes stale within the relay's.
func TestRelayCutOffGoesStale(t *testing.T) {
	t.Parallel()
	g := newRelayRig(t)
	p := newCutProxy(t, g.addr)
	const relayBound = 2 * time.Second
	r := g.startRelay("127.0.0.1:0", g.feedKey, relayBound, p.URL())
	r.waitReady(t)
	c, _ := g.follow("cut-off", g.feedKey, 30*time.Second, r.url())
	waitFresh(t, c, "cut-off")
	cut := time.Now()
	p.block()
	testtime.Eventually(t, 3*relayBound, "the verifier behind the cut-off relay to go stale", func() error {
		if fresh(c) {
			return fmt.Errorf("still fresh until %v", c.State().FreshUntil)
		}
		return nil
	})
	if until := c.State().FreshUntil; until.After(cut.Add(relayBound)) {
		t.Fatalf("the verifier's lease ran until %v, past the relay's own bound from the cut (%v)", until, cut.Add(relayBound))
	}
	testtime.Eventually(t, 2*relayBound, "the cut-off relay to say it is not ready", func() error {
		if r.relay.Ready() == nil {
			return errors.New("Ready() = nil")
		}
		return nil
	})
}

// TestRelayEpochChange: a node restarted with a new epoch makes the
// verifiers behind a relay start over in that epoch.
func TestRelayEpochChange(t *testing.T) {
	t.Parallel()
	g := newRelayRig(t)
	r := g.startRelay("127.0.0.1:0", g.feedKey, 10*time.Second, g.url())
	r.waitReady(t)
	c, a := g.follow("epochs", g.feedKey, 10*time.Second, r.url())
	waitFresh(t, c, "epochs")
	before := g.revoke("old-epoch", 5*time.Second)
	old := c.State().Epoch
	g.stop()
	g.start(true)
	testtime.Eventually(t, 15*time.Second, "the verifier to follow the new epoch", func() error {
		st := c.State()
		if st.Epoch == old || !st.Synced || !fresh(c) {
			return fmt.Errorf("state %+v (old epoch %s)", st, old)
		}
		return nil
	})
	a.mu.Lock()
	resets, has := a.resets, a.seqs[before.Entry.Seq]
	a.mu.Unlock()
	if resets == 0 || !has {
		t.Fatalf("after the epoch change: %d resets, seq %d present %v; want a reset and the log again", resets, before.Entry.Seq, has)
	}
	// The restarted node's confirmations wait for its former self's record
	// to lapse, relay or not: the entry's arrival is what is checked.
	after := g.revoke("new-epoch", 0)
	testtime.Eventually(t, 10*time.Second, "the new epoch's entry behind the relay", func() error {
		if !a.has(after.Entry.Seq) {
			return fmt.Errorf("state %+v", c.State())
		}
		return nil
	})
}

// TestRelayRefusesKeys: a request without the relay's key is refused,
// and so is every request once the upstream refuses the relay's key.
func TestRelayRefusesKeys(t *testing.T) {
	t.Parallel()
	g := newRelayRig(t)
	r := g.startRelay("127.0.0.1:0", g.feedKey, 10*time.Second, g.url())
	r.waitReady(t)
	wrong, _ := g.follow("wrong-key", authority.NewAPIKey(), 10*time.Second, r.url())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wrong.WaitOpened(ctx); !errors.Is(err, feed.ErrRefused) {
		t.Fatalf("a verifier with another key than the relay's: WaitOpened = %v, want ErrRefused", err)
	}
	bad := authority.NewAPIKey()
	rb := g.startRelay("127.0.0.1:0", bad, 10*time.Second, g.url())
	if err := rb.relay.WaitOpened(ctx); !errors.Is(err, feed.ErrRefused) {
		t.Fatalf("relay with a key the node refuses: WaitOpened = %v, want ErrRefused", err)
	}
	behind, _ := g.follow("behind-refused", bad, 10*time.Second, rb.url())
	if err := behind.WaitOpened(ctx); !errors.Is(err, feed.ErrRefused) {
		t.Fatalf("a verifier behind a relay whose key the node refuses: WaitOpened = %v, want ErrRefused", err)
	}
}

// TestRelayServesAVerifier: a verifier whose only authority URL is a
// relay starts (discovery and keys come through the relay from the node),
// accepts a token, and refuses it as revoked once a confirmation through
// the relay is in force.
func TestRelayServesAVerifier(t *testing.T) {
	t.Parallel()
	g := newRelayRig(t)
	r := g.startRelay("127.0.0.1:0", g.feedKey, 10*time.Second, g.url())
	r.waitReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{Authorities: []string{r.url()}, APIKey: g.feedKey, Audience: "tegata",
		Name: "behind-relay", Logger: quietLogger()})
	if err != nil {
		t.Fatalf("verifier.New(relay only) = %v", err)
	}
	defer v.Close()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatalf("verifier behind the relay not ready: %v (state %+v)", err, v.State())
	}
	tk, err := g.admin().CreateSession(ctx, client.SessionRequest{Subject: "via-relay"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tk.AccessToken); err != nil {
		t.Fatalf("Verify(live token) behind the relay = %v, want nil", err)
	}
	rv, err := g.admin().RevokeSession(ctx, client.SessionRevocation{SessionID: tk.SessionID, Confirm: 5 * time.Second})
	if err != nil || rv.Confirmation == nil || !rv.Confirmation.InForce {
		t.Fatalf("RevokeSession confirm=5s = %+v, %v; want in force", rv.Confirmation, err)
	}
	if _, err := v.Verify(ctx, tk.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("Verify(revoked token) right after the confirmation = %v, want ErrRevoked", err)
	}
}

// TestRelayCommand: 'tegata relay' logs the URL it listens at (port 0
// picks one), answers /readyz 200 once caught up with a lease, serves a
// follower; with a key the node refuses it exits 1 saying so.
func TestRelayCommand(t *testing.T) {
	t.Parallel()
	bin := buildCommand(t, "cmd/tegata")
	g := newRelayRig(t)
	p := startProc(t, "relay", bin, []string{"TEGATA_FEED_KEY=" + g.feedKey},
		"relay", "--upstream", g.url(), "--listen", "127.0.0.1:0", "--stale-after", "10s")
	url := p.wait(t, regexp.MustCompile(`msg="tegata relay listening" url=(http://\S+)`), 10*time.Second)[1]
	testtime.Eventually(t, 10*time.Second, "the relay's /readyz", func() error {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	c, a := g.follow("via-command", g.feedKey, 10*time.Second, url)
	waitFresh(t, c, "via-command")
	rv := g.revoke("command", 5*time.Second)
	if cf := rv.Confirmation; cf == nil || !cf.InForce || !a.has(rv.Entry.Seq) {
		t.Fatalf("revocation through 'tegata relay': %+v, applied %v", cf, a.has(rv.Entry.Seq))
	}
	bad := startProc(t, "relay with a refused key", bin, []string{"TEGATA_FEED_KEY=" + authority.NewAPIKey()},
		"relay", "--upstream", g.url(), "--listen", "127.0.0.1:0")
	bad.wait(t, regexp.MustCompile(`the authority refused the feed key from TEGATA_FEED_KEY`), 20*time.Second)
	select {
	case <-bad.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("'tegata relay' with a refused key still runs")
	}
	if code := bad.cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("'tegata relay' with a refused key exit code = %d, want 1", code)
	}
}

// TestRelayCutOffGoesQuiet: a follower that does not name itself judges
// its freshness by heartbeats alone; a relay cut off from its node stops
// sending them once its own lease has run out.
func TestRelayCutOffGoesQuiet(t *testing.T) {
	t.Parallel()
	g := newRelayRig(t)
	p := newCutProxy(t, g.addr)
	const relayBound = 2 * time.Second
	r := g.startRelay("127.0.0.1:0", g.feedKey, relayBound, p.URL())
	r.waitReady(t)
	a := &applied{seqs: map[int64]bool{}}
	c := &feed.Client{URLs: []string{r.url()}, APIKey: g.feedKey, ApplyMany: a.applyMany, Logger: quietLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	testtime.Eventually(t, 10*time.Second, "the anonymous follower to sync", func() error {
		if !c.State().Synced {
			return errors.New("not synced")
		}
		return nil
	})
	cut := time.Now()
	p.block()
	// The relay's lease ends within its bound of the cut; a heartbeat
	// goes out at most one tick (1s) after.
	quietFrom := cut.Add(relayBound + time.Second)
	testtime.Eventually(t, 5*relayBound, "the cut-off relay to go quiet", func() error {
		if now := time.Now(); now.Before(quietFrom.Add(2 * time.Second)) {
			return fmt.Errorf("waiting until %v", quietFrom.Add(2*time.Second))
		}
		return nil
	})
	if heard := c.State().LastHeard; heard.After(quietFrom) {
		t.Fatalf("the anonymous follower last heard the cut-off relay at %v, after its lease ran out (%v)", heard, quietFrom)
	}
}

// TestRelayFailover: a verifier given the relay's URL and then a node's
// fails over to the node when the relay stops, and stays current there; a
// confirmation is in force once the stopped relay has been silent for its
// bound (the node cannot tell that its verifiers moved).
func TestRelayFailover(t *testing.T) {
	t.Parallel()
	g := newRelayRig(t)
	r := g.startRelay("127.0.0.1:0", g.feedKey, 2*time.Second, g.url())
	r.waitReady(t)
	c, a := g.follow("failover", g.feedKey, 10*time.Second, r.url(), g.url())
	waitFresh(t, c, "failover")
	if src := c.State().Source; src != r.url() {
		t.Fatalf("the verifier follows %s, want the relay %s first", src, r.url())
	}
	r.stop()
	testtime.Eventually(t, 10*time.Second, "the verifier to follow the node", func() error {
		if st := c.State(); st.Source != g.url() || !st.Connected || !fresh(c) {
			return fmt.Errorf("state %+v", st)
		}
		return nil
	})
	rv := g.revoke("after-failover", 5*time.Second)
	if cf := rv.Confirmation; cf == nil || !cf.InForce || !a.has(rv.Entry.Seq) {
		t.Fatalf("revocation after the failover: %+v, applied %v", cf, a.has(rv.Entry.Seq))
	}
}
