package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// member is a node or gate of the chaos cluster: a process the nemesis
// kills, pauses and restarts with the same arguments and address.
type member struct {
	name string
	env  []string
	args []string
	url  string // http://addr, fixed across restarts

	mu     sync.Mutex
	p      *process
	paused bool
}

func (m *member) proc() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p
}

// start runs the member and waits until its URL answers health at path.
func (m *member) start(ctx context.Context, setup Setup, hc *http.Client, health string) error {
	p, err := startProcess(setup, "", m.name, m.env, m.args...)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.p, m.paused = p, false
	m.mu.Unlock()
	p.stopLines()
	return p.waitHTTP(ctx, hc, m.url+health)
}

// signal sends sig to the running process; SIGSTOP and SIGCONT are
// remembered so that the end of the run resumes what is paused.
func (m *member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p == nil || m.p.exited() {
		return fmt.Errorf("%s is not running", m.name)
	}
	switch sig {
	case syscall.SIGSTOP:
		m.paused = true
	case syscall.SIGCONT:
		m.paused = false
	}
	return m.p.cmd.Process.Signal(sig)
}

// kill ends the process at once and waits for it.
func (m *member) kill() {
	p := m.proc()
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop resumes a paused process and shuts it down.
func (m *member) stop() {
	_ = m.signal(syscall.SIGCONT)
	if p := m.proc(); p != nil {
		p.stop()
	}
}

// chaosCluster is the cluster of a chaos run: nodes on one Postgres
// schema, each reaching Postgres through a link, and gates reaching every
// node through links of their own.
type chaosCluster struct {
	*cluster
	members []*member // nodes
	gates   []*member
	pgLinks []*link   // by node
	gateLnk [][]*link // by gate, then node
	admin   []*client.Client
}

// startChaosCluster starts nodes authority nodes and gates gates.
func startChaosCluster(ctx context.Context, setup Setup, nodes, gates int, staleAfter time.Duration) (cc *chaosCluster, err error) {
	c, err := newCluster(setup)
	if err != nil {
		return nil, err
	}
	cc = &chaosCluster{cluster: c}
	defer func() {
		if err != nil {
			cc.close()
			cc = nil
		}
	}()
	if c.schema, err = newSchema(ctx, setup.postgres()); err != nil {
		return cc, err
	}
	setup.logf("chaos: schema %s created", c.schema.name)
	if err := cc.startNodes(ctx, nodes); err != nil {
		return cc, err
	}
	return cc, cc.startGates(ctx, gates, staleAfter)
}

// nodeArgs are a chaos node's flags: rotated keys sign after 5 s, so that
// a run of minutes sees tokens of several keys.
func (cc *chaosCluster) startNodes(ctx context.Context, n int) error {
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	env := []string{"TEGATA_API_KEY=" + cc.apiKey, "TEGATA_FEED_KEY=" + cc.feedKey,
		"TEGATA_MASTER_KEY=" + base64.StdEncoding.EncodeToString(master)}
	pg, err := url.Parse(cc.schema.dsn)
	if err != nil {
		return err
	}
	for i := range n {
		dir, err := os.MkdirTemp(cc.dir, fmt.Sprintf("node%d-", i))
		if err != nil {
			return err
		}
		pl, err := newLink(pg.Host)
		if err != nil {
			return err
		}
		cc.pgLinks = append(cc.pgLinks, pl)
		dsn := *pg
		dsn.Host = pl.addr()
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		m := &member{name: fmt.Sprintf("node%d", i), env: env, url: "http://" + addr,
			args: []string{"serve", "--addr", addr, "--data", dir, "--db", dsn.String(), "--issuer", benchIssuer,
				"--rate-limits", "off", "--log-level", "warn", "--key-publish-delay", "5s"}}
		if err := m.start(ctx, cc.setup, cc.hc, "/readyz"); err != nil {
			return err
		}
		cc.members = append(cc.members, m)
		cc.nodes = append(cc.nodes, m.proc())
		cc.urls = append(cc.urls, m.url)
		cc.admin = append(cc.admin, &client.Client{BaseURL: m.url, APIKey: cc.apiKey, HTTPClient: cc.hc})
		cc.setup.logf("chaos: node %d at %s", i, m.url)
	}
	cc.clients = cc.admin
	return nil
}

// links makes one link to every node, for one client.
func (cc *chaosCluster) links() ([]*link, []string, error) {
	var ls []*link
	var urls []string
	for _, m := range cc.members {
		l, err := newLink(strings.TrimPrefix(m.url, "http://"))
		if err != nil {
			return nil, nil, err
		}
		ls = append(ls, l)
		urls = append(urls, "http://"+l.addr())
	}
	return ls, urls, nil
}

func (cc *chaosCluster) startGates(ctx context.Context, n int, staleAfter time.Duration) error {
	for i := range n {
		ls, urls, err := cc.links()
		if err != nil {
			return err
		}
		cc.gateLnk = append(cc.gateLnk, ls)
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		m := &member{name: fmt.Sprintf("gate%d", i), env: gateEnv(cc.feedKey), url: "http://" + addr,
			args: []string{"gate", "--authority", strings.Join(rotate(urls, i), ","), "--listen", addr,
				"--log-level", "warn", "--stale-after", staleAfter.String(), "--name", fmt.Sprintf("chaos-gate%d", i)}}
		if err := m.start(ctx, cc.setup, cc.hc, "/readyz"); err != nil {
			return err
		}
		cc.gates = append(cc.gates, m)
		cc.gateURL = append(cc.gateURL, m.url)
		cc.setup.logf("chaos: gate %d at %s", i, m.url)
	}
	return nil
}

// close stops everything and drops the schema.
func (cc *chaosCluster) close() {
	cc.hc.CloseIdleConnections()
	for _, m := range cc.gates {
		m.stop()
	}
	for _, m := range cc.members {
		m.stop()
	}
	cc.cluster.nodes, cc.cluster.gates = nil, nil
	for _, ls := range cc.gateLnk {
		for _, l := range ls {
			l.close()
		}
	}
	for _, l := range cc.pgLinks {
		l.close()
	}
	cc.cluster.close()
}
