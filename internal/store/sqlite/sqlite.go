// Package sqlite is the embedded store: store.Store on one SQLite file,
// through the pure Go driver modernc.org/sqlite, for a single authority node.
// The schema is embedded and migrated at Open.
//
// Writes go through one connection (SQLite has one writer at a time, and
// queuing in Go is cheaper than spinning on SQLITE_BUSY), each transaction
// taking the write lock at BEGIN; reads use a separate pool of read-only
// connections, which WAL mode lets run alongside the writer. Subscribers are
// woken in-process after each commit that appended to the revocation log;
// another process writing the same file does not wake them.
//
// A Store is safe for concurrent use by many goroutines.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlstore"
)

//go:embed schema/*.sql
var schema embed.FS

// Store is store.Store and store.Notifier on a SQLite file.
type Store struct {
	*sqlstore.Store
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Notifier = (*Store)(nil)
)

// Connection settings. busy_timeout waits out other processes holding the
// lock; WAL lets readers run during a write; synchronous=NORMAL is durable
// across process crashes in WAL mode (a power loss may drop the last
// commits, never corrupt the file).
const (
	common = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	writer = common + "&_txlock=immediate"
	reader = common + "&_pragma=query_only(1)"
)

// Options are settings of an embedded database; the zero value is the
// default.
type Options struct {
	// MaxSize caps the database file, in bytes (SQLite's max_page_count):
	// past it writes are refused with store.ErrUnwritable, as on a full
	// disk, and the rest of the disk stays free. Zero: no cap but the
	// disk's.
	MaxSize int64
}

// Open opens (creating if needed) the database at path, with its parent
// directory, and migrates it. A new file is readable by its owner only.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// pageSize is SQLite's default page size, which tegata's databases keep.
const pageSize = 4096

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*Store, error) {
	if o.MaxSize < 0 {
		return nil, fmt.Errorf("sqlite: negative maximum size %d", o.MaxSize)
	}
	if err := createFile(path); err != nil {
		return nil, err
	}
	wparams := writer
	if o.MaxSize > 0 {
		wparams += fmt.Sprintf("&_pragma=max_page_count(%d)", max(1, o.MaxSize/pageSize))
	}
	w, err := sql.Open("sqlite", dsn(path, wparams))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn(path, reader))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	r.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	s, err := sqlstore.New(ctx, w, r, dialect())
	if err != nil {
		_, _ = w.Close(), r.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return &Store{Store: s}, nil
}

// createFile creates the directory and an empty database file with mode
// 0600 before SQLite does, since SQLite would create it world-readable and
// its -wal and -shm files copy the database file's mode.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlite: create directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	return f.Close()
}

// dsn builds a URI filename. Characters that delimit or escape in a URI
// are escaped in the path.
func dsn(path, params string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + params
}

func dialect() sqlstore.Dialect {
	sub, err := fs.Sub(schema, "schema")
	if err != nil {
		panic(err) // the embedded directory is known to exist
	}
	return sqlstore.Dialect{
		Name:        "sqlite",
		Schema:      sub,
		IsUnique:    isUnique,
		Unwritable:  unwritable,
		PrepareOnce: true,
	}
}

// unwritable: the database or its disk is full (SQLITE_FULL, also what
// max_page_count gives), the file or directory is read-only
// (SQLITE_READONLY), or the disk failed a write or cannot hold the journal
// (SQLITE_IOERR, SQLITE_CANTOPEN).
func unwritable(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return false
}

func isUnique(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
