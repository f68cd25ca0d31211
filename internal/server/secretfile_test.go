package server

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestSecretFileCreatedOnce: processes starting together on one directory
// (Postgres nodes sharing it) agree on one secret: exactly one creates the
// file, the others read what it wrote, never a partial file.
func TestSecretFileCreatedOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "api-key")
	const n = 16
	var wg sync.WaitGroup
	vals := make([]string, n)
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals[i], created[i], errs[i] = readOrCreateSecret(path, func() string { return fmt.Sprint("secret-", i) })
		}()
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("readOrCreateSecret #%d = %v", i, errs[i])
		}
		if vals[i] != vals[0] {
			t.Errorf("readOrCreateSecret #%d = %q, #0 = %q: want one secret", i, vals[i], vals[0])
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d callers created the file, want 1", creators)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want the secret file alone (no temporary files left)", len(entries))
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}
}
