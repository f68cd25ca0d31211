package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tegata-dev/tegata/internal/store"
)

// Subjects implements store.Console. The prefix becomes a range of the
// subjects' primary key read in byte order (the index of migration 0012 on
// Postgres), so a search reads the page it returns and no more.
func (s *Store) Subjects(ctx context.Context, q store.SubjectQuery) ([]store.SubjectSummary, error) {
	if q.Limit < 1 {
		return nil, nil
	}
	sql, args := s.subjectsQuery(q)
	rows, err := s.query(ctx, sql, args...)
	out, err := collect(rows, err, func(r scanner) (store.SubjectSummary, error) {
		var v store.SubjectSummary
		err := r.Scan(&v.Subject, &v.LiveSessions)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: subjects: %w", err)
	}
	return out, nil
}

func (s *Store) subjectsQuery(q store.SubjectQuery) (string, []any) {
	col := "s.subject" + s.d.ByteOrder
	where := []string{col + " >= ?", col + " > ?"}
	args := []any{micros(q.Now), q.Prefix, q.After}
	if end, ok := prefixEnd(q.Prefix); ok {
		where = append(where, col+" < ?")
		args = append(args, end)
	}
	return `SELECT s.subject, (SELECT count(*) FROM sessions x
		WHERE x.subject = s.subject AND x.revoked_at IS NULL AND x.expires_at > ?)
		FROM subjects s WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + col + ` LIMIT ?`, append(args, q.Limit)
}

// ExplainSubjects returns the database's plan of the query Subjects runs
// for q (EXPLAIN on Postgres, EXPLAIN QUERY PLAN on SQLite), one line per
// row: the proof, for tests and benchmarks, that a search reads an index.
func (s *Store) ExplainSubjects(ctx context.Context, q store.SubjectQuery) (string, error) {
	sql, args := s.subjectsQuery(q)
	explain := "EXPLAIN "
	if !s.d.DollarPlaceholders {
		explain = "EXPLAIN QUERY PLAN "
	}
	rows, err := s.query(ctx, explain+sql, args...)
	if err != nil {
		return "", fmt.Errorf("sqlstore: explain subjects: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		fmt.Fprintln(&b, vals[len(vals)-1]) // the plan line: the last column on both
	}
	return b.String(), rows.Err()
}

// prefixEnd is the least string above every string that begins with p:
// p with its last code point incremented (dropped when it is the last
// one). ok is false when no string is (p empty, or only U+10FFFF).
func prefixEnd(p string) (string, bool) {
	for p != "" {
		r, n := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-n]
		if r == utf8.MaxRune || r == utf8.RuneError {
			continue
		}
		r++
		if r == 0xD800 { // surrogates are not characters
			r = 0xE000
		}
		return p + string(r), true
	}
	return "", false
}

// SearchAudit implements store.Console. Each filter is a column of one of
// migration 0012's indexes; the records come newest first. Several
// actions are one index range each, newest first, merged: an IN list
// would read every record of every action and sort them.
func (s *Store) SearchAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error) {
	if q.Limit < 1 {
		return nil, nil
	}
	actions := q.Actions
	if len(actions) == 0 {
		actions = []string{""}
	}
	var parts []string
	var args []any
	for i, a := range actions {
		cond, cargs := auditWhere(q, a)
		parts = append(parts, fmt.Sprintf(`SELECT * FROM (SELECT id, at, actor, reason, action, target FROM audit%s
			ORDER BY id DESC LIMIT ?) a%d`, cond, i))
		args = append(append(args, cargs...), q.Limit)
	}
	query := parts[0]
	if len(parts) > 1 {
		query = `SELECT * FROM (` + strings.Join(parts, " UNION ALL ") + `) u ORDER BY id DESC LIMIT ?`
		args = append(args, q.Limit)
	}
	rows, err := s.query(ctx, query, args...)
	out, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: search audit: %w", err)
	}
	return out, nil
}

// auditWhere is the WHERE clause of q's filters, with action (if not
// empty) for its actions.
func auditWhere(q store.AuditQuery, action string) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) { where, args = append(where, cond), append(args, v) }
	if q.Actor != "" {
		add("actor = ?", q.Actor)
	}
	if action != "" {
		add("action = ?", action)
	}
	if q.Target != "" {
		add("target = ?", q.Target)
	}
	if !q.From.IsZero() {
		add("at >= ?", micros(q.From))
	}
	if !q.To.IsZero() {
		add("at < ?", micros(q.To))
	}
	if q.Before > 0 {
		add("id < ?", q.Before)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

func scanAudit(r scanner) (store.AuditRecord, error) {
	var (
		a  store.AuditRecord
		at int64
	)
	err := r.Scan(&a.ID, &at, &a.Actor.By, &a.Actor.Reason, &a.Action, &a.Target)
	a.At = fromMicros(at)
	return a, err
}

// AuditCounts implements store.Console, reading the index on the records'
// time.
func (s *Store) AuditCounts(ctx context.Context, since time.Time) (map[string]int64, error) {
	rows, err := s.query(ctx, `SELECT action, count(*) FROM audit WHERE at >= ? GROUP BY action`, micros(since))
	type count struct {
		action string
		n      int64
	}
	cs, err := collect(rows, err, func(r scanner) (count, error) {
		var c count
		err := r.Scan(&c.action, &c.n)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit counts: %w", err)
	}
	out := make(map[string]int64, len(cs))
	for _, c := range cs {
		out[c.action] = c.n
	}
	return out, nil
}

// SessionSubjects implements store.Console: one read of the sessions'
// primary key for every id at once.
func (s *Store) SessionSubjects(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cond, args := s.d.in("id", ids)
	rows, err := s.query(ctx, `SELECT id, subject FROM sessions WHERE `+cond, args...)
	pairs, err := collect(rows, err, func(r scanner) ([2]string, error) {
		var p [2]string
		err := r.Scan(&p[0], &p[1])
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: session subjects: %w", err)
	}
	for _, p := range pairs {
		out[p[0]] = p[1]
	}
	return out, nil
}
