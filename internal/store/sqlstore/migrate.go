package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
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

// migrate applies every migration of the schema the database has not
// applied, in version order, all in one transaction: a process killed
// halfway leaves the schema as it was, and the dialect's MigrationLock keeps
// concurrent starters apart. schema_version holds one row per migration
// applied, so a migration numbered below one already applied (it landed
// later) is applied too, and one this build does not know is refused.
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
		applied, err := appliedMigrations(ctx, t)
		if err != nil {
			return err
		}
		if err := refuseUnknown(ms, applied); err != nil {
			return err
		}
		return applyMissing(ctx, t, ms, applied)
	})
}

// ErrSchemaNewer: the database has a migration this build does not know, so
// a newer tegata migrated it; this one refuses to run on it rather than
// misread what it does not know.
var ErrSchemaNewer = errors.New("the database's schema is newer than this tegata")

// appliedMigrations returns the versions in schema_version, each with when
// it was applied (Unix microseconds).
func appliedMigrations(ctx context.Context, t *tx) (map[int64]int64, error) {
	rows, err := t.query(ctx, `SELECT version, applied_at FROM schema_version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := make(map[int64]int64)
	for rows.Next() {
		var v, at int64
		if err := rows.Scan(&v, &at); err != nil {
			return nil, err
		}
		applied[v] = at
	}
	return applied, rows.Err()
}

func applyMissing(ctx context.Context, t *tx, ms []migration, applied map[int64]int64) error {
	for _, m := range ms {
		if _, ok := applied[m.version]; ok {
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

// refuseUnknown returns ErrSchemaNewer naming every applied version that
// ms lacks, when it was applied, the versions this build knows, and what
// the operator can do.
func refuseUnknown(ms []migration, applied map[int64]int64) error {
	known := make([]int64, len(ms))
	for i, m := range ms {
		known[i] = m.version
	}
	var unknown []string
	for _, v := range slices.Sorted(maps.Keys(applied)) {
		if _, ok := slices.BinarySearch(known, v); !ok {
			at := time.UnixMicro(applied[v]).UTC().Format(time.RFC3339)
			unknown = append(unknown, fmt.Sprintf("%d (applied on %s)", v, at))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	noun, it := "migration", "it"
	if len(unknown) > 1 {
		noun, it = "migrations", "them"
	}
	return fmt.Errorf("%w: it has %s %s, which this tegata does not know (it knows versions %s): a newer tegata applied %s. "+
		"Run the tegata that upgraded the database, or a newer one; to go back to this version, restore the backup "+
		"taken before the upgrade (docs/operations.md, \"Upgrades and rollback\")",
		ErrSchemaNewer, noun, strings.Join(unknown, ", "), versionRanges(known), it)
}

// versionRanges writes sorted versions as runs: "1-11, 13".
func versionRanges(vs []int64) string {
	var runs []string
	for i := 0; i < len(vs); {
		j := i
		for j+1 < len(vs) && vs[j+1] == vs[j]+1 {
			j++
		}
		run := strconv.FormatInt(vs[i], 10)
		if j > i {
			run += "-" + strconv.FormatInt(vs[j], 10)
		}
		runs = append(runs, run)
		i = j + 1
	}
	if len(runs) == 0 {
		return "none"
	}
	return strings.Join(runs, ", ")
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
