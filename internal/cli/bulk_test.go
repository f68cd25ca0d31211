package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/client"
)

// TestRevokeSubjectsFrom: lines are trimmed, blank and # lines skipped,
// "-" reads standard input, subjects without a live session are named, and
// --confirm waits for the whole file.
func TestRevokeSubjectsFrom(t *testing.T) {
	r, env := startServer(t)
	c := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	for _, sub := range []string{"ann", "bob smith", "bob smith"} {
		if _, err := c.CreateSession(context.Background(), client.SessionRequest{Subject: sub}); err != nil {
			t.Fatal(err)
		}
	}
	list := "# department 2, exported 2026-11-20\n  ann  \n\nbob smith\r\n\t# left already\nghost\n"

	var out bytes.Buffer
	code := Main(testEnv([]string{"revoke", "--subjects-from", "-", "--confirm", "5s"}, env, strings.NewReader(list), &out, &out))
	got := out.String()
	for _, want := range []string{"revoked 3 subjects", "1 subject had no live session", `line 6: "ghost"`, "in force on every verifier"} {
		if !strings.Contains(got, want) {
			t.Errorf("revoke --subjects-from - --confirm 5s: output lacks %q\n%s", want, got)
		}
	}
	if code != 0 || strings.Contains(got, `"ann"`) || strings.Contains(got, "bob") {
		t.Errorf("revoke --subjects-from - = exit %d\n%s\nwant 0, naming only ghost", code, got)
	}
	recs, err := c.Audit(context.Background(), client.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, rec := range recs.Records {
		if rec.Action == "subject.revoke" {
			targets = append(targets, rec.Target)
		}
	}
	if strings.Join(targets, "|") != "ann|bob smith|ghost" {
		t.Errorf("subjects revoked = %q, want ann, bob smith, ghost (trimmed, no comments)", targets)
	}

	// --json: every outcome with its line and session count.
	file := filepath.Join(t.TempDir(), "subjects.txt")
	if err := os.WriteFile(file, []byte("ann\nnobody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runSplit([]string{"revoke", "--subjects-from", file, "--json"}, env)
	var res struct {
		Revoked []struct {
			Subject  string
			Line     int
			Revoked  bool
			Sessions *int
		}
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 {
		t.Fatalf("revoke --subjects-from --json = exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if len(res.Revoked) != 2 || res.Revoked[1].Subject != "nobody" || res.Revoked[1].Line != 2 ||
		res.Revoked[1].Sessions == nil || *res.Revoked[1].Sessions != 0 || !res.Revoked[1].Revoked {
		t.Errorf("revoke --subjects-from --json = %s, want nobody on line 2 with sessions 0", stdout)
	}

	// Nothing but comments: nothing to do, said so.
	code, msg := runCLI([]string{"revoke", "--subjects-from", "-"}, env)
	if code != 2 || !strings.Contains(msg, "no standard input") {
		t.Errorf("revoke --subjects-from - without stdin = exit %d\n%s", code, msg)
	}
	out.Reset()
	code = Main(testEnv([]string{"revoke", "--subjects-from", "-"}, env, strings.NewReader("# only\n\n"), &out, &out))
	if code != 1 || !strings.Contains(out.String(), "no subjects in it") {
		t.Errorf("revoke --subjects-from (comments only) = exit %d\n%s", code, out.String())
	}
}

// TestPrintConfirmationCountsAll: the authority names at most 100 pending
// verifiers and counts them all in pending_count; the CLI says how many
// are pending, not how many were named.
func TestPrintConfirmationCountsAll(t *testing.T) {
	var out strings.Builder
	c := &client.Confirmation{Confirmed: 2, WaitedMS: 5000, PendingCount: 5000,
		Pending: []client.PendingVerifier{{ID: "v1", Name: "edge-1"}}}
	if err := printConfirmation(Env{Stdout: &out}, c); !errors.Is(err, errNotConfirmed) {
		t.Fatalf("printConfirmation = %v, want errNotConfirmed", err)
	}
	if !strings.Contains(out.String(), "5000 verifiers pending (the first 1 named)") {
		t.Errorf("printConfirmation printed %q, want the whole count and how many are named", out.String())
	}
}
