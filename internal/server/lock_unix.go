//go:build unix

package server

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive, non-blocking flock on the directory itself
// (no lock file to leave behind). The kernel releases it when the process
// ends, however it ends; unlock releases it earlier.
func lockDir(path string) (func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another tegata serve; "+
				"two authorities on one SQLite database would each issue tokens the other's verifiers refuse: "+
				"stop the other one, or give this one its own --data (use Postgres, --db, for several nodes)", path)
		}
		return nil, fmt.Errorf("data directory %s: lock: %w", path, err)
	}
	return func() { f.Close() }, nil
}
