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
