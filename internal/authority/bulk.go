package authority

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// MaxBulkItems caps the items of one Revoke call.
const MaxBulkItems = 10_000

// RevokeItem is one item of Revoke: a session (SessionID), or else a
// subject cutoff (Subject, Scope, Claims) as RevokeSubject makes.
type RevokeItem struct {
	SessionID string
	Subject   string
	Scope     string         // ScopeSessions (default) or ScopeAccess
	Claims    map[string]any // optional: replaces the claims future tokens carry
}

// Revoke revokes every item, in order, all or nothing, for "sign out this
// whole department" and incident response: one log entry and one audit
// record per item, recorded in one transaction. Each item is checked as
// RevokeSession or RevokeSubject checks it; the first bad item fails the
// whole call with an *Error whose description names it ("items[3]: ...").
// Outcome i is item i's (store.Revoked: its entry, the zero Entry for a
// session that was already revoked, also by an earlier item, and the live
// sessions it found). Like the single revocations, every
// entry is in force in this process before Revoke returns.
func (a *Authority) Revoke(ctx context.Context, items []RevokeItem, actor store.Actor) ([]store.Revoked, error) {
	if len(items) == 0 || len(items) > MaxBulkItems {
		return nil, invalidRequest("items must hold 1 to %d revocations", MaxBulkItems)
	}
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	now := a.cfg.Clock.Now()
	until, err := a.coverUntil(ctx, now)
	if err != nil {
		return nil, err
	}
	revs := make([]store.Revocation, len(items))
	for i, it := range items {
		r, err := a.revocation(ctx, it, now, until, actor)
		if err != nil {
			return nil, itemError(i, err)
		}
		revs[i] = r
	}
	es, err := a.store.Revoke(ctx, revs)
	var ie *store.ItemError
	if errors.As(err, &ie) && errors.Is(err, store.ErrNotFound) {
		return nil, itemError(ie.Index, &Error{Code: CodeNotFound, Description: "no such session"})
	}
	if err != nil {
		return nil, fmt.Errorf("authority: revoke: %w", err)
	}
	for _, e := range es {
		if e.Seq != 0 {
			a.applyLocal(e.Entry)
		}
		a.count.entry(e.Entry)
	}
	return es, nil
}

// revocation checks one item and turns it into what the store records.
func (a *Authority) revocation(ctx context.Context, it RevokeItem, now, until time.Time, actor store.Actor) (store.Revocation, error) {
	r := store.Revocation{Now: now, ExpiresAt: until, Actor: actor}
	switch {
	case it.SessionID != "" && (it.Subject != "" || it.Scope != "" || it.Claims != nil):
		return r, invalidRequest("a session item has session_id only")
	case it.SessionID != "":
		r.SessionID = it.SessionID
		return r, checkSessionID(it.SessionID)
	}
	sr, err := subjectCutoff(SubjectRevocation{Subject: it.Subject, Scope: it.Scope, Claims: it.Claims, Actor: actor})
	if err != nil {
		return r, err
	}
	r.Subject, r.EndSessions, r.Claims = sr.Subject, sr.EndSessions, sr.Claims
	return r, nil
}

// itemError names the item an *Error is about.
func itemError(i int, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	out := *e
	out.Description = fmt.Sprintf("items[%d]: %s", i, e.Description)
	return &out
}
