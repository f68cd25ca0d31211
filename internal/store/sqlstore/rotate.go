package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// Reasons given with store.Refused.
const (
	reasonUnknown        = "unknown token"
	reasonExpired        = "expired"
	reasonSessionRevoked = "session revoked"
	reasonSessionExpired = "session expired"
)

// refreshRow is a refresh token locked (or inserted) by a rotation batch,
// as the batch has changed it so far.
type refreshRow struct {
	sessionID string
	expiresAt int64
	usedAt    sql.NullInt64
	successor []byte
	sealed    []byte
	// challengeAt: the newest single-use challenge accepted with it.
	challengeAt sql.NullInt64
	// What the batch did to it.
	advanced, challenged bool
	inserted             *store.RefreshToken
}

// rotSession is a session locked by a rotation batch.
type rotSession struct {
	store.Session
	refreshed, revoked bool // changed by the batch
}

// rotateBatch is the state of one rotation batch.
type rotateBatch struct {
	tokens   map[string]*refreshRow // by hash (its 32 bytes as a string)
	inserted []string               // hashes of the successors, in order
	sessions map[string]*rotSession
	gens     map[string]int64
	// successors holds used_at of the successors of tokens rotated before
	// the batch (NULL: unused), for telling a replay from a theft.
	successors map[string]sql.NullInt64
	entries    []*revocation.Entry
	details    []store.EntryDetail // of entries, by index
	covers     []coverItem         // the status list slots each entry covers
	audit      []store.AuditRecord
	// wants are the sessions that get a new status list slot, by id.
	wants map[string]*slotWant
}

// RotateRefresh implements store.Sessions. Rotations are committed in
// batches (see batch.go). The presented tokens' rows are locked first, then
// their sessions', so concurrent presentations of one token run one after
// the other and each sees what the previous one did: one Rotated, then
// Replayed (or Reused), never a second successor. Each rotation is
// all-or-nothing, so a crash leaves either the old state or the whole
// rotation.
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.RotateResult, error) {
	return s.rotates.do(ctx, r)
}

func (s *Store) execRotate(ctx context.Context, t *tx, ops []*pending[store.Rotation, store.RotateResult]) error {
	b := &rotateBatch{}
	if err := b.lock(ctx, t, ops); err != nil {
		return err
	}
	entries := make([]*revocation.Entry, len(ops))
	for i, p := range ops {
		p.out, entries[i], p.err = b.rotate(p.in)
	}
	if anyRefused(ops) {
		return nil // rolled back and run again without them
	}
	if err := b.allocate(ctx, t, ops); err != nil || anyRefused(ops) {
		return err
	}
	if err := b.write(ctx, t); err != nil {
		return s.conflict(err)
	}
	for i, p := range ops {
		if e := entries[i]; e != nil {
			p.out.Entry = *e
		}
	}
	return nil
}

// lock reads and locks the presented tokens, then their sessions, then
// reads the subjects' generations and the successors a replay may need.
func (b *rotateBatch) lock(ctx context.Context, t *tx, ops []*pending[store.Rotation, store.RotateResult]) error {
	hashes := make([][]byte, len(ops))
	for i, p := range ops {
		hashes[i] = p.in.Presented[:]
	}
	if err := b.lockTokens(ctx, t, hashes); err != nil {
		return err
	}
	if err := b.lockSessions(ctx, t); err != nil {
		return err
	}
	// The sessions are locked before the generations are read: a
	// concurrent RevokeSubject that changes a session's claims must either
	// commit before (both new values seen) or wait for us (both old values).
	if err := b.readGenerations(ctx, t); err != nil {
		return err
	}
	return b.readSuccessors(ctx, t)
}

func (b *rotateBatch) lockTokens(ctx context.Context, t *tx, hashes [][]byte) error {
	from, args := t.d.from(newRows("p", len(hashes)).blobs("hash", hashes))
	rs, err := t.query(ctx, `SELECT hash, session_id, expires_at, used_at, successor_hash, successor_sealed, challenge_at
		FROM refresh_tokens WHERE hash IN (SELECT p.hash FROM `+from+`) ORDER BY hash`+t.d.lock(), args...)
	if err != nil {
		return fmt.Errorf("lock refresh tokens: %w", err)
	}
	defer rs.Close()
	b.tokens = make(map[string]*refreshRow, len(hashes))
	for rs.Next() {
		var h []byte
		tok := &refreshRow{}
		if err := rs.Scan(&h, &tok.sessionID, &tok.expiresAt, &tok.usedAt, &tok.successor, &tok.sealed, &tok.challengeAt); err != nil {
			return fmt.Errorf("lock refresh tokens: %w", err)
		}
		b.tokens[string(h)] = tok
	}
	return rs.Err()
}

func (b *rotateBatch) lockSessions(ctx context.Context, t *tx) error {
	ids := make([]string, 0, len(b.tokens))
	for _, tok := range b.tokens {
		ids = append(ids, tok.sessionID)
	}
	b.sessions = make(map[string]*rotSession, len(ids))
	if len(ids) == 0 {
		return nil
	}
	from, args := t.d.from(newRows("i", len(ids)).text("id", ids))
	rs, err := t.query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE id IN (SELECT i.id FROM `+from+`) ORDER BY id`+t.d.lock(), args...)
	if err != nil {
		return fmt.Errorf("lock sessions: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		ss, err := scanSession(rs)
		if err != nil {
			return fmt.Errorf("lock sessions: %w", err)
		}
		b.sessions[ss.ID] = &rotSession{Session: ss}
	}
	return rs.Err()
}

func (b *rotateBatch) readGenerations(ctx context.Context, t *tx) error {
	subs := make([]string, 0, len(b.sessions))
	for _, ss := range b.sessions {
		subs = append(subs, ss.Subject)
	}
	b.gens = make(map[string]int64, len(subs))
	if len(subs) == 0 {
		return nil
	}
	from, args := t.d.from(newRows("u", len(subs)).text("sub", subs))
	rs, err := t.query(ctx, `SELECT subject, generation FROM subjects
		WHERE subject IN (SELECT u.sub FROM `+from+`)`, args...)
	if err != nil {
		return fmt.Errorf("generations: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var sub string
		var gen int64
		if err := rs.Scan(&sub, &gen); err != nil {
			return fmt.Errorf("generations: %w", err)
		}
		b.gens[sub] = gen
	}
	return rs.Err()
}

// readSuccessors reads whether the successors of the presented tokens that
// were already rotated have been used.
func (b *rotateBatch) readSuccessors(ctx context.Context, t *tx) error {
	var hashes [][]byte
	for _, tok := range b.tokens {
		if tok.usedAt.Valid && tok.successor != nil && b.tokens[string(tok.successor)] == nil {
			hashes = append(hashes, tok.successor)
		}
	}
	b.successors = make(map[string]sql.NullInt64, len(hashes))
	if len(hashes) == 0 {
		return nil
	}
	from, args := t.d.from(newRows("n", len(hashes)).blobs("hash", hashes))
	rs, err := t.query(ctx, `SELECT hash, used_at FROM refresh_tokens
		WHERE hash IN (SELECT n.hash FROM `+from+`)`, args...)
	if err != nil {
		return fmt.Errorf("successors: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var h []byte
		var used sql.NullInt64
		if err := rs.Scan(&h, &used); err != nil {
			return fmt.Errorf("successors: %w", err)
		}
		b.successors[string(h)] = used
	}
	return rs.Err()
}

// rotate decides one rotation on the batch's state, and changes the state
// as the rotation would. The entry is that of a detected reuse.
func (b *rotateBatch) rotate(r store.Rotation) (store.RotateResult, *revocation.Entry, error) {
	tok := b.tokens[string(r.Presented[:])]
	if tok == nil {
		return store.RotateResult{Outcome: store.Refused, Reason: reasonUnknown}, nil, nil
	}
	ss := b.sessions[tok.sessionID]
	if ss == nil {
		return store.RotateResult{}, nil, fmt.Errorf("session %q of a refresh token: %w", tok.sessionID, store.ErrNotFound)
	}
	res := store.RotateResult{Session: ss.Session, Generation: b.gens[ss.Subject]}
	if reason := refusal(tok, ss.Session, micros(r.Now)); reason != "" {
		res.Outcome, res.Reason = store.Refused, reason
		return res, nil, nil
	}
	switch {
	case !tok.usedAt.Valid:
		if err := check(r, tok, ss.Session, res.Generation); err != nil {
			return store.RotateResult{}, nil, err
		}
		return b.advance(r, tok, ss, res)
	case b.isReplay(tok, r):
		if err := check(r, tok, ss.Session, res.Generation); err != nil {
			return store.RotateResult{}, nil, err
		}
		res.Outcome, res.Sealed = store.Replayed, tok.sealed
		return res, nil, nil
	}
	return b.reuse(r, ss, res)
}

// check runs the rotation's Check for a presentation of tok that would be
// answered, and records the challenge its proof signs, refusing one no
// newer than the last accepted with tok (store.ErrChallengeUsed).
func check(r store.Rotation, tok *refreshRow, ss store.Session, gen int64) error {
	if r.Check == nil {
		return nil
	}
	at, err := r.Check(ss, gen)
	if err != nil || at.IsZero() {
		return err
	}
	if tok.challengeAt.Valid && micros(at) <= tok.challengeAt.Int64 {
		return store.ErrChallengeUsed
	}
	tok.challengeAt, tok.challenged = sql.NullInt64{Int64: micros(at), Valid: true}, true
	return nil
}

// refusal says why a token may not be exchanged at all, or "".
func refusal(tok *refreshRow, ss store.Session, now int64) string {
	switch {
	case tok.expiresAt <= now:
		return reasonExpired
	case !ss.RevokedAt.IsZero():
		return reasonSessionRevoked
	case micros(ss.ExpiresAt) <= now:
		return reasonSessionExpired
	}
	return ""
}

// advance rotates a current token: it becomes used and Next current.
func (b *rotateBatch) advance(r store.Rotation, tok *refreshRow, ss *rotSession, res store.RotateResult) (store.RotateResult, *revocation.Entry, error) {
	next := r.Next
	next.SessionID = ss.ID
	key := string(next.Hash[:])
	if b.tokens[key] != nil {
		return res, nil, fmt.Errorf("next token: %w", store.ErrConflict)
	}
	tok.usedAt = sql.NullInt64{Int64: micros(r.Now), Valid: true}
	tok.successor, tok.sealed, tok.advanced = next.Hash[:], r.NextSealed, true
	b.tokens[key] = &refreshRow{sessionID: ss.ID, expiresAt: micros(next.ExpiresAt), inserted: &next}
	b.inserted = append(b.inserted, key)
	ss.RefreshedAt, ss.refreshed = stored(r.Now), true
	res.Outcome = store.Rotated
	res.Session.RefreshedAt = ss.RefreshedAt
	if r.Slot != nil && (ss.Status.List == 0 || ss.Status.Generation < res.Generation) && b.wants[ss.ID] == nil {
		// The first refresh after an access cutoff (or after status lists
		// were turned on): the session's tokens get a fresh slot, since the
		// old one is INVALID for good.
		if b.wants == nil {
			b.wants = map[string]*slotWant{}
		}
		b.wants[ss.ID] = &slotWant{sessionID: ss.ID, subject: ss.Subject, gen: res.Generation,
			freeAfter: micros(ss.ExpiresAt.Add(r.Slot.Grace)), req: r.Slot}
	}
	return res, nil, nil
}

// allocate gives the sessions that need one a new slot, and hands it to
// the results that mint with it. A rotation whose candidates are all held
// is refused alone (store.ErrNoSlot).
func (b *rotateBatch) allocate(ctx context.Context, t *tx, ops []*pending[store.Rotation, store.RotateResult]) error {
	if len(b.wants) == 0 {
		return nil
	}
	wants := make([]*slotWant, 0, len(b.wants))
	for _, w := range b.wants {
		wants = append(wants, w)
	}
	if err := allocateSlots(ctx, t, wants); err != nil {
		return err
	}
	for _, p := range ops {
		w := b.wants[p.out.Session.ID]
		if w == nil || (p.out.Outcome != store.Rotated && p.out.Outcome != store.Replayed) {
			continue
		}
		if w.got.List == 0 {
			p.err = store.ErrNoSlot
			continue
		}
		p.out.Session.Status = w.got
		b.sessions[w.sessionID].Status = w.got
	}
	return nil
}

// isReplay reports whether a used token is presented again within Grace of
// its rotation while its successor is still unused (two tabs refreshing at
// once), rather than stolen. With no grace nothing is a replay.
func (b *rotateBatch) isReplay(tok *refreshRow, r store.Rotation) bool {
	if r.Grace <= 0 || r.Now.Sub(fromNullMicros(tok.usedAt)) > r.Grace {
		return false
	}
	if succ := b.tokens[string(tok.successor)]; succ != nil {
		return !succ.usedAt.Valid
	}
	used, ok := b.successors[string(tok.successor)]
	return ok && !used.Valid // a successor that is gone has nothing left to hand out
}

// reuse handles a rotated token presented again: the session is revoked
// and the revocation recorded, all in the rotation's transaction.
func (b *rotateBatch) reuse(r store.Rotation, ss *rotSession, res store.RotateResult) (store.RotateResult, *revocation.Entry, error) {
	ss.RevokedAt, ss.revoked = stored(r.Now), true
	e := &revocation.Entry{Kind: revocation.KindSession, Session: ss.ID, CreatedAt: r.Now, ExpiresAt: r.RevokedUntil}
	actor := store.Actor{By: "system", Reason: "refresh token reuse", Entity: "system"}
	d := detail(store.CauseSessionReuse, actor)
	d.Subject = ss.Subject
	b.covers = append(b.covers, coverItem{entry: len(b.entries), sessionID: ss.ID, now: micros(r.Now), until: micros(r.RevokedUntil)})
	b.entries, b.details = append(b.entries, e), append(b.details, d)
	b.audit = append(b.audit, store.AuditRecord{
		At:     r.Now,
		Actor:  store.Actor{By: actor.By, Reason: actor.Reason},
		Action: "session.reuse",
		Target: ss.ID,
	})
	res.Outcome = store.Reused
	res.Session.RevokedAt = ss.RevokedAt
	return res, e, nil
}

// write stores what the batch changed.
func (b *rotateBatch) write(ctx context.Context, t *tx) error {
	next := make([]store.RefreshToken, len(b.inserted))
	for i, key := range b.inserted {
		next[i] = *b.tokens[key].inserted
	}
	// Successors first: one may have been rotated in turn by the batch.
	if err := insertRefreshTokens(ctx, t, next); err != nil {
		return fmt.Errorf("next tokens: %w", err)
	}
	if err := b.markUsed(ctx, t); err != nil {
		return err
	}
	if err := b.markChallenges(ctx, t); err != nil {
		return err
	}
	var refreshed, ended []string
	var refreshedAt, endedAt []int64
	for id, ss := range b.sessions {
		if ss.refreshed {
			refreshed, refreshedAt = append(refreshed, id), append(refreshedAt, micros(ss.RefreshedAt))
		}
		if ss.revoked {
			ended, endedAt = append(ended, id), append(endedAt, micros(ss.RevokedAt))
		}
	}
	if err := setSessionTimes(ctx, t, "refreshed_at", refreshed, refreshedAt); err != nil {
		return err
	}
	if err := setSessionTimes(ctx, t, "revoked_at", ended, endedAt); err != nil {
		return err
	}
	if err := b.writeSlots(ctx, t); err != nil {
		return err
	}
	slots, err := coverSlots(ctx, t, b.covers)
	if err != nil {
		return err
	}
	for i := range b.details {
		b.details[i].Slots = slots[i]
	}
	// The audit first: log_head, once taken, holds back every other
	// appender until this transaction commits.
	if err := recordAll(ctx, t, b.audit); err != nil {
		return err
	}
	return appendEntries(ctx, t, b.entries, b.details)
}

// writeSlots records the sessions' new slots.
func (b *rotateBatch) writeSlots(ctx context.Context, t *tx) error {
	var ids []string
	var lists, idx, gens []int64
	for id, w := range b.wants {
		if w.got.List != 0 {
			ids, lists = append(ids, id), append(lists, w.got.List)
			idx, gens = append(idx, w.got.Index), append(gens, w.got.Generation)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	from, args := t.d.from(newRows("r", len(ids)).text("id", ids).ints("list", lists).ints("idx", idx).ints("gen", gens))
	if _, err := t.exec(ctx, `UPDATE sessions SET status_list = r.list, status_idx = r.idx, status_gen = r.gen
		FROM `+from+` WHERE sessions.id = r.id`, args...); err != nil {
		return fmt.Errorf("session slots: %w", err)
	}
	return nil
}

// markUsed stores the rotations of the tokens the batch advanced.
// "used_at IS NULL" is a second guard behind the row locks: should a lock
// ever be missing, a concurrent rotation fails here instead of forking the
// chain.
func (b *rotateBatch) markUsed(ctx context.Context, t *tx) error {
	var hashes, succ, sealed [][]byte
	var used []int64
	for key, tok := range b.tokens {
		if tok.advanced {
			hashes, used = append(hashes, []byte(key)), append(used, tok.usedAt.Int64)
			succ, sealed = append(succ, tok.successor), append(sealed, tok.sealed)
		}
	}
	if len(hashes) == 0 {
		return nil
	}
	from, args := t.d.from(newRows("u", len(hashes)).blobs("hash", hashes).ints("used", used).
		blobs("succ", succ).blobs("sealed", sealed))
	n, err := rowsAffected(t.exec(ctx, `UPDATE refresh_tokens
		SET used_at = u.used, successor_hash = u.succ, successor_sealed = u.sealed
		FROM `+from+` WHERE refresh_tokens.hash = u.hash AND refresh_tokens.used_at IS NULL`, args...))
	if err != nil {
		return fmt.Errorf("mark used: %w", err)
	}
	if n != int64(len(hashes)) {
		return errors.New("a presented token was rotated concurrently")
	}
	return nil
}

// markChallenges stores the challenges accepted with the presented tokens.
func (b *rotateBatch) markChallenges(ctx context.Context, t *tx) error {
	var hashes [][]byte
	var at []int64
	for key, tok := range b.tokens {
		if tok.challenged {
			hashes, at = append(hashes, []byte(key)), append(at, tok.challengeAt.Int64)
		}
	}
	if len(hashes) == 0 {
		return nil
	}
	from, args := t.d.from(newRows("c", len(hashes)).blobs("hash", hashes).ints("at", at))
	if _, err := t.exec(ctx, `UPDATE refresh_tokens SET challenge_at = c.at
		FROM `+from+` WHERE refresh_tokens.hash = c.hash`, args...); err != nil {
		return fmt.Errorf("mark challenges: %w", err)
	}
	return nil
}

// setSessionTimes sets one instant column of sessions, per session.
func setSessionTimes(ctx context.Context, t *tx, column string, ids []string, at []int64) error {
	if len(ids) == 0 {
		return nil
	}
	q, args := sessionTimes(t.d, column, ids, at)
	if _, err := t.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("sessions %s: %w", column, err)
	}
	return nil
}

// sessionTimes is the statement that sets column of sessions ids[i] to at[i].
func sessionTimes(d Dialect, column string, ids []string, at []int64) (string, []any) {
	from, args := d.from(newRows("r", len(ids)).text("id", ids).ints("at", at))
	return `UPDATE sessions SET ` + column + ` = r.at FROM ` + from + ` WHERE sessions.id = r.id`, args
}
