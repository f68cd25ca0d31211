package authority

import (
	"context"
	"errors"

	"github.com/tegata-dev/tegata/internal/store"
)

// errUnwritable: this node's store refuses writes (a full disk, a read-only
// database), so it can sign nobody in or out. Calls that failed so return
// an error wrapping store.ErrUnwritable.
var errUnwritable = errors.New("authority: the store refuses writes (disk full or database read-only?)")

// unwritable returns errUnwritable while the store reports a refused write
// that no probe has cleared since.
func (a *Authority) unwritable() error {
	wh, ok := a.store.(store.WriteHealth)
	if !ok || wh.Unwritable() == nil {
		return nil
	}
	return errUnwritable
}

// probeWrites checks that the store still writes, so that readiness turns
// false before the next sign-in fails, and true again once the store has
// room. Run calls it every few seconds.
func (a *Authority) probeWrites(ctx context.Context) {
	wh, ok := a.store.(store.WriteHealth)
	if !ok {
		return
	}
	was := wh.Unwritable()
	err := wh.ProbeWrite(ctx)
	switch {
	case err != nil && was == nil:
		a.log.Error("the store refuses writes: this node answers not ready until it writes again", "err", err)
	case err != nil:
		a.log.Debug("the store still refuses writes", "err", err)
	case was != nil:
		a.log.Info("the store writes again: this node is ready", "after", was)
	}
}
