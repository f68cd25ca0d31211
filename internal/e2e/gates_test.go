package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/testproc"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// parallelTests is how many tests run at once unless -parallel says
// otherwise. These tests spend most of their time waiting (on staleness
// bounds, processes, the network), not computing, so go test's default,
// the number of CPUs, would leave the machine idle; browsers are limited
// apart (newBrowser).
const parallelTests = 8

func TestMain(m *testing.M) {
	testtime.DefaultParallel(parallelTests)
	code := pgtest.Main(m)
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// tegataBinary returns the tegata binary, built once for the package.
func tegataBinary(t *testing.T) string {
	t.Helper()
	return buildCommand(t, "cmd/tegata")
}

// gateProc is a `tegata gate` process.
type gateProc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
}

var gateListening = regexp.MustCompile(`tegata gate listening" addr=(\S+)`)

// startGate runs a gate named name following the authorities (the first
// one first) with the read-only feed key, and waits until it is ready.
func (c *cluster) startGate(name string, staleAfter time.Duration, authorities ...string) *gateProc {
	c.t.Helper()
	g := &gateProc{t: c.t, name: name}
	g.cmd = exec.Command(tegataBinary(c.t), "gate", "--authority", strings.Join(authorities, ","),
		"--listen", "127.0.0.1:0", "--name", name, "--stale-after", staleAfter.String(), "--log-level", "debug")
	g.cmd.Env = append(os.Environ(), "TEGATA_FEED_KEY="+c.feedKey, "TEGATA_API_KEY=")
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			g.mu.Lock()
			g.logs.WriteString(sc.Text() + "\n")
			g.mu.Unlock()
			if m := gateListening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	c.t.Cleanup(func() {
		_ = g.cmd.Process.Signal(syscall.SIGCONT) // a frozen gate cannot die
		_ = g.cmd.Process.Kill()
		_ = g.cmd.Wait()
		if c.t.Failed() {
			c.t.Logf("gate %s log:\n%s", name, g.Logs())
		}
	})
	select {
	case a := <-addr:
		g.url = "http://" + a
	case <-time.After(30 * time.Second):
		c.t.Fatalf("gate %s did not start:\n%s", name, g.Logs())
	}
	eventually(c.t, 20*time.Second, "gate "+name+" ready", func() error {
		resp, err := http.Get(g.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d", resp.StatusCode)
		}
		return nil
	})
	return g
}

func (g *gateProc) Logs() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.logs.String()
}

func (g *gateProc) signal(sig syscall.Signal) {
	g.t.Helper()
	send := g.cmd.Process.Signal
	if sig == syscall.SIGSTOP {
		send = func(os.Signal) error { return testproc.Freeze(g.cmd.Process) }
	}
	if err := send(sig); err != nil {
		g.t.Fatalf("signal %v to gate %s: %v", sig, g.name, err)
	}
}

// auth asks the gate about a token once: 200 and "", or 401 and the
// reason it gave.
func (g *gateProc) auth(token string) (int, string, error) {
	req, _ := http.NewRequest("GET", g.url+"/auth", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), nil
}

// mustRefuse checks that the gate's first answer about token is a 401 for
// one of the reasons given.
func (g *gateProc) mustRefuse(token string, reasons ...string) {
	g.t.Helper()
	code, challenge, err := g.auth(token)
	if err != nil {
		g.t.Fatalf("gate %s: %v", g.name, err)
	}
	if code != http.StatusUnauthorized {
		g.t.Fatalf("gate %s: first request after the call = %d, want 401", g.name, code)
	}
	for _, r := range reasons {
		if strings.Contains(challenge, r) {
			return
		}
	}
	g.t.Fatalf("gate %s: refused with %q, want one of %q", g.name, challenge, reasons)
}

// verifiers lists the cluster's verifiers by name, as node i sees them.
func (c *cluster) verifiers(i int) (map[string]client.Verifier, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.client(i).Verifiers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]client.Verifier{}
	for _, v := range l.Verifiers {
		if _, dup := out[v.Name]; dup {
			return nil, fmt.Errorf("two verifiers named %s: %+v", v.Name, l.Verifiers)
		}
		out[v.Name] = v
	}
	return out, nil
}

// waitListed waits until node i lists exactly the named verifiers.
func (c *cluster) waitListed(i int, names ...string) map[string]client.Verifier {
	c.t.Helper()
	var got map[string]client.Verifier
	eventually(c.t, 15*time.Second, fmt.Sprintf("node %d lists %v", i, names), func() error {
		var err error
		if got, err = c.verifiers(i); err != nil {
			return err
		}
		if len(got) != len(names) {
			return fmt.Errorf("listed %d verifiers: %v", len(got), got)
		}
		for _, n := range names {
			if _, ok := got[n]; !ok {
				return errors.New(n + " not listed")
			}
		}
		return nil
	})
	return got
}
