package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

const sessionColumns = `id, subject, device, claims, created_at, refreshed_at, expires_at, revoked_at,
	status_list, status_idx, status_gen`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanSession(row scanner) (store.Session, error) {
	var (
		s                           store.Session
		claims                      sql.NullString
		created, refreshed, expires int64
		revoked                     sql.NullInt64
		slotList, slotIdx, slotGen  sql.NullInt64
	)
	if err := row.Scan(&s.ID, &s.Subject, &s.Device, &claims, &created, &refreshed, &expires, &revoked,
		&slotList, &slotIdx, &slotGen); err != nil {
		return store.Session{}, err
	}
	if slotList.Valid {
		s.Status = store.StatusSlot{SlotPos: store.SlotPos{List: slotList.Int64, Index: slotIdx.Int64}, Generation: slotGen.Int64}
	}
	if claims.Valid {
		s.Claims = json.RawMessage(claims.String)
	}
	s.CreatedAt, s.RefreshedAt, s.ExpiresAt = fromMicros(created), fromMicros(refreshed), fromMicros(expires)
	s.RevokedAt = fromNullMicros(revoked)
	return s, nil
}

// claimsArg stores nil claims as NULL and anything else as text.
func claimsArg(c json.RawMessage) any {
	if c == nil {
		return nil
	}
	return string(c)
}

// CreateSession implements store.Sessions.
func (s *Store) CreateSession(ctx context.Context, ns store.NewSession) (store.Created, error) {
	var c store.Created
	err := s.inTx(ctx, "create session", func(t *tx) error {
		// Lock the subject's row before anything else (creating it at
		// generation 0 if new). RevokeSubject locks the same row first, so
		// the two serialize: either this session exists when a cutoff ends
		// the subject's sessions, or it is created after the cutoff and
		// carries the new generation. Without the lock, on Postgres a
		// session created concurrently with "sign out everywhere" could
		// survive it.
		var err error
		if c.Generation, err = lockGeneration(ctx, t, ns.Session.Subject); err != nil {
			return err
		}
		ss := ns.Session
		ss.Status = store.StatusSlot{}
		if ns.Slot != nil {
			ss.Status, err = allocateSlot(ctx, t, ss.ID, ss.Subject, ss.ExpiresAt, c.Generation, ns.Slot)
			if err != nil {
				return err
			}
		}
		c.Status = ss.Status
		if err := insertSession(ctx, t, ss); err != nil {
			return s.conflict(err)
		}
		tok := ns.Refresh
		tok.SessionID = ns.Session.ID
		if err := insertRefresh(ctx, t, tok); err != nil {
			return s.conflict(err)
		}
		return nil
	})
	if err != nil {
		return store.Created{}, err
	}
	return c, nil
}

func insertSession(ctx context.Context, t *tx, ss store.Session) error {
	refreshed := ss.RefreshedAt
	if refreshed.IsZero() {
		refreshed = ss.CreatedAt
	}
	list, idx, gen := slotArgs(ss.Status)
	_, err := t.exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ss.ID, ss.Subject, ss.Device, claimsArg(ss.Claims),
		micros(ss.CreatedAt), micros(refreshed), micros(ss.ExpiresAt), nullMicros(ss.RevokedAt), list, idx, gen)
	return err
}

func insertRefresh(ctx context.Context, t *tx, rt store.RefreshToken) error {
	_, err := t.exec(ctx, `INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		rt.Hash[:], rt.SessionID, micros(rt.CreatedAt), micros(rt.ExpiresAt))
	return err
}

// lockGeneration returns the subject's generation with its row locked
// until the transaction ends (an upsert takes the row lock on both
// backends; SQLite has one writer anyway).
func lockGeneration(ctx context.Context, t *tx, subject string) (int64, error) {
	var gen int64
	err := t.queryRow(ctx, `INSERT INTO subjects (subject, generation) VALUES (?, 0)
		ON CONFLICT (subject) DO UPDATE SET generation = subjects.generation
		RETURNING generation`, subject).Scan(&gen)
	return gen, err
}

// generation returns the subject's generation, 0 if it was never cut off.
func generation(ctx context.Context, t *tx, subject string) (int64, error) {
	var gen int64
	err := t.queryRow(ctx, `SELECT generation FROM subjects WHERE subject = ?`, subject).Scan(&gen)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return gen, err
}

// Session implements store.Sessions. The session and the generation are read
// in one statement so they come from one snapshot.
func (s *Store) Session(ctx context.Context, id string) (store.Session, int64, error) {
	row := s.queryRow(ctx, `SELECT s.id, s.subject, s.device, s.claims, s.created_at, s.refreshed_at,
		s.expires_at, s.revoked_at, s.status_list, s.status_idx, s.status_gen, COALESCE(g.generation, 0)
		FROM sessions s LEFT JOIN subjects g ON g.subject = s.subject WHERE s.id = ?`, id)
	var gen int64
	ss, err := scanSession(scanFunc(func(dest ...any) error { return row.Scan(append(dest, &gen)...) }))
	if err != nil {
		return store.Session{}, 0, fmt.Errorf("sqlstore: session: %w", notFound(err, fmt.Sprintf("session %q", id)))
	}
	return ss, gen, nil
}

// scanFunc adapts a function to scanner, to scan extra columns after a
// session's.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// SessionByRefresh implements store.Sessions.
func (s *Store) SessionByRefresh(ctx context.Context, hash [32]byte) (store.Session, error) {
	row := s.queryRow(ctx, `SELECT s.id, s.subject, s.device, s.claims, s.created_at, s.refreshed_at,
		s.expires_at, s.revoked_at, s.status_list, s.status_idx, s.status_gen
		FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.hash = ?`, hash[:])
	ss, err := scanSession(row)
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlstore: session by refresh: %w", notFound(err, "refresh token"))
	}
	return ss, nil
}

// ListSessions implements store.Sessions.
func (s *Store) ListSessions(ctx context.Context, subject string, now time.Time) ([]store.Session, error) {
	rows, err := s.query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE subject = ? AND revoked_at IS NULL AND expires_at > ?
		ORDER BY created_at DESC, id DESC`, subject, micros(now))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list sessions: %w", err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list sessions: %w", err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list sessions: %w", err)
	}
	return out, nil
}

// DeleteExpired implements store.Sessions. Tokens go first, so the count
// does not depend on foreign key cascades.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := s.inTx(ctx, "delete expired", func(t *tx) error {
		n, err := rowsAffected(t.exec(ctx, `DELETE FROM refresh_tokens WHERE expires_at <= ?
			OR session_id IN (SELECT id FROM sessions WHERE expires_at <= ?)`, micros(now), micros(now)))
		if err != nil {
			return err
		}
		m, err := rowsAffected(t.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, micros(now)))
		total = n + m
		return err
	})
	return total, err
}
