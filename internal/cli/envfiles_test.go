package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// oneShot are the serve flags that act once, which no variable sets.
var oneShot = map[string]bool{"new-epoch": true, "replace-keys": true, "update-settings": true, "restored": true}

// TestEveryFlagHasEnv: every flag of serve and gate (but the one-shot
// ones) names its variable in the help, which the Environment section
// lists, and the variable reaches the flag: a malformed value is refused
// naming the variable.
func TestEveryFlagHasEnv(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^  --([a-z0-9-]+)( \S+)?\n        (.*)$`)
	for _, cmd := range []string{"serve", "gate"} {
		_, help := runCLI([]string{cmd, "-h"}, nil)
		flags := flagLine.FindAllStringSubmatch(flagSection(help), -1)
		if len(flags) < 10 {
			t.Fatalf("tegata %s -h lists %d flags, want many:\n%s", cmd, len(flags), help)
		}
		for _, f := range flags {
			name, kind, usage := f[1], strings.TrimSpace(f[2]), f[3]
			v := envFor(cmd, name)
			if cmd == "serve" && oneShot[name] {
				if v != "" || strings.Contains(usage, "(env ") {
					t.Errorf("tegata %s --%s acts once, yet the variable %q sets it", cmd, name, v)
				}
				continue
			}
			if v == "" || !strings.Contains(usage, "(env "+v+")") || !strings.Contains(envSection(help), v) {
				t.Errorf("tegata %s --%s: variable %q not named in its help and the Environment section", cmd, name, v)
				continue
			}
			bad := map[string]string{"": "maybe", "int": "many", "duration": "soon", "float": "lots"}
			val, ok := bad[kind]
			if !ok {
				continue // a string: any value parses
			}
			code, out := runCLI([]string{cmd}, map[string]string{v: val})
			if code != 2 || !strings.Contains(out, v+" (for --"+name+")") {
				t.Errorf("tegata %s with %s=%s = exit %d, want 2 naming the variable:\n%s", cmd, v, val, code, out)
			}
		}
	}
}

// TestEnvSetsFlags: a variable sets its flag, the command line wins, and
// a one-shot flag's would-be variable does nothing.
func TestEnvSetsFlags(t *testing.T) {
	env := map[string]string{"TEGATA_ACCESS_TTL": "7m", "TEGATA_LOG_FORMAT": "json", "TEGATA_NEW_EPOCH": "true", "TEGATA_SQLITE_MAX_SIZE": "1048576"}
	cfg, err := serveConfig(testEnv(nil, env, nil, nil, os.Stderr), nil)
	if err != nil {
		t.Fatalf("serveConfig: %v", err)
	}
	if cfg.Authority.AccessTTL != 7*time.Minute || cfg.NewEpoch || cfg.SQLiteMaxSize != 1<<20 {
		t.Errorf("serveConfig(env) = access TTL %v, new epoch %v, max size %d; want 7m, false, 1048576", cfg.Authority.AccessTTL, cfg.NewEpoch, cfg.SQLiteMaxSize)
	}
	cfg, err = serveConfig(testEnv(nil, env, nil, nil, os.Stderr), []string{"--access-ttl", "9m"})
	if err != nil || cfg.Authority.AccessTTL != 9*time.Minute {
		t.Errorf("serveConfig(env, --access-ttl 9m) = %v, %v; want 9m", cfg.Authority.AccessTTL, err)
	}
}

// TestSecretFiles: NAME_FILE reads a secret from a file (one trailing
// newline dropped); both set, or a file that cannot be read, is refused
// naming the variable.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "api-key")
	if err := os.WriteFile(key, []byte("tgk_from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := withSecretFiles(testEnv([]string{"serve"}, map[string]string{"TEGATA_API_KEY_FILE": key}, nil, nil, nil))
	if err != nil || env.Getenv("TEGATA_API_KEY") != "tgk_from-a-file" {
		t.Errorf("TEGATA_API_KEY from TEGATA_API_KEY_FILE = %q, %v; want tgk_from-a-file", env.Getenv("TEGATA_API_KEY"), err)
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"both", map[string]string{"TEGATA_DB": "postgres://x", "TEGATA_DB_FILE": key}, "both TEGATA_DB and TEGATA_DB_FILE"},
		{"missing file", map[string]string{"TEGATA_MASTER_KEY_FILE": filepath.Join(dir, "nope")}, "TEGATA_MASTER_KEY_FILE: open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI([]string{"serve"}, tc.vars)
			if code != 2 || !strings.Contains(out, tc.want) {
				t.Errorf("tegata serve with %v = exit %d, %q; want 2 and %q", tc.vars, code, out, tc.want)
			}
		})
	}
}

// secretName is a variable that holds a secret by its name: a key (not
// TLS_KEY, which names a file) or the database URL, which carries its
// password.
var secretName = regexp.MustCompile(`^TEGATA_([A-Z]+_)*KEY(_OTHER)?$|^TEGATA_DB$`)

// TestEverySecretHasFile: every variable this package reads that holds a
// secret can be given as NAME_FILE instead, and docs/operations.md says so.
func TestEverySecretHasFile(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(TEGATA_[A-Z_]+)"`).FindAllStringSubmatch(string(b), -1) {
			if secretName.MatchString(m[1]) && m[1] != "TEGATA_TLS_KEY" {
				read[m[1]] = true
			}
		}
	}
	if !read["TEGATA_MASTER_KEY_OTHER"] || !read["TEGATA_FEED_KEY"] {
		t.Fatalf("secrets found in the source = %v: the scan is broken", read)
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile("(?m)^\\| `NAME_FILE` for .*$").Find(doc)
	dir := t.TempDir()
	for name := range read {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("secret-of-"+name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env, err := withSecretFiles(testEnv(nil, map[string]string{name + "_FILE": path}, nil, nil, nil))
		if got := env.Getenv(name); err != nil || got != "secret-of-"+name {
			t.Errorf("%s from %s_FILE = %q, %v; want the file's content", name, name, got, err)
		}
		if !strings.Contains(string(line), "`"+name+"`") {
			t.Errorf("docs/operations.md's NAME_FILE row does not name %s: %q", name, line)
		}
	}
}
