package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// cluster is authority nodes sharing one Postgres schema and gates
// following them, each a process of its own.
type cluster struct {
	setup   Setup
	schema  *schema
	dir     string
	apiKey  string
	feedKey string // what gates and verifiers follow the feed with
	nodes   []*process
	urls    []string
	// profile is each node's CPU profile URL, with Setup.NodeProfiles.
	profile []string
	clients []*client.Client // one per node
	// relays are `tegata relay` processes following the nodes, relayURLs
	// where each serves the feed.
	relays    []*process
	relayURLs []string
	gates     []*process
	gateURL   []string // http://addr of each gate
	hc        *http.Client
	// keep leaves dir (the processes' stderr logs, SQLite's data) in place
	// at close, for a run that failed.
	keep bool
}

// newHTTPClient returns a client that keeps up to conns connections per
// host alive, so a load generator does not spend its time dialing.
func newHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = conns
	t.DisableCompression = true
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// newCluster makes a cluster's keys, HTTP client and scratch directory,
// before any process starts.
func newCluster(setup Setup) (*cluster, error) {
	if setup.Binary == "" {
		return nil, errNoBinary
	}
	dir, err := os.MkdirTemp("", "tegata-bench-")
	if err != nil {
		return nil, err
	}
	return &cluster{setup: setup, dir: dir, apiKey: "tgk_bench_" + randomString(24),
		feedKey: "tgk_benchfeed_" + randomString(24), hc: newHTTPClient(256)}, nil
}

// startCluster starts nodes authority nodes on a fresh schema, then gates
// gates, gate i following node i mod nodes first and the others as
// fallback, and waits until every gate is ready. close undoes everything,
// also after an error.
func startCluster(ctx context.Context, setup Setup, nodes, gates int) (c *cluster, err error) {
	if c, err = newCluster(setup); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.close()
			c = nil
		}
	}()
	if c.schema, err = newSchema(ctx, setup.postgres()); err != nil {
		return c, err
	}
	setup.logf("schema %s created", c.schema.name)
	if err = c.startNodes(ctx, nodes); err != nil {
		return c, err
	}
	return c, c.startGates(ctx, gates)
}

// benchIssuer is the issuer every node puts in its tokens: nodes of one
// deployment share one, so a gate following any node accepts the tokens of
// all of them (by default each node would name its own address).
const benchIssuer = "http://tegata-bench.invalid"

// startNodes starts the authority nodes one after the other: the first
// migrates the schema and creates the signing key, which the others then
// open with the shared master key.
func (c *cluster) startNodes(ctx context.Context, n int) error {
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	env := []string{"TEGATA_API_KEY=" + c.apiKey, "TEGATA_FEED_KEY=" + c.feedKey,
		"TEGATA_MASTER_KEY=" + base64.StdEncoding.EncodeToString(master)}
	for i := range n {
		dir, err := os.MkdirTemp(c.dir, fmt.Sprintf("node%d-", i))
		if err != nil {
			return err
		}
		p, err := c.startNode(fmt.Sprintf("authority node %d", i), env,
			"--addr", "127.0.0.1:0", "--data", dir, "--db", c.schema.dsn,
			"--issuer", benchIssuer, "--rate-limits", "off", "--log-level", "info")
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, p)
		url, err := p.waitListening(ctx)
		if err != nil {
			return err
		}
		c.urls = append(c.urls, url)
		c.clients = append(c.clients, &client.Client{BaseURL: url, APIKey: c.apiKey, HTTPClient: c.hc})
		c.setup.logf("authority node %d listening at %s", i, url)
	}
	return nil
}

// startNode starts `tegata serve args...` with the flags every node gets
// (Setup.nodeFlags), noting where its profiles are served.
func (c *cluster) startNode(name string, env []string, args ...string) (*process, error) {
	extra, err := c.setup.nodeFlags()
	if err != nil {
		return nil, err
	}
	p, err := startProcess(c.setup, c.dir, name, env, append(append([]string{"serve"}, args...), extra...)...)
	if err != nil {
		return nil, err
	}
	if len(extra) > 0 {
		c.profile = append(c.profile, "http://"+extra[1]+"/debug/pprof/profile")
	}
	return p, nil
}

// startGates starts the gates, gate i following followURLs()[i mod len]
// first (a node, or a relay, which passes the gate's other requests
// through to its node) and the others as fallback, and waits for each to
// be ready.
func (c *cluster) startGates(ctx context.Context, n int) error {
	urls := c.followURLs()
	for i := range n {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		p, err := startProcess(c.setup, c.dir, fmt.Sprintf("gate %d", i), gateEnv(c.feedKey),
			"gate", "--authority", strings.Join(rotate(urls, i), ","), "--listen", addr, "--log-level", "warn")
		if err != nil {
			return err
		}
		c.gates = append(c.gates, p)
		c.gateURL = append(c.gateURL, "http://"+addr)
	}
	for i, p := range c.gates {
		if err := p.waitHTTP(ctx, c.hc, c.gateURL[i]+"/readyz"); err != nil {
			return err
		}
		c.setup.logf("gate %d ready at %s, following %s", i, c.gateURL[i], rotate(urls, i)[0])
	}
	return nil
}

// rotate returns urls starting at index i mod len(urls).
func rotate(urls []string, i int) []string {
	if len(urls) == 0 {
		return nil
	}
	i %= len(urls)
	return append(append([]string(nil), urls[i:]...), urls[:i]...)
}

// close stops the gates, then the relays, then the nodes, and drops the
// schema. Idle
// connections go first: a connection dialed but never used holds up an
// http.Server's Shutdown for 5 seconds.
func (c *cluster) close() {
	c.hc.CloseIdleConnections()
	for _, p := range c.gates {
		p.stop()
	}
	for _, p := range c.relays {
		p.stop()
	}
	for _, p := range c.nodes {
		p.stop()
	}
	if c.schema != nil {
		if err := c.schema.drop(); err != nil {
			c.setup.logf("dropping schema %s: %v", c.schema.name, err)
		}
	}
	switch {
	case c.dir != "" && c.keep:
		c.setup.logf("kept %s: the processes' stderr logs and data", c.dir)
	case c.dir != "":
		_ = os.RemoveAll(c.dir)
	}
}

// failed wraps err, a call to a node that failed or a wait that gave up,
// with the state of every node, relay and gate: whether it runs, how it
// ended, where its stderr log is.
func (c *cluster) failed(err error) error {
	var b strings.Builder
	for _, p := range c.processes() {
		b.WriteString("\n  " + p.state())
	}
	return fmt.Errorf("%w; the processes:%s", err, b.String())
}

// alive returns an error naming the first child process that has exited.
func (c *cluster) alive() error {
	for _, p := range c.processes() {
		if p.exited() {
			return p.errorf("exited during the run (%v)", p.cmd.ProcessState)
		}
	}
	return nil
}

// processes are the nodes, the relays and the gates.
func (c *cluster) processes() []*process {
	return append(append(append([]*process(nil), c.nodes...), c.relays...), c.gates...)
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// cpuGroups accounts for the CPU of the cluster's processes, of Postgres
// (every process named postgres) and of the benchmark itself.
func (c *cluster) cpuGroups() *cpuGroups {
	g := newCPUGroups()
	g.addName("postgres", "postgres")
	for _, p := range c.nodes {
		g.add("authority nodes", p.cmd.Process.Pid)
	}
	for _, p := range c.relays {
		g.add("relays", p.cmd.Process.Pid)
	}
	for _, p := range c.gates {
		g.add("gates", p.cmd.Process.Pid)
	}
	g.add("benchmark process", os.Getpid())
	return g
}
