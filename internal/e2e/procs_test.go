package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildCommands builds the named packages (paths relative to the module
// root) and returns the binaries by base name. Each package is built once
// per run, into a directory TestMain removes, and shared by the tests
// running in parallel: they would otherwise link the same binary at once.
func buildCommands(t *testing.T, pkgs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, pkg := range pkgs {
		out[filepath.Base(pkg)] = buildCommand(t, pkg)
	}
	return out
}

var (
	buildMu  sync.Mutex
	buildDir string                   // made by the first build
	builds   = map[string]*builtCmd{} // by package path
)

type builtCmd struct {
	once sync.Once
	bin  string
	err  error
}

// buildCommand builds one package (a path relative to the module root),
// or returns the binary an earlier call built.
func buildCommand(t *testing.T, pkg string) string {
	t.Helper()
	buildMu.Lock()
	b := builds[pkg]
	if b == nil {
		b = &builtCmd{}
		builds[pkg] = b
	}
	var err error
	if buildDir == "" {
		buildDir, err = os.MkdirTemp("", "tegata-e2e-bin")
	}
	dir := buildDir
	buildMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	b.once.Do(func() {
		b.bin = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.bin, "./"+pkg)
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// proc is a child process whose stderr lines are kept, so a test can wait
// for a line (a URL, a readiness message) without sleeping.
type proc struct {
	name    string
	cmd     *exec.Cmd
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line
	exited  chan struct{}
}

// startProc runs bin with args and env (added to this process's).
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), changed: make(chan struct{}), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.log())
		}
	})
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// wait returns the submatches of the first line matching re, waiting up to
// timeout for it to appear.
func (p *proc) wait(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i := 0; ; {
		p.mu.Lock()
		lines, changed := p.lines, p.changed
		p.mu.Unlock()
		for ; i < len(lines); i++ {
			if m := re.FindStringSubmatch(lines[i]); m != nil {
				return m
			}
		}
		select {
		case <-changed:
		case <-p.exited:
			t.Fatalf("%s exited before logging %q:\n%s", p.name, re, p.log())
		case <-ctx.Done():
			t.Fatalf("%s did not log %q within %s:\n%s", p.name, re, timeout, p.log())
		}
	}
}
