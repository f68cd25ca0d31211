package main_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/testtime"
)

var bin string

// parallelTests is how many tests run at once unless -parallel says
// otherwise: these tests mostly wait on the processes they start (to
// listen, to notice a peer went away, to exit), so go test's default, the
// number of CPUs, would leave the machine idle.
const parallelTests = 8

func TestMain(m *testing.M) {
	testtime.DefaultParallel(parallelTests)
	dir, err := os.MkdirTemp("", "tegata-bin")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "tegata")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	logs   bytes.Buffer
	url    chan string
	exited chan struct{} // stderr closed: the process is gone
}

// serve starts `tegata serve` on a free port and waits for its URL.
func serve(t *testing.T, dir string, env ...string) *proc {
	t.Helper()
	return serveArgs(t, dir, nil, env...)
}

// serveArgs is serve with extra command-line arguments.
func serveArgs(t *testing.T, dir string, args []string, env ...string) *proc {
	t.Helper()
	return serveAt(t, "127.0.0.1:0", dir, args, env...)
}

// serveAt starts `tegata serve --addr addr` and waits for its URL.
func serveAt(t *testing.T, addr, dir string, args []string, env ...string) *proc {
	t.Helper()
	return startProc(t, regexp.MustCompile(`listening url=(\S+)`), env,
		append([]string{"serve", "--addr", addr, "--data", dir}, args...)...)
}

// startProc runs the binary with args and waits for a log line matching
// re, whose first group becomes URL().
func startProc(t *testing.T, re *regexp.Regexp, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{url: make(chan string, 1), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				p.url <- m[1]
			}
		}
		close(p.exited)
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	select {
	case u := <-p.url:
		p.url <- u
		return p
	case <-p.exited:
		t.Fatalf("tegata %s exited before it started:\n%s", args[0], p.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("tegata %s did not start:\n%s", args[0], p.Logs())
	}
	return nil
}

// waitLog waits until the process has logged a line containing s.
func (p *proc) waitLog(t *testing.T, s string) {
	t.Helper()
	testtime.Eventually(t, 30*time.Second, fmt.Sprintf("a log line with %q", s), func() error {
		if logs := p.Logs(); !strings.Contains(logs, s) {
			return fmt.Errorf("the log so far:\n%s", logs)
		}
		return nil
	})
}

func (p *proc) URL() string { u := <-p.url; p.url <- u; return u }

func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// run runs a tegata command and returns its output and exit code.
func run(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	return runIn(t, "", env, args...)
}

// runIn runs a tegata command in dir ("" the test's) to its end, at most
// 30s, and returns its output and exit code.
func runIn(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Dir = append(os.Environ(), env...), dir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("tegata %q still running after 30s:\n%s", args, out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=")
	url := p.URL()
	key, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatalf("api-key file: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &client.Client{BaseURL: url, APIKey: strings.TrimSpace(string(key))}
	tok, err := c.CreateSession(ctx, client.SessionRequest{Subject: "zoe", Device: "cli-test", Claims: map[string]any{"plan": "pro"}})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	ops := []string{"TEGATA_AUTHORITY=" + url, "TEGATA_DATA=" + dir, "TEGATA_API_KEY="}

	out, code := run(t, ops, "token", "inspect", tok.AccessToken)
	if code != 0 || !strings.Contains(out, "VALID") || !strings.Contains(out, `"plan": "pro"`) {
		t.Fatalf("token inspect (valid) = %d\n%s", code, out)
	}
	out, code = run(t, ops, "sessions", "list", "--subject", "zoe")
	if code != 0 || !strings.Contains(out, tok.SessionID) || !strings.Contains(out, "cli-test") {
		t.Fatalf("sessions list = %d\n%s", code, out)
	}
	out, code = run(t, ops, "revoke", "--session", tok.SessionID, "--reason", "lost phone")
	if code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke = %d\n%s", code, out)
	}
	out, code = run(t, ops, "token", "inspect", tok.AccessToken)
	if code != 1 || !strings.Contains(out, "revoked") {
		t.Fatalf("token inspect (revoked) = %d, want 1 saying revoked\n%s", code, out)
	}
	out, code = run(t, ops, "token", "inspect", tok.AccessToken[:len(tok.AccessToken)-4]+"AAAA")
	if code != 1 || !strings.Contains(out, "INVALID") {
		t.Fatalf("token inspect (bad signature) = %d, want 1 saying INVALID\n%s", code, out)
	}
	list := filepath.Join(t.TempDir(), "subjects.txt")
	if err := os.WriteFile(list, []byte("ann\r\n\nbob smith\nzoe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = run(t, ops, "revoke", "--subjects-from", list, "--reason", "department left")
	if code != 0 || !strings.Contains(out, "revoked 3 subjects") {
		t.Fatalf("revoke --subjects-from = %d\n%s", code, out)
	}
	if err := os.WriteFile(list, []byte("ann\n"+strings.Repeat("x", 300)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = run(t, ops, "revoke", "--subjects-from", list)
	if code != 1 || !strings.Contains(out, "line 2: subject is longer than") || !strings.Contains(out, "nothing was revoked") {
		t.Fatalf("revoke --subjects-from (bad line) = %d, want 1 naming line 2\n%s", code, out)
	}
	out, code = run(t, ops, "keys", "rotate", "--reason", "drill")
	if code != 0 || !strings.Contains(out, "published") {
		t.Fatalf("keys rotate = %d\n%s", code, out)
	}
	out, code = run(t, ops, "keys", "list")
	if code != 0 || !strings.Contains(out, "active") || !strings.Contains(out, "pending") {
		t.Fatalf("keys list = %d, want an active and a pending key\n%s", code, out)
	}
	out, code = run(t, ops, "audit")
	if code != 0 || !strings.Contains(out, "lost phone") || !strings.Contains(out, "drill") || !strings.Contains(out, "bob smith") {
		t.Fatalf("audit = %d\n%s", code, out)
	}
	out, code = run(t, append(ops, "TEGATA_API_KEY=tgk_wrong"), "sessions", "list", "--subject", "zoe")
	if code != 1 || !strings.Contains(out, "invalid API key") {
		t.Fatalf("wrong key = %d\n%s", code, out)
	}
	for _, args := range [][]string{{"frobnicate"}, {"revoke"}, {"revoke", "--session", "a", "--subject", "b"}, {"keys"}, {"serve", "--addr"}} {
		if out, code := run(t, ops, args...); code != 2 {
			t.Fatalf("tegata %v = %d, want usage error 2\n%s", args, code, out)
		}
	}
	// Ctrl-C: graceful exit 0.
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGINT, want 0\n%s", err, p.Logs())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15 s of SIGINT")
	}
	logs := p.Logs()
	for name, s := range map[string]string{"API key": c.APIKey, "refresh token": tok.RefreshToken, "access token": tok.AccessToken} {
		if strings.Contains(logs, s) {
			t.Errorf("the server log contains the %s", name)
		}
	}
	if !strings.Contains(logs, filepath.Join(dir, "api-key")) {
		t.Errorf("the server log does not say where the API key file is:\n%s", logs)
	}
	// Restart on the same data: same keys, the revoked session stays revoked.
	p2 := serve(t, dir, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=")
	c.BaseURL = p2.URL()
	res, err := c.Introspect(ctx, tok.AccessToken)
	if err != nil || res.Active {
		t.Fatalf("after restart introspect = %v, %v, want inactive", res, err)
	}
}

func TestWrongMasterKeyRefusesToStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=")
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	_ = p.cmd.Wait()
	out, code := run(t, []string{"TEGATA_MASTER_KEY=" + strings.Repeat("A", 43) + "=", "TEGATA_API_KEY="},
		"serve", "--addr", "127.0.0.1:0", "--data", dir)
	if code != 1 || !strings.Contains(out, "master key") {
		t.Fatalf("serve with another master key = %d, want 1 naming the master key\n%s", code, out)
	}
}

// TestSecondServeRefused: a second `tegata serve` on a data directory in
// use exits 1 saying so; a start refused for a flag or a busy port creates
// no data directory.
func TestSecondServeRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := serve(t, dir, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=")
	env := []string{"TEGATA_API_KEY=", "TEGATA_MASTER_KEY="}
	out, code := run(t, env, "serve", "--addr", "127.0.0.1:0", "--data", dir)
	if code != 1 || !strings.Contains(out, "in use by another tegata serve") {
		t.Errorf("second serve on %s = exit %d\n%s\nwant 1 saying the directory is in use", dir, code, out)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	busy := strings.TrimPrefix(first.URL(), "http://")
	for _, args := range [][]string{
		{"serve", "--data", fresh, "--access-ttl", "soon"},
		{"serve", "--data", fresh, "--addr", busy},
	} {
		if out, code := run(t, env, args...); code == 0 {
			t.Errorf("tegata %v = 0, want a failure\n%s", args, out)
		}
		if _, err := os.Stat(fresh); !os.IsNotExist(err) {
			t.Errorf("tegata %v created %s (%v); want nothing created", args, fresh, err)
		}
	}
}
