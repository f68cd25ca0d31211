package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
)

// dataDir is the data directory as one start uses it. It records what this
// start created, so that a start that fails leaves nothing behind: no
// directory, no fresh secrets that the next start would then use.
type dataDir struct {
	path    string
	created []string // paths created by this start, in order
	unlock  func()   // releases the lock; nil when not locked
}

// openDataDir makes sure path is a directory only its owner can change,
// creating it (mode 0700) if it does not exist; with lock, it takes an
// exclusive lock on it for as long as the process runs, so a second
// `tegata serve` on the same SQLite database is refused instead of running
// alongside the first with another issuer.
func openDataDir(path string, lock bool, log *slog.Logger) (*dataDir, error) {
	d := &dataDir{path: path}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		d.created = append(d.created, path)
	case err != nil:
		return nil, fmt.Errorf("data directory: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("data directory %s is not a directory", path)
	default:
		if err := dirMode(path, st, log); err != nil {
			return nil, err
		}
	}
	if lock {
		unlock, err := lockDir(path)
		if err != nil {
			d.fail()
			return nil, err
		}
		d.unlock = unlock
	}
	return d, nil
}

// file returns the path of name in the directory.
func (d *dataDir) file(name string) string { return filepath.Join(d.path, name) }

// secret reads a secret file, or creates it with gen's value.
func (d *dataDir) secret(name string, gen func() string) (string, bool, error) {
	p := d.file(name)
	s, created, err := readOrCreateSecret(p, gen)
	if created {
		d.created = append(d.created, p)
	}
	return s, created, err
}

// fail removes what this start created, newest first, and releases the
// lock. Removing the directory it created removes everything in it: only
// this start, holding the lock, wrote there.
func (d *dataDir) fail() {
	for _, p := range slices.Backward(d.created) {
		if p == d.path {
			_ = os.RemoveAll(p)
		} else {
			_ = os.Remove(p)
		}
	}
	d.created = nil
	d.close()
}

// close releases the lock, if held.
func (d *dataDir) close() {
	if d.unlock != nil {
		d.unlock()
		d.unlock = nil
	}
}

// private refuses a file that group or others may read or write:
// operations.md promises the data files are the owner's alone (the
// database holds sealed keys, hashed secrets, subjects and claims).
func private(path string, st fs.FileInfo) error {
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s is accessible by group or others (mode %v); run: chmod 600 %s", path, perm, path)
	}
	return nil
}

// dirMode refuses a data directory that group or others may write to (they
// could replace its files, the master key included) and warns about one
// they may list: its files stay unreadable (see private), but their names
// and sizes show.
func dirMode(path string, st fs.FileInfo, log *slog.Logger) error {
	perm := st.Mode().Perm()
	switch {
	case perm&0o022 != 0:
		return fmt.Errorf("data directory %s is writable by group or others (mode %v); run: chmod 700 %s", path, perm, path)
	case perm&0o055 != 0:
		log.Warn("data directory can be listed by group or others; run: chmod 700 "+path, "path", path, "mode", perm.String())
	}
	return nil
}

// sqliteFiles checks the database file name and its -wal and -shm
// companions, and records them as created by this start when the database
// does not exist yet. An existing database's companions are never removed:
// the -wal file may hold committed transactions.
func (d *dataDir) sqliteFiles(name string) error {
	fresh := false
	for _, n := range []string{name, name + "-wal", name + "-shm"} {
		p := d.file(n)
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fresh = fresh || n == name
		case err != nil:
			return err
		default:
			if err := private(p, st); err != nil {
				return err
			}
		}
		if fresh {
			d.created = append(d.created, p)
		}
	}
	return nil
}
