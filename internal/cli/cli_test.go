package cli

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func runCLI(args []string, env map[string]string) (int, string) {
	var out bytes.Buffer
	code := Main(testEnv(args, env, nil, &out, &out))
	return code, out.String()
}

// testEnv is the environment of an in-process run: variables from vars
// (a key present with "" is set but empty), stdin may be nil.
func testEnv(args []string, vars map[string]string, stdin io.Reader, stdout, stderr io.Writer) Env {
	return Env{Args: args, Stdin: stdin, Stdout: stdout, Stderr: stderr,
		Getenv:    func(k string) string { return vars[k] },
		LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
}

// TestUsageErrors: every command-line mistake exits 2 with a message that
// names the problem, before anything is started or called.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no command", nil, nil, "Usage"},
		{"unknown command", []string{"frob"}, nil, `unknown command "frob"`},
		{"serve: stray argument", []string{"serve", "now"}, nil, `unexpected argument "now"`},
		{"serve: bad duration", []string{"serve", "--access-ttl", "soon"}, nil, "invalid value"},
		{"serve: bad rate limits", []string{"serve", "--rate-limits", "maybe"}, nil, "--rate-limits must be on or off"},
		{"serve: bad proxy CIDR", []string{"serve", "--trusted-proxies", "10.0.0.1"}, nil, "is not a CIDR"},
		{"serve: bad algorithm", []string{"serve", "--alg", "HS256"}, nil, `Algorithm "HS256" is neither EdDSA nor ES256`},
		{"serve: the console's audience", []string{"serve", "--audience", "tegata-console"}, nil, `Audience "tegata-console" is the operator console's own`},
		{"serve: bad log level", []string{"serve", "--log-level", "loud"}, nil, "--log-level"},
		{"serve: negative connection cap", []string{"serve", "--max-conns-per-address", "-1"}, nil, "must not be negative"},
		{"serve: negative feed max age", []string{"serve", "--feed-max-age", "-1s"}, nil, "must not be negative (0 or off turns it off)"},
		{"serve: zero max confirm", []string{"serve", "--max-confirm", "0s"}, nil, "--max-confirm must be positive"},
		{"revoke: negative confirm", []string{"revoke", "--session", "s", "--confirm", "-1s"}, nil, "--confirm must not be negative"},
		{"gate: negative connection cap", []string{"gate", "--authority", "http://a", "--max-conns-per-address", "-1"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "--max-conns-per-address must not be negative"},
		{"gate: no authority", []string{"gate"}, nil, "--authority"},
		{"relay: no upstream", []string{"relay"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "--upstream (or TEGATA_RELAY_UPSTREAM) is required"},
		{"relay: bad upstream", []string{"relay", "--upstream", "ftp://a"}, map[string]string{"TEGATA_FEED_KEY": "k"}, `--upstream: "ftp://a" is not an http or https URL`},
		{"relay: upstream with a query", []string{"relay", "--upstream", "http://a,http://b?x=1"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "must be a base URL"},
		{"relay: bad stale-after", []string{"relay", "--upstream", "http://a", "--stale-after", "0s"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "--stale-after: staleness bound 0s out of range"},
		{"relay: bad stale-after from env", []string{"relay", "--upstream", "http://a"}, map[string]string{"TEGATA_FEED_KEY": "k", "TEGATA_RELAY_STALE_AFTER": "soon"}, "TEGATA_RELAY_STALE_AFTER (for --stale-after) is not a valid duration"},
		{"relay: negative start timeout", []string{"relay", "--upstream", "http://a", "--start-timeout", "-1s"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "--start-timeout must not be negative"},
		{"relay: no key", []string{"relay", "--upstream", "http://a"}, nil, "no feed key: set TEGATA_FEED_KEY or --key-file"},
		{"relay: stray argument", []string{"relay", "--upstream", "http://a", "now"}, map[string]string{"TEGATA_FEED_KEY": "k"}, `unexpected argument "now"`},
		{"gate: negative dpop-nonce", []string{"gate", "--authority", "http://a", "--dpop-nonce", "-1s"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "--dpop-nonce must not be negative"},
		{"gate: bad upstream", []string{"gate", "--authority", "http://a", "--upstream", "ftp://x"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "is not an http(s) URL"},
		{"gate: bad stale-after", []string{"gate", "--authority", "http://a", "--stale-after", "-1s"}, nil, "--stale-after: staleness bound -1s out of range"},
		{"gate: stale-after over a day", []string{"gate", "--authority", "http://a", "--stale-after", "25h"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "at most 24h0m0s"},
		{"gate: stale-after under a millisecond", []string{"gate", "--authority", "http://a", "--stale-after", "500us"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "at least 1ms"},
		{"serve: max-stale-after over a day", []string{"serve", "--max-stale-after", "48h"}, nil, "--max-stale-after: staleness bound 48h0m0s out of range"},
		{"gate: web reads the gate key, not the feed key", []string{"gate", "--authority", "http://a", "--upstream", "http://b", "--web"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "TEGATA_GATE_KEY"},
		{"gate: web without upstream", []string{"gate", "--authority", "http://a", "--web"}, map[string]string{"TEGATA_GATE_KEY": "k"}, "--web needs --upstream"},
		{"gate: web flag without web", []string{"gate", "--authority", "http://a", "--public", "/login"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "--public only applies with --web"},
		{"gate: handoff paths without web", []string{"gate", "--authority", "http://a", "--login-handoff-paths", "/login"}, map[string]string{"TEGATA_FEED_KEY": "k"}, "--login-handoff-paths only applies with --web"},
		{"gate: relative handoff path", []string{"gate", "--authority", "http://a", "--upstream", "http://b", "--web", "--login-handoff-paths", "/login,sso"}, map[string]string{"TEGATA_GATE_KEY": "k"}, `--login-handoff-paths: "sso" must begin with /`},
		{"gate: negative refresh limit", []string{"gate", "--authority", "http://a", "--upstream", "http://b", "--web", "--refresh-per-address", "-1"}, map[string]string{"TEGATA_GATE_KEY": "k"}, "invalid value \"-1\" for flag -refresh-per-address: must not be negative"},
		{"gate: refresh limit not a number", []string{"gate", "--authority", "http://a", "--upstream", "http://b", "--web"}, map[string]string{"TEGATA_GATE_KEY": "k", "TEGATA_GATE_REFRESH_PER_ADDRESS": "lots"}, "TEGATA_GATE_REFRESH_PER_ADDRESS (for --refresh-per-address) is not a valid value: not a number"},
		{"gate: bad samesite", []string{"gate", "--authority", "http://a", "--upstream", "http://b", "--web", "--cookie-samesite", "none"}, map[string]string{"TEGATA_GATE_KEY": "k"}, "--cookie-samesite must be lax or strict"},
		{"gate: bad web env", []string{"gate", "--authority", "http://a"}, map[string]string{"TEGATA_FEED_KEY": "k", "TEGATA_GATE_WEB": "yes please"}, "TEGATA_GATE_WEB"},
		{"revoke: neither", []string{"revoke"}, nil, "exactly one of --session, --subject or --subjects-from"},
		{"revoke: two", []string{"revoke", "--subject", "a", "--subjects-from", "f"}, nil, "exactly one of --session, --subject or --subjects-from"},
		{"sessions: no subject", []string{"sessions", "list"}, nil, "--subject is required"},
		{"token: no token", []string{"token", "inspect"}, nil, "exactly one TOKEN"},
		{"keys: bad verb", []string{"keys", "delete"}, nil, `unknown subcommand "delete"; want one of: list, rotate`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(tc.args, tc.env)
			if code != 2 || !strings.Contains(out, tc.want) {
				t.Fatalf("tegata %v = exit %d\n%s\nwant exit 2 mentioning %q", tc.args, code, out, tc.want)
			}
		})
	}
}

func TestNoAPIKey(t *testing.T) {
	code, out := runCLI([]string{"sessions", "list", "--subject", "a", "--key-file", t.TempDir() + "/missing"}, nil)
	if code != 1 || !strings.Contains(out, "no API key") {
		t.Fatalf("without a key: exit %d\n%s\nwant 1 saying there is no API key", code, out)
	}
}

func TestInspectGarbage(t *testing.T) {
	code, out := runCLI([]string{"token", "inspect", "not.a.token"}, nil)
	if code != 1 || !strings.Contains(out, "not a tegata access token") {
		t.Fatalf("inspect garbage: exit %d\n%s", code, out)
	}
}

func TestServeRefreshGraceZeroDisables(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want time.Duration
	}{
		{"default", nil, 0},
		{"zero means none, not the default", []string{"--refresh-grace", "0"}, -1},
		{"off", []string{"--refresh-grace", "off"}, -1},
		{"explicit", []string{"--refresh-grace", "3s"}, 3 * time.Second},
	}
	for _, tc := range tests {
		cfg, err := serveConfig(Env{Stderr: io.Discard, Getenv: func(string) string { return "" }}, tc.args)
		if got := cfg.Authority.RefreshGrace; err != nil || got != tc.want {
			t.Errorf("%s: serveConfig(%q) = RefreshGrace %v (%v), want %v (zero: the default, negative: off)",
				tc.name, tc.args, got, err, tc.want)
		}
	}
}

func TestServeStatusListFlags(t *testing.T) {
	env := Env{Stderr: io.Discard, Getenv: func(string) string { return "" }}
	cfg, err := serveConfig(env, nil)
	if sl := cfg.Authority.StatusLists; err != nil || sl.Off() || sl.Size != 1<<20 || sl.TTL != time.Minute {
		t.Errorf("serveConfig() status lists = %+v (%v), want on, 2^20 entries, ttl 1m", sl, err)
	}
	cfg, err = serveConfig(env, []string{"--status-list-size", "4096", "--status-list-ttl", "5m"})
	if sl := cfg.Authority.StatusLists; err != nil || sl.Off() || sl.Size != 4096 || sl.TTL != 5*time.Minute {
		t.Errorf("serveConfig(4096, 5m) status lists = %+v (%v)", sl, err)
	}
	cfg, err = serveConfig(env, []string{"--status-list=false"})
	if sl := cfg.Authority.StatusLists; err != nil || !sl.Off() {
		t.Errorf("serveConfig(--status-list=false) status lists = %+v (%v), want off", sl, err)
	}
	for _, args := range [][]string{{"--status-list-size", "1000"}, {"--status-list-size", "1028"},
		{"--status-list-size", "33554432"}, {"--status-list-ttl", "500ms"}} {
		if _, err := serveConfig(env, args); !errors.Is(err, errUsage) {
			t.Errorf("serveConfig(%q) = %v, want a usage error", args, err)
		}
	}
}

// TestGateDPoPNonceFlag: --dpop-nonce reaches the verifier's DPoPNonce.
func TestGateDPoPNonceFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 0},
		{[]string{"--dpop-nonce", "30s"}, 30 * time.Second},
	} {
		env := Env{Getenv: func(string) string { return "" }}
		fs := newFlags(env, "gate")
		var f gateFlags
		f.register(env, fs)
		if err := parse(fs, append([]string{"--authority", "http://a"}, tt.args...)); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.verifierConfig()
		if err != nil || cfg.DPoPNonce != tt.want {
			t.Errorf("gate %v: verifier DPoPNonce = %v, %v; want %v", tt.args, cfg.DPoPNonce, err, tt.want)
		}
	}
}
