package authority

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tegata-dev/tegata/internal/keyproof"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// BindRequest binds an existing session to a device key.
type BindRequest struct {
	Kind string          // store.BindingDPoP or store.BindingDBSC
	JWK  json.RawMessage // the device's public key; private members are refused
	// RefreshToken, when set, must be a refresh token of this session
	// (current or rotated): a web gate sends the one the registering browser
	// holds, so a browser cannot bind a session whose access cookie it
	// copied to a key of its own (its refresh token belongs to another
	// session).
	RefreshToken string
}

// bindingKey checks a binding's kind and key and returns the binding to
// store.
func bindingKey(kind string, jwk []byte) (store.Binding, error) {
	if kind != store.BindingDPoP && kind != store.BindingDBSC {
		return store.Binding{}, invalidRequest("binding kind must be %q or %q", store.BindingDPoP, store.BindingDBSC)
	}
	k, err := keyproof.ParseJWK(jwk)
	if err != nil {
		return store.Binding{}, invalidRequest("jwk is not an accepted public key: %v", err)
	}
	return store.Binding{Kind: kind, Thumbprint: k.Thumbprint, Key: k.JSON}, nil
}

// BindSession binds a live session to a device key: from then on its
// tokens are good only with proofs signed by that key (DPoP: access tokens
// carry cnf.jkt and refresh needs a proof; DBSC: the web gate refreshes
// only with a proof). Binding again to the same key is a no-op; another
// key is refused with CodeConflict; a session that is not live is
// CodeNotFound; an operator console session is refused (CodeInvalidRequest).
func (a *Authority) BindSession(ctx context.Context, sid string, req BindRequest, actor store.Actor) (store.Session, error) {
	if err := checkSessionID(sid); err != nil {
		return store.Session{}, err
	}
	if err := checkActor(actor); err != nil {
		return store.Session{}, err
	}
	b, err := bindingKey(req.Kind, req.JWK)
	if err != nil {
		return store.Session{}, err
	}
	if err := a.checkHolder(ctx, sid, req.RefreshToken); err != nil {
		return store.Session{}, err
	}
	if err := a.checkBindable(ctx, sid); err != nil {
		return store.Session{}, err
	}
	s, err := a.store.BindSession(ctx, sid, b, a.cfg.Clock.Now(), actor)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Session{}, &Error{Code: CodeNotFound, Description: "no such live session"}
	case errors.Is(err, store.ErrBound):
		return store.Session{}, &Error{Code: CodeConflict, Description: "the session is already bound to another key; a binding is never replaced"}
	case err != nil:
		return store.Session{}, fmt.Errorf("authority: bind session: %w", err)
	}
	a.log.Info("session bound to a device key", "sid", sid, "kind", b.Kind, "jkt", b.Thumbprint, "by", actor.By)
	return s, nil
}

// BindingFailed handles a failed proof of a bound session's key the way
// a reused refresh token is handled: someone holds the session's
// credentials without its key, so the session is revoked (cause
// store.CauseBindingFailed: audit, SSF session-revoked, the binding_failed
// revocation count). A session bound to no key is CodeConflict (a failed proof of no key proves nothing); one
// already revoked returns the zero Entry.
func (a *Authority) BindingFailed(ctx context.Context, sid string, actor store.Actor) (revocation.Entry, error) {
	if err := checkSessionID(sid); err != nil {
		return revocation.Entry{}, err
	}
	if err := checkActor(actor); err != nil {
		return revocation.Entry{}, err
	}
	s, _, err := a.store.Session(ctx, sid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return revocation.Entry{}, &Error{Code: CodeNotFound, Description: "no such session"}
	case err != nil:
		return revocation.Entry{}, fmt.Errorf("authority: binding failed: %w", err)
	case !s.Binding.Bound():
		return revocation.Entry{}, &Error{Code: CodeConflict, Description: "the session is not bound to a device key"}
	}
	return a.revokeForBinding(ctx, s, actor)
}

// revokeForBinding revokes a bound session whose device failed a proof.
func (a *Authority) revokeForBinding(ctx context.Context, s store.Session, actor store.Actor) (revocation.Entry, error) {
	now := a.cfg.Clock.Now()
	until, err := a.coverUntil(ctx, now)
	if err != nil {
		return revocation.Entry{}, err
	}
	actor.Entity = "system"
	out, err := a.store.Revoke(ctx, []store.Revocation{{SessionID: s.ID, Cause: store.CauseBindingFailed,
		Now: now, ExpiresAt: until, Actor: actor}})
	if err != nil {
		return revocation.Entry{}, fmt.Errorf("authority: binding failed: %w", err)
	}
	e := out[0].Entry
	if e.Seq != 0 {
		a.applyLocal(e)
		a.count.bindingFailed.Add(1)
		a.log.Warn("device binding proof failed: session revoked", "sid", s.ID, "sub", s.Subject,
			"kind", s.Binding.Kind, "seq", e.Seq, "by", actor.By, "reason", actor.Reason)
	}
	return e, nil
}

// Session returns a session that is live (neither revoked nor expired, its
// refresh token not idled out), with its binding; CodeNotFound otherwise.
func (a *Authority) Session(ctx context.Context, sid string) (store.Session, error) {
	if err := checkSessionID(sid); err != nil {
		return store.Session{}, err
	}
	s, _, err := a.store.Session(ctx, sid)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, &Error{Code: CodeNotFound, Description: "no such live session"}
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("authority: session: %w", err)
	}
	now := a.cfg.Clock.Now()
	s.ExpiresAt = a.refreshExpiry(s, s.RefreshedAt)
	if !s.RevokedAt.IsZero() || !s.ExpiresAt.After(now) {
		return store.Session{}, &Error{Code: CodeNotFound, Description: "no such live session"}
	}
	return s, nil
}

// checkHolder refuses a binding whose refresh token, when one is given,
// belongs to no session or to another session than sid.
func (a *Authority) checkHolder(ctx context.Context, sid, refresh string) error {
	if refresh == "" {
		return nil
	}
	hash, err := parseRefresh(refresh)
	if err != nil {
		return invalidRequest("refresh_token is not a refresh token")
	}
	s, err := a.store.SessionByRefresh(ctx, hash)
	if errors.Is(err, store.ErrNotFound) || (err == nil && s.ID != sid) {
		return &Error{Code: CodeInvalidGrant, Description: "the refresh token does not belong to this session"}
	}
	if err != nil {
		return fmt.Errorf("authority: bind session: find refresh token: %w", err)
	}
	return nil
}
