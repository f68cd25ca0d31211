package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/server"
)

// interopDir holds the pinned npm packages (package.json and its lock) that
// the interoperability tests run under Node.js: implementations that are
// not tegata's. .ci/run installs them with npm ci.
const interopDir = "testdata/interop"

// nodeInterop returns the node binary once Node.js and the pinned packages
// are present: the test fails under CI=true without them and is skipped
// otherwise.
func nodeInterop(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "Node.js (node) is not on PATH"
	default:
		for _, pkg := range []string{"@sd-jwt/jwt-status-list", "jose", "dpop"} {
			if _, err := os.Stat(filepath.Join(interopDir, "node_modules", pkg, "package.json")); err != nil {
				missing = "npm package " + pkg + " is not installed (run: npm ci --prefix internal/e2e/" + interopDir + ")"
			}
		}
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("interoperability test cannot run under CI=true: %s", missing)
		}
		t.Skipf("%s; under CI=true this fails", missing)
	}
	return node
}

// runNode runs a script of interopDir and decodes the JSON it prints.
func runNode(t *testing.T, node string, out any, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = interopDir
	b, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node %s: %v\n%s", script, err, stderr)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("node %s printed %q: %v", script, b, err)
	}
}

// TestStatusListInterop reads tegata's status lists with a stock Token
// Status List implementation from the npm registry (and jose for the
// signature): a token reads VALID, and INVALID once revoked.
func TestStatusListInterop(t *testing.T) {
	t.Parallel()
	node := nodeInterop(t)
	r, err := server.Start(context.Background(), server.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	admin := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	tk, err := admin.CreateSession(context.Background(), client.SessionRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := admin.CreateSession(context.Background(), client.SessionRequest{Subject: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		Status int    `json:"status"`
		Idx    int    `json:"idx"`
		URI    string `json:"uri"`
		TTL    int    `json:"ttl"`
		Bits   int    `json:"bits"`
	}
	var before result
	runNode(t, node, &before, "statuslist.mjs", r.URL, tk.AccessToken)
	if before.Status != 0 || before.Bits != 1 || before.TTL != 60 || before.URI == "" {
		t.Fatalf("node reads %+v for a live token, want status 0 (VALID), bits 1, ttl 60", before)
	}
	if _, err := admin.RevokeSession(context.Background(), client.SessionRevocation{SessionID: tk.SessionID, Reason: "interop"}); err != nil {
		t.Fatal(err)
	}
	var after, bystander result
	runNode(t, node, &after, "statuslist.mjs", r.URL, tk.AccessToken)
	if after.Status != 1 || after.Idx != before.Idx {
		t.Errorf("node reads %+v after revocation, want status 1 (INVALID) at idx %d", after, before.Idx)
	}
	runNode(t, node, &bystander, "statuslist.mjs", r.URL, other.AccessToken)
	if bystander.Status != 0 {
		t.Errorf("node reads %+v for an unrevoked token, want status 0", bystander)
	}
}
