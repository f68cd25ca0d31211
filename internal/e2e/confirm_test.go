package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// revokeAnswer is the answer to a revocation with ?confirm=.
type revokeAnswer struct {
	Revoked      bool                `json:"revoked"`
	Confirmation client.Confirmation `json:"confirmation"`
}

// revokeConfirm revokes a session on node i with ?confirm=wait and returns
// the status and the answer.
func (c *cluster) revokeConfirm(i int, sid string, wait time.Duration) (int, revokeAnswer) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.url(i)+"/v1/sessions/"+sid+"/revoke?confirm="+wait.String(), strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a revokeAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		c.t.Fatalf("revoke answer %d %s: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, a
}

func (c *cluster) session(i int, subject string) client.Tokens {
	c.t.Helper()
	tk, err := c.client(i).CreateSession(context.Background(), client.SessionRequest{Subject: subject})
	if err != nil {
		c.t.Fatal(err)
	}
	return tk
}

// TestConfirmAcrossNodes: two nodes, three gates following different
// nodes. A revocation with confirm=5s on either node answers 200 with
// confirmed 3, and each gate refuses the token on the first request made
// after the call returns.
func TestConfirmAcrossNodes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	gates := []*gateProc{
		c.startGate("gate-a", 10*time.Second, c.url(0), c.url(1)),
		c.startGate("gate-b", 10*time.Second, c.url(1), c.url(0)),
		c.startGate("gate-b2", 10*time.Second, c.url(1)),
	}
	c.waitListed(0, "gate-a", "gate-b", "gate-b2")
	c.waitListed(1, "gate-a", "gate-b", "gate-b2")
	for _, node := range []int{0, 1} {
		tk := c.session(node, fmt.Sprint("confirm-", node))
		for _, g := range gates {
			if code, _, err := g.auth(tk.AccessToken); code != http.StatusOK {
				t.Fatalf("gate %s before revocation = %d, %v; want 200", g.name, code, err)
			}
		}
		status, a := c.revokeConfirm(node, tk.SessionID, 5*time.Second)
		if status != http.StatusOK || !a.Revoked || !a.Confirmation.InForce || a.Confirmation.Confirmed != 3 ||
			len(a.Confirmation.Pending) != 0 {
			t.Fatalf("revoke on node %d with confirm=5s = %d %+v, want 200 in force, confirmed 3", node, status, a)
		}
		t.Logf("node %d: in force on 3 gates after %d ms", node, a.Confirmation.WaitedMS)
		for _, g := range gates {
			g.mustRefuse(tk.AccessToken, "token revoked")
		}
	}
}

// TestConfirmFrozenGate: a gate frozen with SIGSTOP is named pending until
// its staleness bound has passed since it was last heard; then the
// revocation is in force (the gate refuses everything), and once resumed
// the gate refuses the token.
func TestConfirmFrozenGate(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	// The live gates have confirmWait to confirm, on a loaded machine too;
	// the frozen one, last heard at most half of its bound before it froze
	// (it renews its lease then), is still within its bound when
	// confirmWait has passed, by a second.
	const stale, confirmWait = 6 * time.Second, 2 * time.Second
	ga := c.startGate("gate-a", stale, c.url(0))
	gb := c.startGate("gate-b", stale, c.url(1))
	frozen := c.startGate("gate-frozen", stale, c.url(1))
	listed := c.waitListed(0, "gate-a", "gate-b", "gate-frozen")
	tk := c.session(0, "frozen")
	if code, _, _ := frozen.auth(tk.AccessToken); code != http.StatusOK {
		t.Fatalf("frozen gate before = %d, want 200", code)
	}
	frozen.signal(syscall.SIGSTOP)

	status, a := c.revokeConfirm(0, tk.SessionID, confirmWait)
	p := a.Confirmation.Pending
	if status != http.StatusAccepted || a.Confirmation.InForce || len(p) != 1 || p[0].Name != "gate-frozen" ||
		p[0].ID != listed["gate-frozen"].ID {
		t.Fatalf("revoke with a frozen gate, confirm=%s = %d %+v, want 202 naming gate-frozen pending", confirmWait, status, a)
	}
	// Asking again (the session is already revoked: the log's head is
	// confirmed) waits until the frozen gate's bound has passed.
	status, a = c.revokeConfirm(1, tk.SessionID, 4*stale)
	done := time.Now()
	if status != http.StatusOK || a.Revoked || !a.Confirmation.InForce || a.Confirmation.Confirmed != 2 {
		t.Fatalf("confirm again with confirm=%s = %d %+v, want 200 in force, confirmed 2", 4*stale, status, a)
	}
	if bound := p[0].LastHeard.Add(stale); done.Before(bound) {
		t.Fatalf("in force at %s, before the frozen gate's bound %s (last heard %s + %s)", done, bound, p[0].LastHeard, stale)
	}
	ga.mustRefuse(tk.AccessToken, "token revoked")
	gb.mustRefuse(tk.AccessToken, "token revoked")
	frozen.signal(syscall.SIGCONT)
	frozen.mustRefuse(tk.AccessToken, "token revoked", "verifier not in sync with authority")
}

// TestVerifierIdentity: a gate whose stream is cut reconnects as the same
// verifier, not a second one; a gate gone for good leaves the list once
// its staleness bound has passed since it was last heard.
func TestVerifierIdentity(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	cut := newCutProxy(t, c.addrs[0])
	const stale = 2 * time.Second
	g := c.startGate("gate-cut", stale, cut.URL())
	first := c.waitListed(0, "gate-cut")["gate-cut"]
	if n := cut.cut(); n == 0 {
		t.Fatal("no connection to cut: the test would not test reconnecting")
	}
	cutAt := time.Now()
	eventually(t, 10*time.Second, "the gate heard again after the cut", func() error {
		got := c.waitListed(0, "gate-cut")["gate-cut"]
		if got.ID != first.ID {
			return fmt.Errorf("id after reconnecting = %s, want %s", got.ID, first.ID)
		}
		if !got.LastHeard.After(cutAt) {
			return fmt.Errorf("last heard %s, not after the cut at %s", got.LastHeard, cutAt)
		}
		return nil
	})
	if !strings.Contains(g.Logs(), "feed: stream ended") {
		t.Fatalf("the gate's log shows no stream ending:\n%s", g.Logs())
	}

	var last time.Time
	_ = g.cmd.Process.Kill()
	eventually(t, 15*time.Second, "the killed gate leaves the list", func() error {
		vs, err := c.verifiers(0)
		if err != nil {
			return err
		}
		if v, ok := vs["gate-cut"]; ok {
			last = v.LastHeard
			return fmt.Errorf("still listed (last heard %s)", v.LastHeard)
		}
		return nil
	})
	if gone := time.Now(); !last.IsZero() && gone.Before(last.Add(stale)) {
		t.Fatalf("dropped at %s, before its bound (last heard %s + %s)", gone, last, stale)
	}
}

// TestIssuerRecorded: the first node records the cluster's issuer; a node
// started with another refuses to start (in process and as a process), one
// started without any uses the recorded one.
func TestIssuerRecorded(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	start := func(issuer string) (*server.Running, error) {
		return server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), DB: c.dsn,
			Issuer: issuer, MasterKey: c.master, APIKey: c.apiKey, Limits: &httpapi.Limits{}, Logger: quietLogger()})
	}
	if r, err := start("https://elsewhere.example"); err == nil || !strings.Contains(err.Error(), "does not match") {
		if r != nil {
			_ = r.Shutdown(context.Background())
		}
		t.Fatalf("Start with another issuer = %v, want a refusal naming the mismatch", err)
	}
	cmd := exec.Command(tegataBinary(t), "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--db", c.dsn,
		"--issuer", "https://elsewhere.example")
	cmd.Env = append(cmd.Environ(), "TEGATA_MASTER_KEY="+c.master, "TEGATA_API_KEY="+c.apiKey)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), `"https://auth.e2e.test"`) {
		t.Fatalf("tegata serve --issuer elsewhere = %v\n%s\nwant a non-zero exit naming the recorded issuer", err, out)
	}
	r, err := start("")
	if err != nil {
		t.Fatalf("Start without an issuer = %v", err)
	}
	defer r.Shutdown(context.Background())
	if got := r.Authority.Config().Issuer; got != "https://auth.e2e.test" {
		t.Fatalf("issuer of a node started without one = %q, want the recorded https://auth.e2e.test", got)
	}
}

// TestEpochChangeResetsGate: a gate whose authority address comes to serve
// another cluster's log (another epoch) starts over: it never accepts a
// token that log revoked, not even one revoked below the position it had
// reached in the old log, and refuses tokens until it has caught up.
func TestEpochChangeResetsGate(t *testing.T) {
	t.Parallel()
	x := newCluster(t, 1)
	y := &cluster{t: t, dsn: migrated.Schema(t), master: x.master, apiKey: x.apiKey, feedKey: x.feedKey}
	y.add(y.dsn)
	t.Cleanup(func() { y.stop(0) })
	proxy := newCutProxy(t, x.addrs[0])
	g := x.startGate("gate-epoch", 10*time.Second, proxy.URL())
	for i := range 3 {
		tk := x.session(0, fmt.Sprint("x-", i))
		if _, err := x.client(0).RevokeSession(context.Background(), client.SessionRevocation{SessionID: tk.SessionID, Reason: ""}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the gate at position 3 of x's log", func() error {
		v := x.waitListed(0, "gate-epoch")["gate-epoch"]
		if v.Position != 3 {
			return fmt.Errorf("position %d", v.Position)
		}
		return nil
	})
	// y's log: the first entry revokes revoked, then enough to pass 3.
	revoked := y.session(0, "y-revoked")
	if _, err := y.client(0).RevokeSession(context.Background(), client.SessionRevocation{SessionID: revoked.SessionID, Reason: ""}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		tk := y.session(0, fmt.Sprint("y-", i))
		if _, err := y.client(0).RevokeSession(context.Background(), client.SessionRevocation{SessionID: tk.SessionID, Reason: ""}); err != nil {
			t.Fatal(err)
		}
	}
	valid := y.session(0, "y-valid")

	proxy.block()
	proxy.retarget(y.addrs[0])
	proxy.unblock()
	// Until the gate has caught up with y (it accepts y's valid token),
	// and at every look, the token y revoked is refused.
	testtime.Eventually(t, 30*time.Second, "the gate to accept y's valid token", func() error {
		code, challenge, err := g.auth(revoked.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusUnauthorized {
			t.Fatalf("gate accepted a token y's log revoked at seq 1 (challenge %q): it trusted its position in x's log", challenge)
		}
		if code, challenge, _ := g.auth(valid.AccessToken); code != http.StatusOK {
			return fmt.Errorf("y's valid token answered %d (%s)", code, challenge)
		}
		return nil
	})
	g.mustRefuse(revoked.AccessToken, "token revoked")
	if !strings.Contains(g.Logs(), "another epoch") {
		t.Fatalf("the gate's log does not show the epoch change:\n%s", g.Logs())
	}
}
