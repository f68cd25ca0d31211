package statuslist

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// Source is what a Publisher reads: the revocation log with each entry's
// detail (the status list entries it made INVALID) and the lists.
type Source interface {
	Head(ctx context.Context) (int64, error)
	store.DetailedLog
	StatusLists(ctx context.Context) ([]store.StatusList, error)
}

// Signer signs a JWT other than an access token (here typ
// statuslist+jwt) with the key that signs access tokens now, so that
// Relying Parties verify both with the same key set (jws.SignJWT).
type Signer interface {
	SignJWT(typ string, payload []byte) (string, error)
}

// Config configures a Publisher.
type Config struct {
	// Issuer is the authority's issuer; list URIs are <Issuer>/v1/statuslists/<id>.
	Issuer string
	// TTL is the ttl claim, and exp - iat. Required.
	TTL time.Duration
	// Hold is how long an entry's slots stay INVALID past the entry's
	// ExpiresAt, for Relying Parties that accept tokens a little past their
	// exp (their clock skew). The authority must not give such a slot to a
	// new session before then (authority.StatusListConfig.Hold).
	Hold time.Duration
	// Now is the clock. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// ErrNoList: no status list has that id.
var ErrNoList = errors.New("statuslist: no such list")

// Publisher serves Status List Tokens built from the revocation log alone:
// an entry's recorded slots are INVALID from the entry's append until its
// ExpiresAt (after which no token carrying them can still be valid) plus
// Config.Hold (after which no Relying Party within that clock skew of the
// tokens' exp accepts one either).
//
// Every Token call first catches up with the log to a head read after the
// call began, so a list fetched after a revocation committed shows it, on
// any node. Calls arriving together share one such read, so a burst of
// fetches costs one small query, not one each; building a list costs work
// proportional to the revocations applied since, never a scan of sessions.
type Publisher struct {
	src    Source
	signer Signer
	cfg    Config

	syncs syncGroup

	mu       sync.Mutex
	applied  int64 // log seq applied
	lists    map[int64]*published
	invalid  map[store.SlotPos]int // live entries covering each slot
	expiring expiryHeap
}

// published is one list's state on this node.
type published struct {
	size    int64
	list    *List // nil until first needed
	version uint64
	lst     string
	lstOf   uint64 // version lst encodes
	tok     string
	tokOf   uint64 // version tok encodes
	tokIat  time.Time
}

// NewPublisher returns a Publisher; it reads nothing until the first call.
func NewPublisher(src Source, signer Signer, cfg Config) *Publisher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Publisher{src: src, signer: signer, cfg: cfg,
		lists: map[int64]*published{}, invalid: map[store.SlotPos]int{}}
	p.syncs.fn = p.catchUp
	return p
}

// URI is the uri of list id.
func (p *Publisher) URI(id int64) string {
	return strings.TrimSuffix(p.cfg.Issuer, "/") + "/v1/statuslists/" + strconv.FormatInt(id, 10)
}

// TTL is the lists' ttl.
func (p *Publisher) TTL() time.Duration { return p.cfg.TTL }

// Token returns the current Status List Token of list id and its expiry.
// ErrNoList if there is no such list.
func (p *Publisher) Token(ctx context.Context, id int64) (string, time.Time, error) {
	if err := p.syncs.do(ctx); err != nil {
		return "", time.Time{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pl, err := p.list(ctx, id)
	if err != nil {
		return "", time.Time{}, err
	}
	now := p.cfg.Now()
	p.expire(now)
	iat := now.Truncate(time.Second)
	if pl.tok != "" && pl.tokOf == pl.version && pl.tokIat.Equal(iat) {
		return pl.tok, iat.Add(p.cfg.TTL), nil
	}
	if pl.lstOf != pl.version || pl.lst == "" {
		pl.lst, pl.lstOf = p.bits(pl).Encode(), pl.version
	}
	var tok string
	c, err := newTokenClaims(p.cfg.Issuer, p.URI(id), 1, pl.lst, iat, p.cfg.TTL)
	if err == nil {
		tok, err = c.sign(p.signer)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("statuslist: sign list %d: %w", id, err)
	}
	pl.tok, pl.tokOf, pl.tokIat = tok, pl.version, iat
	return tok, iat.Add(p.cfg.TTL), nil
}

// URIs lists the URIs of every list (the Status List Aggregation).
func (p *Publisher) URIs(ctx context.Context) ([]string, error) {
	lists, err := p.src.StatusLists(ctx)
	if err != nil {
		return nil, fmt.Errorf("statuslist: lists: %w", err)
	}
	out := make([]string, 0, len(lists))
	for _, l := range lists {
		out = append(out, p.URI(l.ID))
	}
	return out, nil
}

// list returns list id, reading the lists again if it is not known yet
// (another node may have added it). p.mu is held.
func (p *Publisher) list(ctx context.Context, id int64) (*published, error) {
	if pl, ok := p.lists[id]; ok {
		return pl, nil
	}
	lists, err := p.src.StatusLists(ctx)
	if err != nil {
		return nil, fmt.Errorf("statuslist: lists: %w", err)
	}
	for _, l := range lists {
		if _, ok := p.lists[l.ID]; !ok {
			p.lists[l.ID] = &published{size: l.Size}
		}
	}
	if pl, ok := p.lists[id]; ok {
		return pl, nil
	}
	return nil, fmt.Errorf("%w: %d", ErrNoList, id)
}

// bits returns the list's bit array, building it from the slots covered
// now on first use. p.mu is held.
func (p *Publisher) bits(pl *published) *List {
	if pl.list != nil {
		return pl.list
	}
	l, err := New(1, int(pl.size))
	if err != nil {
		panic(err) // sizes are validated when lists are added
	}
	pl.list = l
	for pos := range p.invalid {
		if p.lists[pos.List] == pl {
			_ = l.Set(int(pos.Index), Invalid)
		}
	}
	return l
}

// catchUp applies log entries up to a head read now.
func (p *Publisher) catchUp(ctx context.Context) error {
	head, err := p.src.Head(ctx)
	if err != nil {
		return fmt.Errorf("statuslist: log head: %w", err)
	}
	for {
		p.mu.Lock()
		after := p.applied
		p.mu.Unlock()
		if after >= head {
			return nil
		}
		es, err := p.src.DetailedEntriesAfter(ctx, after, 1000)
		if err != nil {
			return fmt.Errorf("statuslist: read log: %w", err)
		}
		if len(es) == 0 {
			return nil
		}
		p.mu.Lock()
		p.apply(ctx, es)
		p.mu.Unlock()
	}
}

// apply marks the slots of entries live or within their hold INVALID. p.mu
// is held.
func (p *Publisher) apply(ctx context.Context, es []store.DetailedEntry) {
	now := p.cfg.Now()
	for _, e := range es {
		p.applied = e.Seq
		until := e.ExpiresAt.Add(p.cfg.Hold)
		if !until.After(now) {
			continue
		}
		for _, pos := range e.Detail.Slots {
			p.invalid[pos]++
			heap.Push(&p.expiring, expiry{at: until, pos: pos})
			p.mark(ctx, pos, Invalid)
		}
	}
}

// expire clears the slots of entries that have expired. p.mu is held.
func (p *Publisher) expire(now time.Time) {
	for len(p.expiring) > 0 && !p.expiring[0].at.After(now) {
		x := heap.Pop(&p.expiring).(expiry)
		if p.invalid[x.pos]--; p.invalid[x.pos] > 0 {
			continue
		}
		delete(p.invalid, x.pos)
		p.mark(context.Background(), x.pos, Valid)
	}
}

// mark sets a slot's bit if its list is built, and bumps the list's
// version either way. p.mu is held.
func (p *Publisher) mark(ctx context.Context, pos store.SlotPos, status byte) {
	pl, err := p.list(ctx, pos.List)
	if err != nil {
		p.cfg.Logger.Warn("status list entry of an unknown list", "list", pos.List, "err", err)
		return
	}
	pl.version++
	if pl.list != nil {
		if err := pl.list.Set(int(pos.Index), status); err != nil {
			p.cfg.Logger.Error("status list entry out of range", "list", pos.List, "idx", pos.Index, "err", err)
		}
	}
}

type expiry struct {
	at  time.Time
	pos store.SlotPos
}

// expiryHeap orders covered slots by when their entry expires.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
