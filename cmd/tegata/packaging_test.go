package main_test

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needTool returns the path of a tool the test drives; without it the test
// fails under CI=true (.ci/run installs it) and is skipped otherwise.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found under CI=true", name)
		}
		t.Skipf("%s not found", name)
	}
	return p
}

// TestSystemdUnits: systemd-analyze verify accepts the units in
// deploy/systemd as they are (every directive known and well-formed; it
// prints a warning for any other), with their ExecStart pointed at this
// build.
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	tool := needTool(t, "systemd-analyze")
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"tegata.service", "tegata-gate.service"} {
		b, err := os.ReadFile(filepath.Join("../../deploy/systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ExecStart=/usr/local/bin/tegata ") {
			t.Fatalf("%s: no ExecStart=/usr/local/bin/tegata", name)
		}
		for _, want := range []string{"DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks the sandboxing option %q", name, strings.TrimSpace(want))
			}
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/tegata", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	out, err := exec.Command(tool, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestContainerImage builds the image with scripts/image.sh (podman build;
// this machine cannot run containers) and checks it from the outside: it
// runs as 65532, holds no shell, and its binary, taken out of the saved
// image and run here, reports the version and, built from a git clone,
// the commit.
func TestContainerImage(t *testing.T) {
	t.Parallel()
	podman := needTool(t, "podman")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	tag := "test-" + hex.EncodeToString(b)
	out, err := exec.Command("../../scripts/image.sh", tag).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, out)
	}
	image := "tegata:" + tag
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "-f", image).Run() })
	user, err := exec.Command(podman, "image", "inspect", "--format", "{{.Config.User}} {{json .Config.Entrypoint}}", image).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(user)); got != `65532:65532 ["/usr/local/bin/tegata"]` {
		t.Errorf("image user and entrypoint = %s, want 65532:65532 and the binary", got)
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	if out, err := exec.Command(podman, "save", "--format", "docker-archive", "-o", archive, image).CombinedOutput(); err != nil {
		t.Fatalf("podman save: %v\n%s", err, out)
	}
	files := imageFiles(t, archive)
	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"} {
		if _, ok := files[shell]; ok {
			t.Errorf("the image holds %s", shell)
		}
	}
	binary, ok := files["usr/local/bin/tegata"]
	if !ok {
		t.Fatalf("no usr/local/bin/tegata in the image; files: %v", keys(files))
	}
	exe := filepath.Join(t.TempDir(), "tegata")
	if err := os.WriteFile(exe, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(exe, "version", "--json").Output()
	if err != nil {
		t.Fatalf("the image's tegata version: %v", err)
	}
	var v struct{ Version, Revision string }
	if err := json.Unmarshal(out, &v); err != nil || v.Version == "" {
		t.Fatalf("the image's tegata version --json = %s (%v)", out, err)
	}
	t.Logf("the image's binary: %s", out)
	if fi, err := os.Stat("../../.git"); err == nil && fi.IsDir() {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatal(err)
		}
		if v.Revision != strings.TrimSpace(string(head)) || v.Version == "(devel)" {
			t.Errorf("the image's binary reports %+v, want the commit %s and its version", v, head)
		}
	}
}

// imageFiles returns the regular files of every layer of a docker-archive.
func imageFiles(t *testing.T, archive string) map[string][]byte {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	outer := tar.NewReader(f)
	for {
		h, err := outer.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, ".tar") {
			continue
		}
		inner := tar.NewReader(outer)
		for {
			ih, err := inner.Next()
			if err != nil {
				break
			}
			if ih.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(inner)
				files[strings.TrimPrefix(ih.Name, "./")] = b
			}
		}
	}
	return files
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
