package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migration is one schema file.
type migration struct {
	version int64
	name    string
	stmts   []string
}

// migrate applies every migration newer than the database's schema version,
// all in one transaction: a process killed halfway leaves the schema as it
// was, and the dialect's MigrationLock keeps concurrent starters apart.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.d.Schema)
	if err != nil {
		return fmt.Errorf("sqlstore: %s schema: %w", s.d.Name, err)
	}
	return s.inTx(ctx, "migrate", func(t *tx) error {
		if s.d.MigrationLock != "" {
			if _, err := t.exec(ctx, s.d.MigrationLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := t.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return err
		}
		var current int64
		if err := t.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
			return err
		}
		return applyMigrations(ctx, t, ms, current)
	})
}

// ErrSchemaNewer: the database's schema is newer than this build knows, so
// a newer tegata migrated it; this one refuses to run on it rather than
// misread what it does not know.
var ErrSchemaNewer = errors.New("the database's schema is newer than this tegata")

func applyMigrations(ctx context.Context, t *tx, ms []migration, current int64) error {
	if n := len(ms); n > 0 && current > ms[n-1].version {
		return schemaNewer(ctx, t, current, ms[n-1].version)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		for _, stmt := range m.stmts {
			if _, err := t.exec(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
		// The applied time is bookkeeping for operators, not logic, so
		// it reads the clock.
		if _, err := t.exec(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`,
			m.version, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return nil
}

// schemaNewer is the refusal of a schema newer than known: when the newer
// version was applied, and what the operator can do.
func schemaNewer(ctx context.Context, t *tx, current, known int64) error {
	var at int64
	when := ""
	if err := t.queryRow(ctx, `SELECT applied_at FROM schema_version WHERE version = ?`, current).Scan(&at); err == nil {
		when = " on " + time.UnixMicro(at).UTC().Format(time.RFC3339)
	}
	return fmt.Errorf("%w: it is at version %d (applied%s by a newer tegata), this tegata knows versions up to %d. "+
		"Run the tegata that upgraded the database, or a newer one; to go back to this version, restore the backup "+
		"taken before the upgrade (docs/operations.md, \"Upgrades and rollback\")", ErrSchemaNewer, current, when, known)
}

// loadMigrations reads NNNN_description.sql files in version order.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	if fsys == nil {
		return nil, fmt.Errorf("no schema")
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]migration, 0, len(names))
	for _, name := range names {
		m, err := loadMigration(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("%s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

func loadMigration(fsys fs.FS, name string) (migration, error) {
	prefix, _, _ := strings.Cut(path.Base(name), "_")
	v, err := strconv.ParseInt(prefix, 10, 64)
	if err != nil || v <= 0 {
		return migration{}, fmt.Errorf("%s: name must start with a positive version number", name)
	}
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return migration{}, err
	}
	return migration{version: v, name: name, stmts: splitStatements(string(b))}, nil
}

// splitStatements splits a schema file into statements, since not every
// driver runs several in one Exec. Statements end with ";" at the end of a
// line; lines starting with "--" are comments.
func splitStatements(src string) []string {
	var stmts []string
	var cur strings.Builder
	for line := range strings.Lines(src) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		stmts = append(stmts, rest)
	}
	return stmts
}
