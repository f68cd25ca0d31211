package authority

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/jws"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/token"
)

// Token Status Lists. Each session generation holds one entry, chosen at
// random among every list's positions (the draft's privacy advice against
// sequential indices) and allocated in the session's own transaction: an
// INSERT that skips held positions, with no counter row that every session
// creation would queue on. Lists are added when half their entries are
// held, so an allocation usually takes its first candidate.

// slotCandidates is how many positions a SlotRequest offers. With lists at
// most half held, all of them are held with probability 2^-16.
const slotCandidates = 16

// listLayout is an immutable snapshot of the lists, for drawing candidates.
type listLayout struct {
	lists []store.StatusList
	total int64 // sum of sizes
}

func (l *listLayout) newest() store.StatusList { return l.lists[len(l.lists)-1] }

// position maps n in [0, total) to a list and index.
func (l *listLayout) position(n int64) store.SlotPos {
	for _, sl := range l.lists {
		if n < sl.Size {
			return store.SlotPos{List: sl.ID, Index: n}
		}
		n -= sl.Size
	}
	panic("authority: position beyond the status lists")
}

func (a *Authority) statusListsOn() bool { return !a.cfg.StatusLists.Off() }

// loadStatusLists reads the lists, adding the first one on a fresh store.
func (a *Authority) loadStatusLists(ctx context.Context) error {
	lists, err := a.store.StatusLists(ctx)
	if err != nil {
		return fmt.Errorf("authority: status lists: %w", err)
	}
	if len(lists) == 0 {
		if _, err := a.addStatusList(ctx, 0); err != nil {
			return err
		}
		return a.loadStatusLists(ctx)
	}
	l := &listLayout{lists: lists}
	for _, sl := range lists {
		l.total += sl.Size
	}
	a.lists.Store(l)
	return nil
}

// addStatusList adds the list after the one with id after. Another node
// adding it first is not an error: either way the list exists.
func (a *Authority) addStatusList(ctx context.Context, after int64) (store.StatusList, error) {
	sl := store.StatusList{ID: after + 1, Size: int64(a.cfg.StatusLists.Size), CreatedAt: a.cfg.Clock.Now()}
	err := a.store.AddStatusList(ctx, sl)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return store.StatusList{}, fmt.Errorf("authority: add status list: %w", err)
	}
	if err == nil {
		a.log.Info("status list added", "list", sl.ID, "size", sl.Size)
	}
	return sl, nil
}

// grow adds a list after the newest one known and reloads.
func (a *Authority) grow(ctx context.Context) (store.StatusList, error) {
	sl, err := a.addStatusList(ctx, a.lists.Load().newest().ID)
	if err != nil {
		return store.StatusList{}, err
	}
	return sl, a.loadStatusLists(ctx)
}

// slotRequest draws candidates over every list, or over only one.
func (a *Authority) slotRequest(only *store.StatusList) *store.SlotRequest {
	if !a.statusListsOn() {
		return nil
	}
	l := a.lists.Load()
	req := &store.SlotRequest{Grace: a.cfg.Leeway, Candidates: make([]store.SlotPos, slotCandidates)}
	for i := range req.Candidates {
		if only != nil {
			req.Candidates[i] = store.SlotPos{List: only.ID, Index: rand.Int64N(only.Size)}
		} else {
			req.Candidates[i] = l.position(rand.Int64N(l.total))
		}
	}
	return req
}

// withSlot runs write with a SlotRequest; if every candidate was held it
// adds a list and runs it once more with candidates from that list.
func (a *Authority) withSlot(ctx context.Context, write func(*store.SlotRequest) error) error {
	err := write(a.slotRequest(nil))
	if !errors.Is(err, store.ErrNoSlot) {
		return err
	}
	sl, gerr := a.grow(ctx)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	return write(a.slotRequest(&sl))
}

// sweepSlots frees entries past their hold and the reuse delay, and adds a
// list once more than half of all entries are held.
func (a *Authority) sweepSlots(ctx context.Context, now time.Time) error {
	if _, err := a.store.FreeSlots(ctx, now.Add(-a.cfg.slotReuseDelay())); err != nil {
		return err
	}
	if err := a.loadStatusLists(ctx); err != nil {
		return err
	}
	held, err := a.store.HeldSlots(ctx)
	if err != nil {
		return err
	}
	if l := a.lists.Load(); held*2 > l.total {
		_, err = a.grow(ctx)
	}
	return err
}

// StatusListURI is the uri of list id: the access tokens' status claim and
// the Status List Token's sub.
func (a *Authority) StatusListURI(id int64) string {
	return strings.TrimSuffix(a.cfg.Issuer, "/") + "/v1/statuslists/" + strconv.FormatInt(id, 10)
}

func (a *Authority) statusRef(s store.StatusSlot) *token.StatusRef {
	if s.List == 0 {
		return nil
	}
	return &token.StatusRef{Index: s.Index, URI: a.StatusListURI(s.List)}
}

// SignJWT signs a JWT other than an access token (a Status List Token)
// with the key that signs access tokens now, so Relying Parties verify
// both with the same JWKS entry (jws.SignJWT).
func (a *Authority) SignJWT(typ string, payload []byte) (string, error) {
	key, ok := a.ring().current(a.cfg.Clock.Now())
	if !ok {
		return "", errNoSigningKey
	}
	return jws.SignJWT(jws.Key{ID: key.ID, Algorithm: key.Algorithm, Private: key.Private}, typ, payload)
}
