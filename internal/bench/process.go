package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds how long a child may take to start listening.
const startTimeout = 30 * time.Second

// process is a tegata child process. Its stderr is read continuously (a
// full pipe would stall it), the last lines are kept for error messages
// and, when started with a log directory, all of it in a file there.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string        // the file holding all of its stderr; "" without one
	done chan struct{} // closed when the process has exited

	mu    sync.Mutex
	tail  []string
	lines chan string // every stderr line until someone stops listening
}

// startProcess runs setup.Binary with args and env added. With logDir
// set, all of the child's stderr is also written to a file there, named
// after name.
func startProcess(setup Setup, logDir, name string, env []string, args ...string) (*process, error) {
	cmd := exec.Command(setup.Binary, args...)
	cmd.Env = append(append(os.Environ(), setup.Env...), env...)
	cmd.SysProcAttr = sysProcAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), lines: make(chan string, 64)}
	var log *os.File
	if logDir != "" {
		if log, err = os.Create(filepath.Join(logDir, logName(name))); err != nil {
			return nil, fmt.Errorf("bench: log of %s: %w", name, err)
		}
		p.log = log.Name()
	}
	if err := cmd.Start(); err != nil {
		if log != nil {
			log.Close()
		}
		return nil, fmt.Errorf("bench: start %s (%s): %w", name, setup.Binary, err)
	}
	go p.read(stderr, log)
	return p, nil
}

// logName is the file name of the stderr log of the process called name:
// "authority node (SQLite)" logs to authority-node-sqlite.log.
func logName(name string) string {
	f := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	})
	return strings.Join(f, "-") + ".log"
}

// bestEffort writes to w until a write fails, then drops what follows: a
// full disk must not stop the reading of a child's stderr, or it stalls.
type bestEffort struct {
	w   io.Writer
	err error
}

func (b *bestEffort) Write(p []byte) (int, error) {
	if b.err == nil {
		_, b.err = b.w.Write(p)
	}
	return len(p), nil
}

const tailLines = 20

// read reads the child's stderr until it ends, copying it to log if set,
// then waits for the child.
func (p *process) read(r io.Reader, log *os.File) {
	if log != nil {
		defer log.Close()
		r = io.TeeReader(r, &bestEffort{w: log})
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > tailLines {
			p.tail = p.tail[1:]
		}
		ch := p.lines
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- line:
			default: // nobody is waiting for lines any more
			}
		}
	}
	_, _ = io.Copy(io.Discard, r) // past a line too long to scan
	_ = p.cmd.Wait()
	close(p.done)
}

// stopLines ends the delivery of stderr lines once start-up is over.
func (p *process) stopLines() {
	p.mu.Lock()
	p.lines = nil
	p.mu.Unlock()
}

// errorf wraps an error with the name and last stderr lines of p, and
// where all of them are.
func (p *process) errorf(format string, args ...any) error {
	p.mu.Lock()
	tail := strings.Join(p.tail, "\n  ")
	p.mu.Unlock()
	all := ""
	if p.log != "" {
		all = " (all of it in " + p.log + ")"
	}
	return fmt.Errorf("bench: %s: %s; its last output%s:\n  %s", p.name, fmt.Sprintf(format, args...), all, tail)
}

// state says whether p is running or how it ended, and where its stderr
// log is.
func (p *process) state() string {
	s := fmt.Sprintf("%s (pid %d): running", p.name, p.cmd.Process.Pid)
	if p.exited() {
		// ProcessState is set before done is closed.
		s = fmt.Sprintf("%s (pid %d): exited, %v", p.name, p.cmd.Process.Pid, p.cmd.ProcessState)
	}
	if p.log != "" {
		s += "; stderr in " + p.log
	}
	return s
}

// exited reports whether p has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitListening reads p's log until a line carries "listening" and a
// url=... attribute, and returns the URL.
func (p *process) waitListening(ctx context.Context) (string, error) {
	return p.waitLine(ctx, listeningURL, "'listening url=' line")
}

// waitLine reads p's log until match finds a URL in a line, and returns
// it; what names the line awaited in the error when none comes.
func (p *process) waitLine(ctx context.Context, match func(string) string, what string) (string, error) {
	defer p.stopLines()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	p.mu.Lock()
	lines := p.lines
	p.mu.Unlock()
	for {
		select {
		case line := <-lines:
			if u := match(line); u != "" {
				return u, nil
			}
		case <-p.done:
			return "", p.errorf("exited before listening (%v)", p.cmd.ProcessState)
		case <-ctx.Done():
			return "", p.errorf("no %s within %s", what, startTimeout)
		}
	}
}

// listeningURL extracts the URL of a slog text line such as
// `level=INFO msg="tegata authority listening" url=http://127.0.0.1:8080 ...`.
func listeningURL(line string) string {
	if !strings.Contains(line, "listening") {
		return ""
	}
	_, rest, ok := strings.Cut(line, " url=")
	if !ok {
		return ""
	}
	u, _, _ := strings.Cut(rest, " ")
	return strings.Trim(u, `"`)
}

// waitHTTP polls url until it answers 200.
func (p *process) waitHTTP(ctx context.Context, hc *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	last := "no answer"
	for {
		if p.exited() {
			return p.errorf("exited before %s answered 200 (%v)", url, p.cmd.ProcessState)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		}
		select {
		case <-ctx.Done():
			return p.errorf("%s did not answer 200 within %s (last: %s)", url, startTimeout, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop asks p to shut down (SIGTERM) and kills it after a grace period.
func (p *process) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", err
	}
	return addr, nil
}

var errNoBinary = errors.New("bench: Setup.Binary (or, for the gate benchmark, Setup.Self) is empty")
