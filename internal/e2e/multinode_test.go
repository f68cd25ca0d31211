package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/verifier"
)

// TestRevocationsReachEveryVerifier: hundreds of revocations made in
// parallel on two authority nodes reach verifiers following either node —
// including one whose stream is cut repeatedly mid-way — and none is lost.
func TestRevocationsReachEveryVerifier(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	cut := newCutProxy(t, c.addrs[1])
	followers := map[string]*verifier.Verifier{
		"follows A":           c.follow(c.url(0)),
		"follows B":           c.follow(c.url(1)),
		"follows B, cut, A":   c.follow(cut.URL(), c.url(0)),
		"follows B via proxy": c.follow(cut.URL()),
	}
	const n = 300
	toks := c.sessions(n, "user-")
	keep := c.sessions(5, "keeper-")

	stopCutting := cut.cutRepeatedly(20 * time.Millisecond) // cut the proxied streams over and over while revoking
	parallel(t, n, 32, func(i int) error {
		_, err := c.client(i%2).RevokeSession(context.Background(), client.SessionRevocation{SessionID: toks[i].SessionID, Reason: "test"})
		return err
	})
	cuts := stopCutting()
	if cuts == 0 {
		t.Fatal("no stream was cut during the revocations: the test did not test resumption")
	}
	for name, v := range followers {
		eventually(t, 10*time.Second, name, func() error { return allRevoked(v, toks) })
		for _, k := range keep {
			if _, err := v.Verify(context.Background(), k.AccessToken); err != nil {
				t.Fatalf("%s: Verify(unrevoked) = %v, want nil", name, err)
			}
		}
	}
}

// TestLateVerifierIsReadyOnlyWithEverything: a verifier started after
// revocations were made rejects them as soon as it reports ready.
func TestLateVerifierIsReadyOnlyWithEverything(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	toks := c.sessions(200, "late-")
	parallel(t, len(toks), 16, func(i int) error {
		_, err := c.client(0).RevokeSession(context.Background(), client.SessionRevocation{SessionID: toks[i].SessionID})
		return err
	})
	v := c.follow(c.url(0)) // returns once WaitReady does
	if err := allRevoked(v, toks); err != nil {
		t.Fatalf("right after WaitReady: %v", err)
	}
}

// TestAuthorityRestartAndFailover: a verifier following two nodes keeps
// receiving revocations while each node in turn goes down and comes back.
func TestAuthorityRestartAndFailover(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	v := c.follow(c.url(0), c.url(1))
	for round, down := range []int{0, 1, 0} {
		up := 1 - down
		c.stop(down)
		tk := createAndRevoke(t, c, up, fmt.Sprintf("round %d", round))
		eventually(t, 15*time.Second, "revocation while a node is down", func() error { return allRevoked(v, []client.Tokens{tk}) })
		c.start(down)
		eventually(t, 15*time.Second, fmt.Sprintf("node %d ready after its restart", down), func() error {
			return readyz(c.url(down), http.StatusOK, `"ready":true`)
		})
	}
	// Both up again: a revocation on the restarted node arrives too.
	tk := createAndRevoke(t, c, 0, "after restarts")
	eventually(t, 10*time.Second, "revocation after restarts", func() error { return allRevoked(v, []client.Tokens{tk}) })
}

// createAndRevoke creates a session on node i and revokes it there. A node
// that answers 503 temporarily_unavailable changed nothing and asks to be
// tried again (one just restarted, on a loaded machine, may not have read
// the log yet), and is; any other error fails the test.
func createAndRevoke(t *testing.T, c *cluster, i int, what string) client.Tokens {
	t.Helper()
	var tk client.Tokens
	retried := func(call string, fn func() error) {
		t.Helper()
		var failed error
		eventually(t, 15*time.Second, fmt.Sprintf("%s: %s on node %d", what, call, i), func() error {
			err := fn()
			if err != nil && !errors.Is(err, client.ErrUnavailable) {
				failed = err
				return nil
			}
			return err
		})
		if failed != nil {
			t.Fatalf("%s: %s on node %d: %v", what, call, i, failed)
		}
	}
	retried("CreateSession", func() error {
		var err error
		tk, err = c.client(i).CreateSession(context.Background(), client.SessionRequest{Subject: "failover"})
		return err
	})
	retried("RevokeSession", func() error {
		_, err := c.client(i).RevokeSession(context.Background(), client.SessionRevocation{SessionID: tk.SessionID})
		return err
	})
	return tk
}

// TestPostgresRestart restarts the real Postgres server: authority nodes
// reconnect (LISTEN included) and verifiers receive revocations made after.
// It disturbs every other user of the server, so it runs only when asked:
// TEGATA_TEST_PG_RESTART=1 (.ci/run does, after the main test run). It
// must not call t.Parallel: go test starts the parallel tests only once
// every serial one has returned, so none runs while Postgres restarts.
func TestPostgresRestart(t *testing.T) {
	if os.Getenv("TEGATA_TEST_PG_RESTART") != "1" {
		t.Skip("restarts the Postgres server; set TEGATA_TEST_PG_RESTART=1 (.ci/run does, on its own)")
	}
	c := newCluster(t, 2)
	v := c.follow(c.url(1))
	before := c.sessions(20, "pre-")
	parallel(t, 10, 5, func(i int) error {
		_, err := c.client(0).RevokeSession(context.Background(), client.SessionRevocation{SessionID: before[i].SessionID})
		return err
	})
	restartPostgres(t)
	after := before[10:]
	// Writes may fail while the pool reconnects; retry each revocation
	// until acknowledged, as a caller would.
	for i, tk := range after {
		eventually(t, 30*time.Second, "revoke after Postgres restart", func() error {
			_, err := c.client(i%2).RevokeSession(context.Background(), client.SessionRevocation{SessionID: tk.SessionID})
			return err
		})
	}
	eventually(t, 15*time.Second, "revocations after Postgres restart reach the verifier", func() error {
		return allRevoked(v, before)
	})
}

func restartPostgres(t *testing.T) {
	t.Helper()
	versions, _ := filepath.Glob("/etc/postgresql/*")
	if len(versions) == 0 {
		t.Fatal("no /etc/postgresql/<version>: cannot restart Postgres here")
	}
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", filepath.Base(versions[0]), "main", "restart").CombinedOutput()
	if err != nil {
		t.Fatalf("restart Postgres: %v\n%s", err, out)
	}
	testtime.Eventually(t, 30*time.Second, "Postgres to come back", func() error {
		return exec.Command("pg_isready", "-h", "127.0.0.1", "-q").Run()
	})
}

// cutOffStaleAfter is the staleness bound of the verifier of
// TestNodeCutOffFromPostgres: shorter than the default (10 s), so that it
// leaves the silent node sooner, but long enough that a loaded machine's
// late heartbeats do not have it leave before the node is cut off.
const cutOffStaleAfter = 6 * time.Second

// TestNodeCutOffFromPostgres: node A loses its database while node B keeps
// recording revocations. A cannot see them, so it must stop vouching for
// its followers' state; a verifier following A then B moves to B and
// enforces the revocation instead of trusting A's silence.
func TestNodeCutOffFromPostgres(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1) // node 0: B, direct
	u, err := url.Parse(c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	pg := newCutProxy(t, u.Host)
	u.Host = pg.ln.Addr().String()
	// Node A reaches Postgres through the proxy, on a clock the test moves
	// past A's staleness bound instead of waiting it out.
	aClock := testtime.NewRunning()
	a := c.addClock(u.String(), aClock)
	// The verifier leaves a silent node after three quarters of its
	// staleness bound: 4.5 s here.
	v := c.followStale(cutOffStaleAfter, c.url(a), c.url(0))
	if src := v.State().Source; src != c.url(a) {
		t.Fatalf("verifier follows %s, want node A %s first", src, c.url(a))
	}
	tk, err := c.client(0).CreateSession(context.Background(), client.SessionRequest{Subject: "cutoff"})
	if err != nil {
		t.Fatal(err)
	}
	pg.block() // A is cut off from Postgres; its HTTP side stays up
	if _, err := c.client(0).RevokeSession(context.Background(), client.SessionRevocation{SessionID: tk.SessionID}); err != nil {
		t.Fatal(err)
	}
	// The verifier must enforce the revocation (having moved to B) rather
	// than keep accepting the token meanwhile.
	start := time.Now()
	eventually(t, 20*time.Second, "revocation recorded on B while A is cut off", func() error {
		_, err := v.Verify(context.Background(), tk.AccessToken)
		if err == nil {
			return errors.New("token still accepted")
		}
		if !errors.Is(err, verifier.ErrRevoked) && !errors.Is(err, verifier.ErrStale) {
			return err
		}
		if errors.Is(err, verifier.ErrStale) {
			return err // failing closed is correct, but keep waiting for B
		}
		return nil
	})
	t.Logf("revocation enforced %v after A was cut off; verifier now follows %s", time.Since(start).Round(time.Millisecond), v.State().Source)
	// Once A has not read the log for longer than its bound, its readiness
	// says so, and a load balancer takes it out; it comes back once
	// Postgres does.
	aClock.Add(authority.StaleAfter)
	eventually(t, 20*time.Second, "node A not ready while cut off", func() error {
		return readyz(c.url(a), http.StatusServiceUnavailable, "revocation log")
	})
	pg.unblock()
	eventually(t, 20*time.Second, "node A ready again", func() error {
		return readyz(c.url(a), http.StatusOK, `"ready":true`)
	})
}

// readyz checks that GET base/readyz answers status with a body containing
// want.
func readyz(base string, status int, want string) error {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || !strings.Contains(string(b), want) {
		return fmt.Errorf("GET /readyz = %d %s, want %d with %q", resp.StatusCode, b, status, want)
	}
	return nil
}
