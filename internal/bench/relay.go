package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// relayStaleAfter is the staleness bound each relay is started with: the
// in-process verifiers' own (fanVerifier), so a relay holds the leases it
// passes down as long as a verifier would hold its own.
const relayStaleAfter = "10s"

// startRelays starts n `tegata relay` processes, relay i following node
// i mod nodes first (the nodes in turn, as the verifiers of the direct
// topology do), and waits until each says where it serves the feed and is
// ready (synced, holding a lease). The gates and in-process verifiers
// started afterwards follow the relays (followURLs).
func (c *cluster) startRelays(ctx context.Context, n int) error {
	for i := range n {
		upstream := rotate(c.urls, i)
		p, err := startProcess(c.setup, c.dir, fmt.Sprintf("relay %d", i), relayEnv(c.feedKey), relayArgs(upstream)...)
		if err != nil {
			return err
		}
		c.relays = append(c.relays, p)
		url, err := p.waitLine(ctx, readyURL, "'ready at URL' (or 'listening url=') line")
		if err != nil {
			return err
		}
		c.relayURLs = append(c.relayURLs, url)
		if err := p.waitHTTP(ctx, c.hc, url+"/readyz"); err != nil {
			return err
		}
		c.setup.logf("relay %d ready at %s, following %s", i, url, upstream[0])
	}
	return nil
}

// relayArgs is the command line of a relay following the nodes upstream
// (the first, then the others as fallback), serving on a port of its own.
func relayArgs(upstream []string) []string {
	return []string{"relay", "--upstream", strings.Join(upstream, ","), "--listen", "127.0.0.1:0",
		"--stale-after", relayStaleAfter, "--log-level", "info"}
}

// relayEnv is a relay's environment: the feed key it follows the node
// with, under the names a gate reads.
func relayEnv(feedKey string) []string { return gateEnv(feedKey) }

// followURLs are the URLs the in-process verifiers and the gates follow:
// the relays when there are any, else the nodes.
func (c *cluster) followURLs() []string {
	if len(c.relayURLs) > 0 {
		return c.relayURLs
	}
	return c.urls
}

// readyURL extracts the base URL a child serves at from a line of its
// log: `... ready at http://127.0.0.1:4242`, a slog line's url= attribute
// on a "listening" or "ready" line, or its addr= attribute (a host:port
// the URL is http:// of). "" when the line says none of these.
func readyURL(line string) string {
	if u := listeningURL(line); u != "" {
		return u
	}
	if _, rest, ok := strings.Cut(line, "ready at "); ok {
		return strings.Trim(firstField(rest), `"`)
	}
	if !strings.Contains(line, "listening") && !strings.Contains(line, "ready") {
		return ""
	}
	for _, attr := range []string{" url=", " addr="} {
		if _, rest, ok := strings.Cut(line, attr); ok {
			v := strings.Trim(firstField(rest), `"`)
			if attr == " addr=" && !strings.Contains(v, "://") {
				v = "http://" + v
			}
			return v
		}
	}
	return ""
}

// firstField is s up to its first space.
func firstField(s string) string {
	f, _, _ := strings.Cut(s, " ")
	return f
}

// spent is what the authority nodes and the relays have used so far: CPU
// seconds, and resident memory in KiB.
type spent struct {
	node, relay       float64 // CPU seconds, or a rate or cost derived from them
	nodeRSS, relayRSS float64
}

// sub is u − v, side by side.
func (u spent) sub(v spent) spent {
	return spent{u.node - v.node, u.relay - v.relay, u.nodeRSS - v.nodeRSS, u.relayRSS - v.relayRSS}
}

// scale is u's CPU times k (memory dropped: it is not a rate).
func (u spent) scale(k float64) spent { return spent{node: u.node * k, relay: u.relay * k} }

// spent reads the nodes' and the relays' CPU and memory from /proc.
func (f *fanoutRun) spent() spent {
	var u spent
	u.node, u.nodeRSS = procsUsage(f.c.nodes)
	u.relay, u.relayRSS = procsUsage(f.c.relays)
	return u
}

// procsUsage sums the CPU seconds so far and the resident memory (KiB) of
// ps. A process that has exited counts 0: alive() reports it.
func procsUsage(ps []*process) (cpu, rss float64) {
	for _, p := range ps {
		pid := strconv.Itoa(p.cmd.Process.Pid)
		cpu += procCPU(pid)
		rss += procRSS(pid)
	}
	return cpu, rss
}
