package main_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// TestHelp runs the real binary: the general help lists every command, and
// every command and subcommand answers `tegata help CMD` and `tegata CMD
// -h` with exit 0, its usage line, a description, its flags, the
// environment it reads and an example; a command made of subcommands lists
// them.
func TestHelp(t *testing.T) {
	t.Parallel()
	general, code := run(t, nil, "help")
	if code != 0 || !strings.Contains(general, "Commands:") {
		t.Fatalf("tegata help = exit %d\n%s", code, general)
	}
	if out, code := run(t, nil, "--help"); code != 0 || out != general {
		t.Errorf("tegata --help = exit %d, differs from tegata help\n%s", code, out)
	}
	var paths []string
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z]+)  `).FindAllStringSubmatch(general, -1) {
		cmd := m[1]
		out, code := run(t, nil, "help", cmd)
		if code != 0 {
			t.Errorf("tegata help %s = exit %d\n%s", cmd, code, out)
			continue
		}
		subs := regexp.MustCompile(`(?m)^  `+cmd+` ([a-z]+)  `).FindAllStringSubmatch(out, -1)
		if len(subs) == 0 {
			paths = append(paths, cmd)
		}
		for _, s := range subs {
			paths = append(paths, cmd+" "+s[1])
		}
		if len(subs) > 0 {
			if out2, code := run(t, nil, cmd, "-h"); code != 0 || out2 != out {
				t.Errorf("tegata %s -h = exit %d, differs from tegata help %s\n%s", cmd, code, cmd, out2)
			}
		}
	}
	if len(paths) < 12 {
		t.Fatalf("found only %d commands in the help: %q", len(paths), paths)
	}
	for _, p := range paths {
		args := strings.Fields(p)
		out, code := run(t, nil, append([]string{"help"}, args...)...)
		if code != 0 || !strings.HasPrefix(out, "Usage: tegata "+p) || !regexp.MustCompile(`\nExample:\n  .*tegata `).MatchString(out) {
			t.Errorf("tegata help %s = exit %d, want a usage line and an example\n%s", p, code, out)
		}
		if p != "help" && p != "version" && !strings.Contains(out, "\nEnvironment:\n") {
			t.Errorf("tegata help %s has no Environment section\n%s", p, out)
		}
		if p != "help" && !strings.Contains(out, "\nFlags:\n  --") {
			t.Errorf("tegata help %s lists no flags\n%s", p, out)
		}
		if out2, code := run(t, nil, append(args, "-h")...); code != 0 || out2 != out {
			t.Errorf("tegata %s -h = exit %d, differs from tegata help %s\n%s", p, code, p, out2)
		}
	}
	serve, _ := run(t, nil, "help", "serve")
	for _, env := range []string{"TEGATA_MASTER_KEY", "TEGATA_API_KEY", "TEGATA_FEED_KEY", "TEGATA_DB"} {
		if !strings.Contains(serve, env) {
			t.Errorf("tegata help serve does not mention %s", env)
		}
	}
	if out, code := run(t, nil, "help", "frobnicate"); code != 2 || !strings.Contains(out, `no command "frobnicate"`) {
		t.Errorf("tegata help frobnicate = exit %d\n%s", code, out)
	}
}

// TestVersion: `tegata version` names the module version and the Go
// toolchain, and the revision when the build recorded one.
func TestVersion(t *testing.T) {
	t.Parallel()
	out, code := run(t, nil, "version", "--json")
	var v struct{ Version, Revision, Go string }
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go1.") {
		t.Fatalf("tegata version --json = exit %d, %q (%v)", code, out, err)
	}
	if v.Revision != "" {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err == nil && strings.TrimSpace(string(head)) != v.Revision {
			t.Errorf("revision %s, want HEAD %s", v.Revision, head)
		}
	}
	text, code := run(t, nil, "version")
	if code != 0 || !strings.HasPrefix(text, "tegata "+v.Version) || !strings.Contains(text, v.Go) {
		t.Errorf("tegata version = exit %d %q, want the version and %s", code, text, v.Go)
	}
}

// TestOperatorCommands runs the operator commands as operators type them:
// arguments in any order and ids that start with '-', JSON
// that is always one object, pagination that says when more exist, a
// sentence for an empty list, a token pasted with "Bearer " or read from
// standard input, and TEGATA_AUTHORITY holding the same list as for a gate.
func TestOperatorCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=")
	key, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	c := &client.Client{BaseURL: p.URL(), APIKey: strings.TrimSpace(string(key))}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := c.CreateSession(ctx, client.SessionRequest{Subject: "zed", Device: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	// The first authority of the list is down: the second answers.
	ops := []string{"TEGATA_AUTHORITY=http://127.0.0.1:1," + p.URL(), "TEGATA_DATA=" + dir, "TEGATA_API_KEY="}

	// Ids that start with '-', before or after the flags, are ids: the
	// authority is asked (and knows no such key), it is not a usage error.
	for _, args := range [][]string{
		{"apikeys", "revoke", "-Ab3_nosuchkeyid", "--reason", "x"},
		{"apikeys", "revoke", "--reason", "x", "-Ab3_nosuchkeyid"},
		{"apikeys", "revoke", "--reason", "x", "--", "-Ab3_nosuchkeyid"},
		{"revoke", "--session", "-Ab3_nosuchsessionid"},
	} {
		if out, code := run(t, ops, args...); code != 1 || !strings.Contains(out, "404") {
			t.Errorf("tegata %q = exit %d, want the authority's 404 (exit 1)\n%s", args, code, out)
		}
	}
	if out, code := run(t, ops, "sessions", "list", "--subject", "nobody"); code != 0 || !strings.Contains(out, `"nobody" has no live sessions`) {
		t.Errorf("sessions list (none) = exit %d\n%s", code, out)
	}

	// --json prints one object, for every command that prints JSON.
	for _, args := range [][]string{
		{"sessions", "list", "--subject", "zed"},
		{"sessions", "list", "--subject", "nobody"},
		{"keys", "list"}, {"apikeys", "list"}, {"audit"},
		{"token", "inspect", tok.AccessToken},
		{"revoke", "--session", tok.SessionID, "--reason", "json"},
	} {
		out, code := run(t, ops, append(args, "--json")...)
		var obj map[string]any
		if err := json.Unmarshal([]byte(out), &obj); code != 0 || err != nil {
			t.Errorf("tegata %q --json = exit %d, not one JSON object (%v)\n%s", args, code, err, out)
		}
	}

	// The token is revoked now: inspect --json says so, exit 1.
	out, code := run(t, ops, "token", "inspect", "--json", tok.AccessToken)
	var ins struct {
		Valid   bool
		Verdict string
		Payload map[string]any
	}
	if err := json.Unmarshal([]byte(out), &ins); code != 1 || err != nil || ins.Valid || !strings.Contains(ins.Verdict, "revoked") || ins.Payload["sub"] != "zed" {
		t.Errorf("token inspect --json (revoked) = exit %d %+v (%v)\n%s", code, ins, err, out)
	}
	fresh, err := c.CreateSession(ctx, client.SessionRequest{Subject: "zed"})
	if err != nil {
		t.Fatal(err)
	}
	out, code = run(t, ops, "token", "inspect", "Bearer "+fresh.AccessToken)
	if code != 0 || !strings.Contains(out, "VALID") || !strings.Contains(out, `left out "Bearer "`) {
		t.Errorf(`token inspect "Bearer <token>" = exit %d, want valid with a note\n%s`, code, out)
	}
	cmd := exec.Command(bin, "token", "inspect", "-")
	cmd.Env, cmd.Stdin = append(os.Environ(), ops...), strings.NewReader(fresh.AccessToken+"\n")
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "VALID") {
		t.Errorf("token inspect - (standard input) = %v\n%s", err, b)
	}
	if out, code := run(t, ops, "token", "inspect", "tgk_notatoken"); code != 1 || !strings.Contains(out, "looks like an API key") {
		t.Errorf("token inspect (an API key) = exit %d, want a hint\n%s", code, out)
	}

	// Pagination: the audit trail says when more records follow.
	out, code = run(t, ops, "audit", "--limit", "1")
	m := regexp.MustCompile(`more records follow: tegata audit --after (\d+) --limit 1`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("audit --limit 1 = exit %d, want a pointer to the next page\n%s", code, out)
	}
	if out2, _ := run(t, ops, "audit", "--after", m[1], "--limit", "1"); out2 == out || !strings.Contains(out2, "ID") {
		t.Errorf("audit --after %s = %s, want the next record", m[1], out2)
	}
	for range 2 {
		if _, err := c.CreateSession(ctx, client.SessionRequest{Subject: "many"}); err != nil {
			t.Fatal(err)
		}
	}
	if out, code := run(t, ops, "sessions", "list", "--subject", "many", "--limit", "1"); code != 0 || !strings.Contains(out, "1 more, older sessions not shown") {
		t.Errorf("sessions list --limit 1 = exit %d\n%s", code, out)
	}
}
