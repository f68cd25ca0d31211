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

const streamColumns = `id, aud, method, endpoint_url, auth_header, events, description, status, reason,
	created_at, updated_at, cursor, verify_seq, verify_sent, verify_state, verify_at,
	lease_owner, lease_until, attempts, next_attempt, last_error, delivered, lost, poll_key`

func scanStream(row scanner) (store.Stream, error) {
	var (
		s                                     store.Stream
		events                                sql.NullString
		created, updated, verifyAt, lease, na int64
	)
	err := row.Scan(&s.ID, &s.Audience, &s.Method, &s.EndpointURL, &s.AuthHeader, &events, &s.Description,
		&s.Status, &s.Reason, &created, &updated, &s.Cursor, &s.VerifySeq, &s.VerifySent, &s.VerifyState,
		&verifyAt, &s.LeaseOwner, &lease, &s.Attempts, &na, &s.LastError, &s.Delivered, &s.Lost, &s.PollKey)
	if err != nil {
		return store.Stream{}, err
	}
	if events.Valid {
		if err := json.Unmarshal([]byte(events.String), &s.Events); err != nil {
			return store.Stream{}, fmt.Errorf("stream %s: events: %w", s.ID, err)
		}
	}
	s.CreatedAt, s.UpdatedAt = fromMicros(created), fromMicros(updated)
	s.VerifyAt, s.LeaseUntil, s.NextAttempt = fromMicros(verifyAt), fromMicros(lease), fromMicros(na)
	return s, nil
}

// eventsArg stores events_requested as JSON, NULL when not given.
func eventsArg(events []string) (any, error) {
	if events == nil {
		return nil, nil
	}
	b, err := json.Marshal(events)
	return string(b), err
}

// AddStream implements store.Streams.
func (s *Store) AddStream(ctx context.Context, st store.Stream) error {
	events, err := eventsArg(st.Events)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO ssf_streams (id, aud, method, endpoint_url, auth_header, events, description,
		status, reason, created_at, updated_at, cursor, poll_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		st.ID, st.Audience, st.Method, st.EndpointURL, st.AuthHeader, events, st.Description, st.Status, st.Reason,
		micros(st.CreatedAt), micros(st.UpdatedAt), st.Cursor, st.PollKey)
	if err != nil {
		return fmt.Errorf("sqlstore: add stream: %w", s.conflict(err))
	}
	return nil
}

// Stream implements store.Streams.
func (s *Store) Stream(ctx context.Context, id string) (store.Stream, error) {
	st, err := scanStream(s.queryRow(ctx, `SELECT `+streamColumns+` FROM ssf_streams WHERE id = ?`, id))
	if err != nil {
		return store.Stream{}, fmt.Errorf("sqlstore: stream: %w", notFound(err, fmt.Sprintf("stream %q", id)))
	}
	return st, nil
}

// ListStreams implements store.Streams.
func (s *Store) ListStreams(ctx context.Context) ([]store.Stream, error) {
	rows, err := s.query(ctx, `SELECT `+streamColumns+` FROM ssf_streams ORDER BY created_at, id`)
	out, err := collect(rows, err, scanStream)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list streams: %w", err)
	}
	return out, nil
}

// UpdateStream implements store.Streams.
func (s *Store) UpdateStream(ctx context.Context, st store.Stream, moveCursor bool) error {
	events, err := eventsArg(st.Events)
	if err != nil {
		return err
	}
	n, err := rowsAffected(s.exec(ctx, `UPDATE ssf_streams SET aud = ?, method = ?, endpoint_url = ?, auth_header = ?,
		events = ?, description = ?, status = ?, reason = ?, updated_at = ?, poll_key = ?,
		cursor = CASE WHEN ? THEN ? ELSE cursor END, lease_owner = '', lease_until = 0 WHERE id = ?`,
		st.Audience, st.Method, st.EndpointURL, st.AuthHeader, events, st.Description, st.Status, st.Reason,
		micros(st.UpdatedAt), st.PollKey, moveCursor, st.Cursor, st.ID))
	if err != nil {
		return fmt.Errorf("sqlstore: update stream: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: update stream %q: %w", st.ID, store.ErrNotFound)
	}
	return nil
}

// DeleteStream implements store.Streams.
func (s *Store) DeleteStream(ctx context.Context, id string) error {
	return s.inTx(ctx, "delete stream", func(t *tx) error {
		n, err := rowsAffected(t.exec(ctx, `DELETE FROM ssf_streams WHERE id = ?`, id))
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("stream %q: %w", id, store.ErrNotFound)
		}
		_, err = t.exec(ctx, `DELETE FROM ssf_acks WHERE stream_id = ?`, id)
		return err
	})
}

// RequestVerification implements store.Streams. The interval is checked in
// the UPDATE itself, so two nodes cannot both accept a request.
func (s *Store) RequestVerification(ctx context.Context, id, state string, now time.Time, minInterval time.Duration) error {
	n, err := rowsAffected(s.exec(ctx, `UPDATE ssf_streams SET verify_seq = verify_seq + 1, verify_state = ?, verify_at = ?
		WHERE id = ? AND (verify_at = 0 OR verify_at <= ?)`, state, micros(now), id, micros(now.Add(-minInterval))))
	if err != nil {
		return fmt.Errorf("sqlstore: request verification: %w", err)
	}
	if n == 1 {
		return nil
	}
	if _, err := s.Stream(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("sqlstore: request verification: %w", store.ErrTooSoon)
}

// LeaseStream implements store.Streams.
func (s *Store) LeaseStream(ctx context.Context, id, owner string, now, until time.Time) (store.Stream, error) {
	n, err := rowsAffected(s.exec(ctx, `UPDATE ssf_streams SET lease_owner = ?, lease_until = ?
		WHERE id = ? AND (lease_owner = ? OR lease_until <= ?)`, owner, micros(until), id, owner, micros(now)))
	if err != nil {
		return store.Stream{}, fmt.Errorf("sqlstore: lease stream: %w", err)
	}
	if n == 0 {
		return store.Stream{}, fmt.Errorf("sqlstore: lease stream %q: %w", id, store.ErrLeaseLost)
	}
	return s.Stream(ctx, id)
}

// SaveProgress implements store.Streams.
func (s *Store) SaveProgress(ctx context.Context, id, owner string, p store.Progress) error {
	n, err := rowsAffected(s.exec(ctx, `UPDATE ssf_streams SET cursor = ?,
		verify_sent = CASE WHEN verify_sent > ? THEN verify_sent ELSE ? END,
		attempts = ?, next_attempt = ?, last_error = ?, delivered = delivered + ?, lost = lost + ?,
		lease_owner = CASE WHEN ? THEN '' ELSE lease_owner END, lease_until = ?
		WHERE id = ? AND lease_owner = ?`,
		p.Cursor, p.VerifySent, p.VerifySent, p.Attempts, micros(p.NextAttempt), p.LastError, p.Delivered, p.Lost,
		p.LeaseUntil.IsZero(), nullZeroMicros(p.LeaseUntil), id, owner))
	if err != nil {
		return fmt.Errorf("sqlstore: save stream progress: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: save stream progress %q: %w", id, store.ErrLeaseLost)
	}
	return nil
}

// nullZeroMicros stores the zero time as 0 (a lease free at any time).
func nullZeroMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

// Acknowledge implements store.Streams.
func (s *Store) Acknowledge(ctx context.Context, id string, acks []int64, verification int64) (store.Stream, []int64, error) {
	var st store.Stream
	var held []int64
	err := s.inTx(ctx, "acknowledge", func(t *tx) error {
		var err error
		if st, err = scanStream(t.queryRow(ctx, `SELECT `+streamColumns+` FROM ssf_streams WHERE id = ?`+t.d.lock(), id)); err != nil {
			return notFound(err, fmt.Sprintf("stream %q", id))
		}
		if len(acks) > 0 {
			from, args := t.d.from(newRows("a", len(acks)).ints("seq", acks))
			// Only events that exist: an acknowledgement beyond the log's
			// head would skip an event not yet recorded (RFC 8936 keeps
			// every unacknowledged one) and pile up, never pruned.
			if _, err := t.exec(ctx, `INSERT INTO ssf_acks (stream_id, seq) SELECT ?, a.seq FROM `+from+`
				WHERE a.seq > ? AND a.seq <= (SELECT seq FROM log_head WHERE id = 1)
				ON CONFLICT (stream_id, seq) DO NOTHING`, append([]any{id}, append(args, st.Cursor)...)...); err != nil {
				return err
			}
		}
		if verification > st.VerifySent && verification <= st.VerifySeq {
			if _, err := t.exec(ctx, `UPDATE ssf_streams SET verify_sent = ? WHERE id = ?`, verification, id); err != nil {
				return err
			}
			st.VerifySent = verification
		}
		held, err = ackedAfter(ctx, t, id, st.Cursor)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Stream{}, nil, fmt.Errorf("sqlstore: acknowledge: %w", err)
		}
		return store.Stream{}, nil, err
	}
	return st, held, nil
}

func ackedAfter(ctx context.Context, t *tx, id string, cursor int64) ([]int64, error) {
	rows, err := t.QueryContext(ctx, t.d.rebind(`SELECT seq FROM ssf_acks WHERE stream_id = ? AND seq > ? ORDER BY seq`), id, cursor)
	return collect(rows, err, func(row scanner) (seq int64, err error) {
		return seq, row.Scan(&seq)
	})
}

// MoveCursor implements store.Streams.
func (s *Store) MoveCursor(ctx context.Context, id string, from, to, delivered int64) error {
	return s.inTx(ctx, "move stream cursor", func(t *tx) error {
		n, err := rowsAffected(t.exec(ctx, `UPDATE ssf_streams SET cursor = ?, delivered = delivered + ? WHERE id = ? AND cursor = ?`,
			to, delivered, id, from))
		if err != nil || n == 0 {
			return err
		}
		_, err = t.exec(ctx, `DELETE FROM ssf_acks WHERE stream_id = ? AND seq <= ?`, id, to)
		return err
	})
}
