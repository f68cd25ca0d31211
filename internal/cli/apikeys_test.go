package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/internal/authority"
)

func TestAPIKeysUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no verb", []string{"apikeys"}, "want a subcommand: create, list, revoke"},
		{"bad verb", []string{"apikeys", "delete"}, `unknown subcommand "delete"`},
		{"create: no name", []string{"apikeys", "create"}, "--name is required"},
		{"create: bad role", []string{"apikeys", "create", "--name", "x", "--role", "root"}, "--role must be admin, feed or gate"},
		{"create: stray argument", []string{"apikeys", "create", "--name", "x", "now"}, `unexpected argument "now"`},
		{"list: stray argument", []string{"apikeys", "list", "all"}, `unexpected argument "all"`},
		{"revoke: no ID", []string{"apikeys", "revoke"}, "exactly one ID"},
		{"revoke: two IDs", []string{"apikeys", "revoke", "a", "b"}, "exactly one ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(tc.args, map[string]string{"TEGATA_API_KEY": "k"})
			if code != 2 || !strings.Contains(out, tc.want) {
				t.Fatalf("tegata %v = exit %d\n%s\nwant exit 2 mentioning %q", tc.args, code, out, tc.want)
			}
		})
	}
}

// runSplit runs the CLI keeping stdout and stderr apart.
func runSplit(args []string, env map[string]string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(testEnv(args, env, nil, &out, &errOut))
	return code, out.String(), errOut.String()
}

// TestAPIKeysCommands drives create, list and revoke against a real
// authority.
func TestAPIKeysCommands(t *testing.T) {
	r, env := startServer(t)

	code, key, msg := runSplit([]string{"apikeys", "create", "--name", "edge-gate", "--role", "feed"}, env)
	key = strings.TrimSpace(key)
	if code != 0 || !strings.HasPrefix(key, authority.APIKeyPrefix) || strings.Contains(key, "\n") ||
		!strings.Contains(msg, "shown only this once") {
		t.Fatalf("apikeys create = exit %d, stdout %q, stderr %q; want the key alone on stdout and a warning on stderr", code, key, msg)
	}
	k, err := r.Authority.Authenticate(context.Background(), key)
	if err != nil || k.Name != "edge-gate" || k.Role != authority.RoleFeed {
		t.Fatalf("Authenticate(created key) = %+v, %v, want edge-gate with role feed", k, err)
	}

	// The name is taken: the refusal names the key that holds it and how
	// to revoke it, and nothing reaches stdout (a > file stays empty).
	code, again, msg := runSplit([]string{"apikeys", "create", "--name", "edge-gate", "--role", "feed"}, env)
	if code != 1 || again != "" || !strings.Contains(msg, "409") || !strings.Contains(msg, "(id "+k.ID+")") ||
		!strings.Contains(msg, "choose another name") || !strings.Contains(msg, "tegata apikeys revoke "+k.ID) {
		t.Errorf("apikeys create (name taken) = exit %d, stdout %q, stderr %q; want 1 naming id %s and the revoke command", code, again, msg, k.ID)
	}

	code, list, _ := runSplit([]string{"apikeys", "list"}, env)
	if code != 0 || !strings.Contains(list, "edge-gate") || !strings.Contains(list, k.ID) || strings.Contains(list, key) {
		t.Fatalf("apikeys list = exit %d\n%s\nwant edge-gate and its id, without its key", code, list)
	}

	code, out, errOut := runSplit([]string{"apikeys", "revoke", k.ID, "--reason", "rotated"}, env)
	if code != 0 || !strings.Contains(out, "revoked API key "+k.ID) {
		t.Fatalf("apikeys revoke = exit %d\n%s%s", code, out, errOut)
	}
	if _, err := r.Authority.Authenticate(context.Background(), key); err == nil {
		t.Error("Authenticate(revoked key) = nil, want an error")
	}
	if _, list, _ = runSplit([]string{"apikeys", "list", "--json"}, env); strings.Contains(list, "edge-gate") {
		t.Errorf("apikeys list --json after revoke = %s, want edge-gate gone", list)
	}

	// The bootstrap key is the only admin key: revoking it is refused.
	keys, err := r.Authority.APIKeys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("APIKeys() = %+v, %v, want the bootstrap key only", keys, err)
	}
	code, out, errOut = runSplit([]string{"apikeys", "revoke", keys[0].ID}, env)
	if code != 1 || !strings.Contains(errOut, "409") || !strings.Contains(errOut, "last admin API key") {
		t.Errorf("apikeys revoke (last admin) = exit %d\n%s%s\nwant exit 1 with the 409 refusal", code, out, errOut)
	}
}

// TestGateWebChecksKeyRole: --web with a key that may not manage sessions
// stops at start, naming the role it needs; a bad --origin is named too.
func TestGateWebChecksKeyRole(t *testing.T) {
	r, _ := startServer(t)
	code, out, _ := runSplit([]string{"apikeys", "create", "--name", "edge", "--role", "feed"},
		map[string]string{"TEGATA_AUTHORITY": r.URL, "TEGATA_API_KEY": r.APIKey})
	if code != 0 {
		t.Fatalf("apikeys create = %d", code)
	}
	feedKey := strings.TrimSpace(out)
	gate := []string{"gate", "--authority", r.URL, "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--web"}
	code, msg := runCLI(gate, map[string]string{"TEGATA_GATE_KEY": feedKey})
	if code != 1 || !strings.Contains(msg, "role gate") {
		t.Errorf("gate --web with a feed key = exit %d\n%s\nwant 1 naming role gate", code, msg)
	}
	code, msg = runCLI(append(gate, "--origin", "app.example.com"), map[string]string{"TEGATA_GATE_KEY": r.APIKey})
	if code != 2 || !strings.Contains(msg, "scheme://host") {
		t.Errorf("gate --web --origin app.example.com = exit %d\n%s\nwant 2 explaining the origin form", code, msg)
	}
}

// TestRefusedKeyNamed: an operator command whose API key the authority
// refuses says which key (its variable or file) and which authority, the
// two things to check.
func TestRefusedKeyNamed(t *testing.T) {
	r, _ := startServer(t)
	keyFile := filepath.Join(t.TempDir(), "api-key")
	if err := os.WriteFile(keyFile, []byte("tgk_from_another_cluster\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		source string
	}{
		{"variable", map[string]string{"TEGATA_API_KEY": "tgk_wrong"}, nil, "TEGATA_API_KEY"},
		{"file", map[string]string{}, []string{"--key-file", keyFile}, keyFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["TEGATA_AUTHORITY"] = r.URL
			code, _, msg := runSplit(append([]string{"apikeys", "create", "--name", "web", "--role", "gate"}, tc.args...), tc.env)
			if code != 1 || !strings.Contains(msg, "401") || !strings.Contains(msg, "the API key from "+tc.source) ||
				!strings.Contains(msg, "authority at "+r.URL) {
				t.Errorf("apikeys create with a refused key = exit %d\n%s\nwant 1 naming %s and %s", code, msg, tc.source, r.URL)
			}
		})
	}
}

// TestGateKeySetButEmpty: TEGATA_GATE_KEY=$(cat gate-key) of an empty file
// is named as such, not as a variable nobody set.
func TestGateKeySetButEmpty(t *testing.T) {
	gate := []string{"gate", "--authority", "http://127.0.0.1:1", "--upstream", "http://127.0.0.1:2", "--web"}
	code, msg := runCLI(gate, map[string]string{"TEGATA_GATE_KEY": ""})
	if code != 2 || !strings.Contains(msg, "TEGATA_GATE_KEY is set but empty") {
		t.Errorf("gate --web with TEGATA_GATE_KEY empty = exit %d\n%s\nwant 2 saying it is set but empty", code, msg)
	}
	code, msg = runCLI(gate, map[string]string{})
	if code != 2 || !strings.Contains(msg, "TEGATA_GATE_KEY is unset") {
		t.Errorf("gate --web without TEGATA_GATE_KEY = exit %d\n%s\nwant 2 saying it is unset", code, msg)
	}
}
