package cli

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/server"
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

// TestTerminalEscapesInOutput is issue 14, finding 12: audit reasons and
// device labels were printed raw by `tegata audit` and `sessions list`, so
// ESC sequences, BEL and newlines chosen by an API caller reached the
// operator's terminal. Devices with control characters are now refused,
// and every human-readable output escapes them.
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

// TestDotSubjects is issue 14, finding 13: subjects "." and ".." got
// tokens, but the client (and so the CLI) could not list or revoke them,
// because a router resolves /v1/subjects/../sessions to /v1/sessions.
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
