package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// logWriter appends subject revocations to the revocation log in bulk,
// straight into Postgres, for the flood: the authorities' own path appends
// one entry per transaction, serialised on the log head, which is far too
// slow to produce a burst. It does what the store's append does
// (internal/store/sqlstore/log.go: seq taken by advancing the log_head row, whose
// lock orders commits; pg_notify on channel tegata_log; instants in Unix
// microseconds), for many entries per transaction.
type logWriter struct {
	conn *pgx.Conn
}

// coverWindow is what the authority adds to the revocation time for the
// entry's expiry with its default configuration: the access token
// lifetime (15 min) plus the verifiers' leeway (30 s).
const coverWindow = 15*time.Minute + 30*time.Second

func newLogWriter(ctx context.Context, dsn string) (*logWriter, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: connect for bulk appends: %w", err)
	}
	return &logWriter{conn: conn}, nil
}

func (w *logWriter) close() { _ = w.conn.Close(context.Background()) }

// appendSubjects cuts off subs in one transaction: each subject's
// generation goes up by one and a subject entry carrying it is appended.
// It returns the highest seq appended.
func (w *logWriter) appendSubjects(ctx context.Context, subs []string, now time.Time) (int64, error) {
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.Background())
	var head int64
	err = tx.QueryRow(ctx, `UPDATE log_head SET seq = seq + $1 WHERE id = 1 RETURNING seq`, len(subs)).Scan(&head)
	if err != nil {
		return 0, fmt.Errorf("bench: advance log_head (has the store schema changed?): %w", err)
	}
	_, err = tx.Exec(ctx, `
		WITH gens AS (
			INSERT INTO subjects (subject, generation) SELECT s, 1 FROM unnest($1::text[]) AS s
			ON CONFLICT (subject) DO UPDATE SET generation = subjects.generation + 1
			RETURNING subject, generation
		)
		INSERT INTO revocations (seq, kind, session_id, subject, generation, created_at, expires_at)
		SELECT $2 + row_number() OVER (ORDER BY subject), 'subject', '', subject, generation, $3, $4 FROM gens`,
		subs, head-int64(len(subs)), now.UnixMicro(), now.Add(coverWindow).UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("bench: bulk append (has the store schema changed?): %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify('tegata_log', $1::text)`, fmt.Sprint(head)); err != nil {
		return 0, err
	}
	return head, tx.Commit(ctx)
}
