package authority

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier"
)

// Scopes of a subject revocation.
const (
	// ScopeSessions ends every session of the subject and cuts off every
	// access token issued before now: "sign out everywhere".
	ScopeSessions = "sessions"
	// ScopeAccess cuts off access tokens issued before now but keeps the
	// sessions, so the next refresh carries fresh claims: a role change.
	ScopeAccess = "access"
)

// MaxReasonLen caps the audit reason an operator may give.
const MaxReasonLen = 500

// RevokeSession signs one device out. Its access tokens are rejected by
// this process before RevokeSession returns, and by every verifier once the
// entry reaches it over the feed. Revoking a revoked session is a no-op.
func (a *Authority) RevokeSession(ctx context.Context, sid string, actor store.Actor) (revocation.Entry, error) {
	if err := checkSessionID(sid); err != nil {
		return revocation.Entry{}, err
	}
	if err := checkActor(actor); err != nil {
		return revocation.Entry{}, err
	}
	now := a.cfg.Clock.Now()
	until, err := a.coverUntil(ctx, now)
	if err != nil {
		return revocation.Entry{}, err
	}
	e, err := a.store.RevokeSession(ctx, sid, now, until, actor)
	if errors.Is(err, store.ErrNotFound) {
		return revocation.Entry{}, &Error{Code: CodeNotFound, Description: "no such session"}
	}
	if err != nil {
		return revocation.Entry{}, fmt.Errorf("authority: revoke session: %w", err)
	}
	if e.Seq != 0 {
		a.applyLocal(e)
	}
	a.count.entry(e)
	return e, nil
}

func checkSessionID(sid string) error {
	if sid == "" || len(sid) > 128 || !isPlainText(sid) || strings.ContainsFunc(sid, isControl) {
		return invalidRequest("session id is malformed")
	}
	return nil
}

// SubjectRevocation is the input of RevokeSubject.
type SubjectRevocation struct {
	Subject string
	Scope   string         // ScopeSessions (default) or ScopeAccess
	Claims  map[string]any // optional: replaces the claims future tokens carry
	Actor   store.Actor
}

// RevokeSubject cuts off every access token of the subject issued before
// now, exactly: tokens carry the subject's generation (sgen) and the entry
// the new one, so no clock is compared.
func (a *Authority) RevokeSubject(ctx context.Context, r SubjectRevocation) (revocation.Entry, error) {
	sr, err := subjectCutoff(r)
	if err != nil {
		return revocation.Entry{}, err
	}
	if err := checkActor(r.Actor); err != nil {
		return revocation.Entry{}, err
	}
	sr.Now = a.cfg.Clock.Now()
	if sr.ExpiresAt, err = a.coverUntil(ctx, sr.Now); err != nil {
		return revocation.Entry{}, err
	}
	e, err := a.store.RevokeSubject(ctx, sr)
	if err != nil {
		return revocation.Entry{}, fmt.Errorf("authority: revoke subject: %w", err)
	}
	a.applyLocal(e)
	a.count.entry(e)
	return e, nil
}

// subjectCutoff checks a subject revocation and returns what the store
// records, without its instants.
func subjectCutoff(r SubjectRevocation) (store.SubjectRevocation, error) {
	if err := checkSubject(r.Subject); err != nil {
		return store.SubjectRevocation{}, err
	}
	if r.Scope == "" {
		r.Scope = ScopeSessions
	}
	if r.Scope != ScopeSessions && r.Scope != ScopeAccess {
		return store.SubjectRevocation{}, invalidRequest("scope must be %q or %q", ScopeSessions, ScopeAccess)
	}
	var claims json.RawMessage
	if r.Claims != nil {
		b, err := encodeClaims(r.Claims)
		if err != nil {
			return store.SubjectRevocation{}, err
		}
		claims = json.RawMessage("{}") // an empty map clears the claims
		if b != nil {
			claims = b
		}
	}
	return store.SubjectRevocation{Subject: r.Subject, EndSessions: r.Scope == ScopeSessions, Claims: claims, Actor: r.Actor}, nil
}

// RevokeToken is RFC 7009 for clients signing themselves out: a refresh
// token or an access token ends its session. Per RFC 7009 §2.2 an invalid or
// unknown token is not an error; it reports whether a session was revoked.
func (a *Authority) RevokeToken(ctx context.Context, tok string) (bool, error) {
	sid, err := a.sessionOf(ctx, tok)
	if err != nil || sid == "" {
		return false, err
	}
	e, err := a.RevokeSession(ctx, sid, store.Actor{By: "client", Reason: "token revocation (RFC 7009)", Entity: "user"})
	var ae *Error
	if errors.As(err, &ae) {
		return false, nil
	}
	return e.Seq != 0, err
}

// sessionOf finds the session a presented token belongs to; "" if none.
func (a *Authority) sessionOf(ctx context.Context, tok string) (string, error) {
	if hash, err := parseRefresh(tok); err == nil {
		s, err := a.store.SessionByRefresh(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("authority: find refresh token: %w", err)
		}
		return s.ID, nil
	}
	// A valid access token ends its session, the operator console's as an
	// app's; an expired one is refused like any invalid token (the client
	// should present its refresh token).
	c, err := a.local.Load().Verify(ctx, tok)
	if errors.Is(err, verifier.ErrAudience) {
		c, err = a.console.Load().Verify(ctx, tok)
	}
	if err != nil {
		a.log.Debug("token revocation: token not accepted", "reason", err)
		return "", nil
	}
	return c.SessionID(), nil
}

// Introspect answers RFC 7662 for access tokens with the same verifier apps
// embed; a nil claims with a nil error means "not active", as for the
// operator console's tokens, which are not the apps' audience.
//
// It returns ErrStale, rather than an answer it cannot stand behind, when
// this node has not read the revocation log to its end within StaleAfter
// (the database is unreachable from here): verifiers fall back to
// introspection precisely when they are stale themselves.
func (a *Authority) Introspect(ctx context.Context, tok string) (*token.Claims, error) {
	if err := a.fresh(); err != nil {
		if err := a.catchUp(ctx); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStale, err)
		}
	}
	c, err := a.local.Load().Verify(ctx, tok)
	if err != nil {
		a.log.Debug("introspection: token not active", "reason", err)
		return nil, nil
	}
	return c.Copy(), nil
}

func checkActor(a store.Actor) error {
	if len(a.Reason) > MaxReasonLen || !isPlainText(a.Reason) {
		return invalidRequest("reason must be valid UTF-8 without NUL, of at most %d bytes", MaxReasonLen)
	}
	return nil
}

// MaxAuditPage is the most audit records one call returns, and the number
// returned when the caller asks for none in particular.
const MaxAuditPage = 1000

// Audit returns up to limit records of the audit trail after a record id,
// oldest first, and whether more follow them.
func (a *Authority) Audit(ctx context.Context, after int64, limit int) (recs []store.AuditRecord, more bool, err error) {
	if limit <= 0 || limit > MaxAuditPage {
		limit = MaxAuditPage
	}
	recs, err = a.store.AuditLog(ctx, after, limit+1)
	if len(recs) > limit {
		recs, more = recs[:limit], true
	}
	return recs, more, err
}
