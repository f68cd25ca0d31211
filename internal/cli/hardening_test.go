package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/verifier"
)

// startServer runs an authority on embedded SQLite in a temp dir and
// returns it with the environment that points the CLI at it.
func startServer(t *testing.T) (*server.Running, map[string]string) {
	t.Helper()
	r, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Shutdown(c)
	})
	return r, map[string]string{"TEGATA_API_KEY": r.APIKey, "TEGATA_AUTHORITY": r.URL}
}

// TestTerminalEscapesInOutput: ESC sequences, BEL and newlines chosen by
// an API caller never reach the operator's terminal: devices with control
// characters are refused, and every human-readable output (`tegata audit`,
// `sessions list`) escapes them in audit reasons and device labels.
func TestTerminalEscapesInOutput(t *testing.T) {
	r, env := startServer(t)
	c := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	ctx := context.Background()
	if _, err := c.CreateSession(ctx, client.SessionRequest{Subject: "alice", Device: "Firefox\x1b]0;owned\x07\nEVIL ROW"}); err == nil {
		t.Error("CreateSession(device with ESC, BEL, newline) = nil, want a 400")
	}
	tok, err := c.CreateSession(ctx, client.SessionRequest{Subject: "alice", Device: "Firefox on laptop"})
	if err != nil {
		t.Fatal(err)
	}
	const hostile = "left\x1b[2J\x07\r\nforged\trow\x7f\u009b31m\u202eevil"
	if _, err := c.RevokeSession(ctx, client.SessionRevocation{SessionID: tok.SessionID, Reason: hostile}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"audit"}, {"audit", "--json"}} {
		code, out, errOut := runSplit(args, env)
		if code != 0 {
			t.Fatalf("tegata %v = exit %d\n%s", args, code, errOut)
		}
		if i := strings.IndexFunc(out, func(r rune) bool { return needsEscape(r) && r != '\n' }); i >= 0 {
			t.Errorf("tegata %v printed a raw control character %q at %d:\n%q", args, out[i], i, out)
		}
		if !strings.Contains(out, `left\u001b[2J\u0007\u000d\u000aforged\u0009row\u007f\u009b31m\u202eevil`) && args[len(args)-1] != "--json" {
			t.Errorf("tegata %v does not show the reason escaped:\n%s", args, out)
		}
		if strings.Contains(out, "\nforged") {
			t.Errorf("tegata %v: the reason's newline started a line:\n%q", args, out)
		}
	}
}

// TestDotSubjects: subjects "." and ".." can be listed and revoked through
// the client (and so the CLI) like any other, although a router would
// resolve /v1/subjects/../sessions to /v1/sessions.
func TestDotSubjects(t *testing.T) {
	r, env := startServer(t)
	c := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	ctx := context.Background()
	sessions := map[string]string{}
	for _, sub := range []string{".", "..", "..."} {
		tok, err := c.CreateSession(ctx, client.SessionRequest{Subject: sub, Device: "laptop"})
		if err != nil {
			t.Fatalf("CreateSession(%q) = %v", sub, err)
		}
		sessions[sub] = tok.SessionID
	}
	for sub, sid := range sessions {
		list, err := c.Sessions(ctx, sub)
		if err != nil || len(list) != 1 || list[0].ID != sid {
			t.Errorf("Sessions(%q) = %+v, %v; want its one session %s", sub, list, err, sid)
		}
		code, out, errOut := runSplit([]string{"sessions", "list", "--subject", sub}, env)
		if code != 0 || !strings.Contains(out, sid) {
			t.Errorf("tegata sessions list --subject %q = exit %d\n%s%s\nwant session %s", sub, code, out, errOut, sid)
		}
	}
	code, out, errOut := runSplit([]string{"revoke", "--subject", ".."}, env)
	if code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("tegata revoke --subject .. = exit %d\n%s%s", code, out, errOut)
	}
	for sub, want := range map[string]int{".": 1, "..": 0, "...": 1} {
		if list, err := c.Sessions(ctx, sub); err != nil || len(list) != want {
			t.Errorf("after revoking \"..\": Sessions(%q) = %d sessions, %v; want %d", sub, len(list), err, want)
		}
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"日本語の端末", "日本語の端末"},
		{"a\x1b[31mb", `a\u001b[31mb`},
		{"tab\tnewline\n", `tab\u0009newline\u000a`},
		{"del\x7f c1\u0085", `del\u007f c1\u0085`},
		{"bidi\u202eabc\u2066", `bidi\u202eabc\u2066`},
		{"bad\xffutf8", `bad\xffutf8`},
	}
	for _, tt := range tests {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestGateSlowBodiesAndConnectionsCut: at the gate, a slow body to /auth or
// /healthz is cut after the body timeout, and one address may hold
// only --max-conns-per-address connections.
func TestGateSlowBodiesAndConnectionsCut(t *testing.T) {
	t.Parallel() // waits out one body deadline
	r, _ := startServer(t)
	const maxConns, bodyTimeout = 4, 2 * time.Second
	logs, addrs := newAddrLog()
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runGate(ctx, gateRun{f: gateFlags{listen: "127.0.0.1:0", maxConns: maxConns}, log: log, bodyTimeout: bodyTimeout,
			vcfg: verifier.Config{Authorities: []string{r.URL}, APIKey: r.APIKey, Logger: log}, gcfg: gate.Config{Logger: log}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runGate = %v", err)
		}
	})
	var addr string
	select {
	case addr = <-addrs:
	case <-time.After(10 * time.Second):
		t.Fatal("the gate did not start listening")
	}
	var slow []net.Conn
	for _, target := range []string{"POST /auth", "PUT /healthz", "POST /auth/x"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "%s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{", target)
		slow = append(slow, c)
	}
	over, err := net.Dial("tcp", addr) // the fourth is within the cap...
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	fifth, err := net.Dial("tcp", addr) // ...the fifth is not
	if err != nil {
		t.Fatal(err)
	}
	defer fifth.Close()
	_ = fifth.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, fifth); err != nil {
		t.Errorf("connection over --max-conns-per-address: %v; want it closed at once", err)
	}
	limit := bodyTimeout + 5*time.Second
	for i, c := range slow {
		_ = c.SetReadDeadline(time.Now().Add(limit))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Errorf("gate connection %d with a stalled body: %v; want it closed within %s", i, err, limit)
		}
	}
}

// addrLog is a log writer that sends the address of the first "tegata gate
// listening" line it sees.
type addrLog struct {
	once  sync.Once
	addrs chan string
}

func newAddrLog() (*addrLog, <-chan string) {
	l := &addrLog{addrs: make(chan string, 1)}
	return l, l.addrs
}

var listeningRE = regexp.MustCompile(`msg="tegata gate listening" addr=(\S+)`)

func (l *addrLog) Write(p []byte) (int, error) {
	if m := listeningRE.FindSubmatch(p); m != nil {
		l.once.Do(func() { l.addrs <- string(m[1]) })
	}
	return len(p), nil
}
