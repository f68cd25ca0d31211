package authority

import (
	"context"
	"errors"
	"fmt"

	"github.com/tegata-dev/tegata/internal/store"
)

// SessionByRefresh returns the live session (as Session does) that a
// refresh token belongs to, current or rotated, without spending it: the
// operator console reads its own session so when the session's access
// token has expired. CodeNotFound if the token is unknown or its session
// is not live.
func (a *Authority) SessionByRefresh(ctx context.Context, refresh string) (store.Session, error) {
	hash, err := parseRefresh(refresh)
	if err != nil {
		return store.Session{}, &Error{Code: CodeNotFound, Description: "no such live session"}
	}
	s, err := a.store.SessionByRefresh(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, &Error{Code: CodeNotFound, Description: "no such live session"}
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("authority: session by refresh token: %w", err)
	}
	return a.Session(ctx, s.ID)
}

// errConsoleOnly marks the refusal of a refresh that tries to rotate an
// operator console session outside the console, or the console's own
// refresh of another session.
var errConsoleOnly = errors.New("authority: console sessions refresh only through the console")

// checkConsole is the refresh rule of the operator console's sessions:
// only the console refreshes them (RefreshRequest.Console), after its own
// checks (idle timeout, the API key still a live admin key), and it
// refreshes no other session. A refusal spends and revokes nothing: the
// refresh token stays the operator's, whoever else presented it.
func checkConsole(s store.Session, console bool) error {
	if store.IsConsoleSubject(s.Subject) == console {
		return nil
	}
	desc := "the refresh token is an operator console session's: only the console refreshes it"
	if console {
		desc = "the refresh token is not an operator console session's"
	}
	return &Error{Code: CodeInvalidGrant, kind: errConsoleOnly, Description: desc, Detail: "session " + s.ID}
}

// checkBindable refuses to bind an operator console session: it is bound
// to no device key (the console brings no proof to its refresh), and no
// app binds an operator's session.
func (a *Authority) checkBindable(ctx context.Context, sid string) error {
	s, _, err := a.store.Session(ctx, sid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // BindSession answers it
	case err != nil:
		return fmt.Errorf("authority: bind session: %w", err)
	case store.IsConsoleSubject(s.Subject):
		return invalidRequest("an operator console session is bound to no device key")
	}
	return nil
}
