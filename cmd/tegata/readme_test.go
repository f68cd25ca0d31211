package main_test

import (
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReadmeWalkthrough runs the README's "Five minutes with curl" as
// written, with two substitutions: the built binary for `go run
// ./cmd/tegata`, and a free port for 127.0.0.1:8080 (other tests and
// engineers use this machine), which the server and the CLI then take from
// TEGATA_ADDR and TEGATA_AUTHORITY instead of their defaults. TMPDIR points
// at the test's own directory.
// It checks the walk-through works and leaves nothing in the repository.
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is needed to run the README walk-through: %v", tool, err)
			}
			t.Skipf("%s is needed to run the README walk-through: %v", tool, err)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## Five minutes with curl")
	blocks := shellBlocks(section)
	if len(blocks) < 2 {
		t.Fatalf("found %d sh blocks in the walk-through, want the server's and the client's", len(blocks))
	}
	addr := freeAddr(t)
	sub := strings.NewReplacer("go run ./cmd/tegata", bin, "127.0.0.1:8080", addr)
	env := append(os.Environ(), "TMPDIR="+t.TempDir(), "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=",
		"TEGATA_ADDR="+addr, "TEGATA_AUTHORITY=http://"+addr) // the defaults, moved to the free port

	before := repoEntries(t)
	server := exec.Command("bash", "-c", strings.Replace(sub.Replace(blocks[0]), bin+" serve", "exec "+bin+" serve", 1))
	server.Dir, server.Env = "../..", env
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
	poll(t, "the walk-through's authority", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	client := exec.Command("bash", "-c", sub.Replace(blocks[1]))
	client.Dir, client.Env = "../..", env
	done := make(chan struct{})
	var out []byte
	go func() { out, _ = client.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = client.Process.Kill()
		t.Fatal("the walk-through did not finish within 60s")
	}
	for _, want := range []string{`"active":true`, `{"active":false}`, "INVALID: revoked", `"refresh_token"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walk-through's output lacks %q:\n%s", want, out)
		}
	}
	if after := repoEntries(t); !slices.Equal(before, after) {
		t.Errorf("the walk-through changed the repository's top level:\nbefore %q\nafter  %q", before, after)
	}
}

// shellBlocks returns the bodies of the ```sh blocks of md, in order.
func shellBlocks(md string) []string {
	var out []string
	for {
		_, rest, ok := strings.Cut(md, "```sh\n")
		if !ok {
			return out
		}
		body, after, _ := strings.Cut(rest, "```")
		out, md = append(out, body), after
	}
}

func repoEntries(t *testing.T) []string {
	t.Helper()
	es, err := os.ReadDir("../..")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
