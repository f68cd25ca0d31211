package main_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/testproc"
	"github.com/tegata-dev/tegata/internal/testtime"
)

var gateListening = regexp.MustCompile(`tegata gate listening" addr=(\S+)`)

// startGate runs `tegata gate` listening on a free port and returns it once
// it listens (which it does before any authority answers).
func startGate(t *testing.T, env []string, args ...string) (*proc, string) {
	t.Helper()
	p := startProc(t, gateListening, env, append([]string{"gate", "--listen", "127.0.0.1:0"}, args...)...)
	return p, "http://" + p.URL()
}

// freeAddr returns a loopback address nobody listens on, which no listener
// on port 0 takes (testproc.FreeAddr), for a process started there later.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testproc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// poll calls cond every 20ms until it holds, for up to 30s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testtime.EventuallyTrue(t, 30*time.Second, what, cond)
}

func stop(t *testing.T, p *proc) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	_ = p.cmd.Wait()
}

// testFeedKey is a feed key the tests install with TEGATA_FEED_KEY.
const testFeedKey = "tgk_feed-key-for-the-binary-tests-0123456789"

// TestGateStartedBeforeAuthority: a gate whose authority is not up yet
// listens, says it is alive and why it is not ready, and becomes ready once
// the authority is up; it logs going stale when the authority goes away and
// coming back in sync when it returns. Its feed key comes with a trailing
// newline, as from a Kubernetes secret made from a file.
func TestGateStartedBeforeAuthority(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), freeAddr(t)
	authEnv := []string{"TEGATA_FEED_KEY=" + testFeedKey, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY="}
	g, gurl := startGate(t, []string{"TEGATA_FEED_KEY=" + testFeedKey + "\n", "TEGATA_API_KEY="},
		"--authority", "http://"+addr, "--stale-after", "2s")
	g.waitLog(t, "waiting for an authority")
	if code, body := get(t, gurl+"/healthz"); code != 200 {
		t.Errorf("GET /healthz before the authority = %d %s, want 200", code, body)
	}
	code, body := get(t, gurl+"/readyz")
	if code != 503 || !strings.Contains(body, `"status":"starting"`) || !strings.Contains(body, "waiting for an authority") {
		t.Errorf("GET /readyz before the authority = %d %s, want 503 starting, waiting for an authority", code, body)
	}

	a := serveAt(t, addr, dir, nil, authEnv...)
	poll(t, "the gate to be ready", func() bool { code, _ := get(t, gurl+"/readyz"); return code == 200 })
	if code, body := get(t, gurl+"/metrics"); code != 200 || !strings.Contains(body, "tegata_gate_stale 0") ||
		!strings.Contains(body, `tegata_gate_requests_total{outcome="allowed"} 0`) {
		t.Errorf("GET /metrics = %d, want 200 with tegata_gate_stale 0 and request counters\n%s", code, body)
	}

	stop(t, a)
	g.waitLog(t, "revocation state is stale")
	code, body = get(t, gurl+"/readyz")
	if code != 503 || !strings.Contains(body, "nothing heard from the authority") {
		t.Errorf("GET /readyz with the authority gone = %d %s, want 503 saying nothing was heard", code, body)
	}
	serveAt(t, addr, dir, nil, authEnv...)
	g.waitLog(t, "back in sync with the authority")
	poll(t, "the gate to be ready again", func() bool { code, _ := get(t, gurl+"/readyz"); return code == 200 })
}

// TestGateKeyErrors: a gate whose key cannot work stops at once with a
// message naming where the key came from; it never reads the admin key.
func TestGateKeyErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := serve(t, dir, "TEGATA_FEED_KEY="+testFeedKey, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=")
	admin, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	c := &client.Client{BaseURL: a.URL(), APIKey: strings.TrimSpace(string(admin))}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	revoked, err := c.CreateAPIKey(ctx, client.APIKeyRequest{Name: "old-gate", Role: "feed"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeAPIKey(ctx, client.APIKeyRevocation{ID: revoked.ID, Reason: "rotated"}); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(t.TempDir(), "feed-key")
	if err := os.WriteFile(wrongFile, []byte("tgk_wrong-key-in-a-file-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The authority's own directory, where tegata-data/api-key holds the
	// admin key.
	authorityDir := filepath.Dir(dir)
	if err := os.Symlink(dir, filepath.Join(authorityDir, "tegata-data")); err != nil {
		t.Fatal(err)
	}

	auth := []string{"--authority", a.URL()}
	tests := []struct {
		name    string
		workdir string
		env     []string
		args    []string
		code    int
		want    []string
	}{
		{"wrong key", "", []string{"TEGATA_FEED_KEY=tgk_wrong-key-0123456789abcdef0123456789"}, auth, 1,
			[]string{"refused the feed key from TEGATA_FEED_KEY", "401"}},
		{"revoked key", "", []string{"TEGATA_FEED_KEY=" + revoked.Key}, auth, 1,
			[]string{"refused the feed key from TEGATA_FEED_KEY", "--role feed"}},
		{"wrong key in a file", "", []string{"TEGATA_FEED_KEY="}, append(auth, "--key-file", wrongFile), 1,
			[]string{"refused the feed key from " + wrongFile}},
		{"Bearer in front", "", []string{"TEGATA_FEED_KEY=Bearer " + testFeedKey}, auth, 1,
			[]string{"TEGATA_FEED_KEY", `starts with "Bearer "`}},
		{"only the admin key's variable", "", []string{"TEGATA_FEED_KEY=", "TEGATA_API_KEY=" + c.APIKey}, auth, 2,
			[]string{"no feed key", "TEGATA_API_KEY is set"}},
		{"started in the authority's directory", authorityDir, []string{"TEGATA_FEED_KEY=", "TEGATA_API_KEY=", "TEGATA_DATA="}, auth, 2,
			[]string{"no feed key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runIn(t, tt.workdir, tt.env, append([]string{"gate", "--listen", "127.0.0.1:0"}, tt.args...)...)
			for _, w := range tt.want {
				if code != tt.code || !strings.Contains(out, w) {
					t.Fatalf("tegata gate = exit %d\n%s\nwant exit %d saying %q", code, out, tt.code, w)
				}
			}
			if strings.Contains(out, c.APIKey) {
				t.Errorf("the output shows the admin key")
			}
		})
	}

	// An admin key works, with a warning that names the role each mode
	// needs: following it must not break --web, which needs the gate role.
	g, _ := startGate(t, []string{"TEGATA_FEED_KEY=" + c.APIKey}, auth...)
	g.waitLog(t, "the API key has the admin role")
	g.waitLog(t, "gate for a gate with --web")
}
