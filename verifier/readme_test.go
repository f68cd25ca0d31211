package verifier_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMESnippet: the README's Go program builds as written, and does
// what a service must: check New's error and wait for the revocation set
// before serving. It builds the program rather than vetting it: go vet
// first analyses every package the program imports, which in a fresh
// checkout (CI) costs some twenty seconds of CPU, while the compiled
// packages are the ones the test run itself already built.
func TestREADMESnippet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var src string
	for _, b := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1) {
		if strings.HasPrefix(string(b[1]), "package main") {
			src = string(b[1])
			break
		}
	}
	if src == "" {
		t.Fatal("README has no Go program (a ```go block starting with package main)")
	}
	for _, want := range []string{"package main", "verifier.New(", "if err != nil", ".WaitReady(", "defer v.Close()"} {
		if !strings.Contains(src, want) {
			t.Errorf("README snippet lacks %q", want)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "main.go")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "snippet"), file)
	cmd.Dir = ".." // the module, whose packages the snippet imports
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build README snippet: %v\n%s", err, out)
	}
}
