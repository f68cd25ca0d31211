package verifier_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMESnippet: the README's Go program compiles (and passes vet) as
// written, and does what a service must: check New's error and wait for the
// revocation set before serving.
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
	file := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "vet", file)
	cmd.Dir = ".." // the module, whose packages the snippet imports
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet README snippet: %v\n%s", err, out)
	}
}
