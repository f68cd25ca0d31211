package gate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// nginxTemplate is the nginx configuration docs/gate.md shows; the test runs
// it as it is, so the documented setup is the tested one.
const nginxTemplate = "testdata/nginx.conf.tmpl"

// TestNginxDocsQuoteTemplate fails when docs/gate.md no longer quotes the
// tested configuration verbatim.
func TestNginxDocsQuoteTemplate(t *testing.T) {
	tmpl, err := os.ReadFile(nginxTemplate)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "gate.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```nginx\n"+string(tmpl)+"```\n") {
		t.Errorf("docs/gate.md does not quote %s verbatim in an ```nginx block; copy the file into it", nginxTemplate)
	}
}

// findNginx returns the nginx binary, skipping the test when there is none
// unless CI=true, where its absence is a failure.
func findNginx(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nginx")
	if err == nil {
		return path
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("nginx not found and CI=true: install it (apt-get install -y nginx-light)")
	}
	t.Skip("nginx not found on PATH; install it (apt-get install -y nginx-light) to run the auth_request test")
	return ""
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// startNginx renders the template into dir and runs nginx in the
// foreground until the test ends.
func startNginx(t *testing.T, gateURL, appURL string) string {
	t.Helper()
	bin := findNginx(t)
	tmpl, err := os.ReadFile(nginxTemplate)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	listen := freeAddr(t)
	conf := strings.NewReplacer(
		"${NGINX_PREFIX}", dir, "${NGINX_LISTEN}", listen,
		"${TEGATA_GATE}", hostPort(t, gateURL), "${APP_UPSTREAM}", hostPort(t, appURL),
	).Replace(string(tmpl))
	if strings.Contains(conf, "${") {
		t.Fatalf("%s has a placeholder the test does not fill:\n%s", nginxTemplate, conf)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so cleanup can reach the workers too
	out := &logBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { stopNginx(t, cmd, exited) })
	waitListening(t, listen, exited, func() string { return out.String() + readFile(filepath.Join(dir, "error.log")) })
	return "http://" + listen
}

// waitListening waits until addr accepts connections, failing with the
// logs if nginx exits first.
func waitListening(t *testing.T, addr string, exited <-chan error, logs func() string) {
	t.Helper()
	testtime.Eventually(t, 10*time.Second, "nginx listening on "+addr, func() error {
		select {
		case err := <-exited:
			t.Fatalf("nginx exited at start: %v\n%s", err, logs())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return fmt.Errorf("%w\n%s", err, logs())
		}
		c.Close()
		return nil
	})
}

// stopNginx asks nginx to stop (SIGTERM: the master stops its workers) and
// kills its process group if it has not within five seconds.
func stopNginx(t *testing.T, cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Errorf("nginx did not stop on SIGTERM; killing its process group")
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	return string(b)
}

func TestNginxAuthRequest(t *testing.T) {
	findNginx(t) // skip before starting anything
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	g := startGate(t, v, gate.Config{})
	app := startEcho(t)
	front := startNginx(t, g.URL, app.URL)
	// "roles", as the demo app and the README use it.
	admin := a.signIn(t, "alice", map[string]any{"roles": []string{"admin"}})
	plain := a.signIn(t, "bob", nil)

	// seen sends a request through nginx and returns what the app saw.
	seen := func(t *testing.T, h http.Header) (answer, echoed) {
		t.Helper()
		got := do(t, "GET", front+"/app/page?q=1", h)
		var e echoed
		if got.status == http.StatusOK {
			if err := json.Unmarshal(got.body, &e); err != nil {
				t.Fatalf("app answer %q: %v", got.body, err)
			}
		}
		return got, e
	}

	t.Run("valid token: app sees the verified identity", func(t *testing.T) {
		h := bearer(admin.AccessToken)
		h.Set("X-Tegata-Subject", "mallory")
		h.Set("X-Tegata-Claim-Roles", `["superuser"]`)
		got, e := seen(t, h)
		if got.status != http.StatusOK {
			t.Fatalf("GET via nginx = %d %s, want 200", got.status, got.body)
		}
		for k, want := range map[string]string{"X-Tegata-Subject": "alice", "X-Tegata-Session": admin.SessionID, "X-Tegata-Claim-Roles": `["admin"]`} {
			if g := strings.Join(e.Header[k], "|"); g != want {
				t.Errorf("app saw %s = %q, want %q", k, g, want)
			}
		}
		if e.Path != "/app/page" || e.Query != "q=1" {
			t.Errorf("app saw %s?%s, want /app/page?q=1", e.Path, e.Query)
		}
	})

	t.Run("claim the token lacks cannot be forged", func(t *testing.T) {
		h := bearer(plain.AccessToken)
		h.Set("X-Tegata-Claim-Roles", `["admin"]`)
		h.Set("X-Tegata-Claims-Truncated", "true")
		got, e := seen(t, h)
		if got.status != http.StatusOK {
			t.Fatalf("GET via nginx = %d %s, want 200", got.status, got.body)
		}
		for _, k := range []string{"X-Tegata-Claim-Roles", "X-Tegata-Claims-Truncated"} {
			if g, ok := e.Header[k]; ok {
				t.Errorf("app saw forged %s = %q, want none", k, g)
			}
		}
		if g := e.Header.Get("X-Tegata-Subject"); g != "bob" {
			t.Errorf("app saw X-Tegata-Subject = %q, want bob", g)
		}
	})

	t.Run("no token: 401 with the gate's challenge", func(t *testing.T) {
		before := app.hits.Load()
		got, _ := seen(t, http.Header{"X-Tegata-Subject": {"mallory"}})
		if got.status != http.StatusUnauthorized || got.header.Get("WWW-Authenticate") != bareChallenge {
			t.Errorf("GET via nginx without token = %d %q, want 401 %q", got.status, got.header.Get("WWW-Authenticate"), bareChallenge)
		}
		if n := app.hits.Load() - before; n != 0 {
			t.Errorf("app got %d refused requests, want 0", n)
		}
	})

	t.Run("revoked token: 401", func(t *testing.T) {
		a.revoke(t, admin.SessionID)
		var got answer
		eventually(t, revocationDeadline, "nginx refuses the revoked token", func() bool {
			got, _ = seen(t, bearer(admin.AccessToken))
			return got.status == http.StatusUnauthorized
		})
		if want := challenge("token revoked"); got.header.Get("WWW-Authenticate") != want {
			t.Errorf("WWW-Authenticate via nginx = %q, want %q", got.header.Get("WWW-Authenticate"), want)
		}
	})
}
