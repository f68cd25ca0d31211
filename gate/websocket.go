package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/verifier"
)

// WebSockets. A handshake is a GET, which http.CrossOriginProtection lets
// through, and browsers attach cookies to it from any page of the same
// site: a sibling origin (another port, evil.example.com beside
// app.example.com) could talk to the app as the user. The gate refuses an
// upgrade request whose Origin is neither the request's own host nor
// listed (originCheck). Once switched, the connection is a tunnel the gate
// no longer sees requests on: tunnels ties it to the token that opened it
// and ends it when that token is revoked or expires.

// originCheck decides whether a protocol switch may come from a page of
// its Origin.
type originCheck struct {
	trusted map[string]bool // scheme://host[:port], lower case
	proxies []netip.Prefix  // whose X-Forwarded-Host names the request's host
}

func newOriginCheck(proxies []netip.Prefix, origins ...string) (originCheck, error) {
	o := originCheck{trusted: map[string]bool{}, proxies: proxies}
	for _, origin := range origins {
		origin = strings.TrimSuffix(origin, "/")
		if origin == "" {
			continue
		}
		if err := checkOrigin(origin); err != nil {
			return o, err
		}
		o.trusted[strings.ToLower(origin)] = true
	}
	return o, nil
}

// allowed reports whether r may switch protocols: when it is no upgrade,
// carries no Origin (no browser page sent it: browsers always send one on a
// WebSocket handshake), names a trusted origin, or names the host the
// request was sent to (by a trusted proxy's X-Forwarded-Host, when it came
// through one). The scheme is not compared: behind a TLS terminator
// the gate cannot know it, and one host and port serve one scheme.
func (o originCheck) allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if !isUpgrade(r) || (origin == "" && len(r.Header.Values("Origin")) == 0) {
		return true
	}
	if o.trusted[strings.ToLower(origin)] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" && httpguard.FromTrustedProxy(r, o.proxies) {
		host = fh
	}
	return strings.EqualFold(u.Host, host)
}

// refuseUpgradeOrigin answers a cross-origin protocol switch.
func refuseUpgradeOrigin(log *slog.Logger, w http.ResponseWriter, r *http.Request) {
	log.InfoContext(r.Context(), "gate: cross-origin WebSocket handshake refused (list the page's origin in --websocket-origins if it is yours)",
		"path", r.URL.Path, "origin", r.Header.Get("Origin"), "host", r.Host)
	httperr.Write(w, http.StatusForbidden, "forbidden", "cross-origin WebSocket handshake refused")
}

// tunnelRecheck is how often live tunnels are checked for expiry, on the
// gate's clock; a revocation wakes the check at once.
const tunnelRecheck = time.Second

// Causes a tunnel ends with (the context's cause, and the log's reason).
var (
	errTunnelRevoked = errors.New("gate: the WebSocket's token was revoked")
	errTunnelExpired = errors.New("gate: the WebSocket's token expired without a refresh")
)

// tunnels are the upgraded connections in flight, each tied to the access
// token that opened it. While any is open one goroutine re-verifies them
// all whenever the verifier applies a revocation (verifier.WaitApplied),
// and at least every tunnelRecheck for expiry, and cancels the request
// context of each whose token is refused or past its exp: the reverse
// proxy then closes both connections. Tunnels are few compared with
// requests, and a check is a cached verification, so this costs
// microseconds per tunnel per revocation. Safe for concurrent use.
type tunnels struct {
	v     *verifier.Verifier
	clock clock.Clock
	log   *slog.Logger

	mu       sync.Mutex
	live     map[*tunnel]struct{}
	watching bool
}

type tunnel struct {
	raw    string // the access token; replaced when the session refreshes at this gate
	sid    string
	exp    time.Time
	cancel context.CancelCauseFunc
}

func newTunnels(v *verifier.Verifier, clk clock.Clock, log *slog.Logger) *tunnels {
	return &tunnels{v: v, clock: clk, log: log, live: map[*tunnel]struct{}{}}
}

// hold ties the protocol switch r, authenticated by raw (claims c), to its
// token: it returns r with a context that ends when the token is revoked
// or expires, and a func to call when the tunnel is over.
func (ts *tunnels) hold(r *http.Request, raw string, c *verifier.Claims) (*http.Request, func()) {
	ctx, cancel := context.WithCancelCause(r.Context())
	tn := &tunnel{raw: raw, sid: c.SessionID(), exp: c.Expiry(), cancel: cancel}
	ts.mu.Lock()
	ts.live[tn] = struct{}{}
	if !ts.watching {
		ts.watching = true
		go ts.watch()
	}
	ts.mu.Unlock()
	return r.WithContext(ctx), func() {
		ts.mu.Lock()
		delete(ts.live, tn)
		ts.mu.Unlock()
		cancel(nil)
	}
}

// renew moves the tunnels of session sid to a token this gate just got by
// refreshing it, so that a page whose session lives on keeps its
// WebSocket past the old token's exp.
func (ts *tunnels) renew(sid, raw string, exp time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for tn := range ts.live {
		if tn.sid == sid && sid != "" {
			tn.raw, tn.exp = raw, exp
		}
	}
}

// watch checks the tunnels until none is left.
func (ts *tunnels) watch() {
	pos := ts.v.State().Position
	for ts.check() {
		ctx, cancel := context.WithCancel(context.Background())
		recheck := ts.clock.AfterFunc(tunnelRecheck, cancel)
		if ts.v.WaitApplied(ctx, pos+1) != nil || ts.v.State().Position <= pos {
			<-ctx.Done() // no feed, or closed: wait for the expiry check
		}
		recheck.Stop()
		cancel()
		pos = ts.v.State().Position
	}
}

// check ends the tunnels whose token is refused or expired, and reports
// whether any is left (if not, the watcher stops: ts.watching is cleared
// under the same lock, so hold starts a new one).
func (ts *tunnels) check() bool {
	ts.mu.Lock()
	list := make([]*tunnel, 0, len(ts.live))
	held := make([]tunnel, 0, len(ts.live)) // raw and exp as of now: renew may change them
	for tn := range ts.live {
		list, held = append(list, tn), append(held, *tn)
	}
	if len(list) == 0 {
		ts.watching = false
	}
	ts.mu.Unlock()
	now := ts.clock.Now()
	for i, tn := range list {
		if cause := ts.verdict(held[i].raw, held[i].exp, now); cause != nil {
			ts.log.Info("gate: WebSocket closed", "reason", cause.Error(), "sid", tn.sid)
			tn.cancel(cause)
		}
	}
	return len(list) > 0
}

// verdict is nil for a token that may keep its tunnel open. A verifier
// that cannot check revocations (stale) keeps tunnels open until the
// token's exp: revocations made meanwhile end them once the verifier
// catches up.
func (ts *tunnels) verdict(raw string, exp, now time.Time) error {
	c, err := ts.v.Verify(context.Background(), raw)
	switch {
	case isStale(err):
		if !now.Before(exp) {
			return errTunnelExpired
		}
		return nil
	case errors.Is(err, verifier.ErrExpired):
		return errTunnelExpired
	case errors.Is(err, verifier.ErrDPoP):
		// A DPoP-bound token, whose proof was checked at the handshake:
		// Verify refuses it only for coming without one, after it has
		// found it unrevoked and unexpired.
		if !now.Before(exp) {
			return errTunnelExpired
		}
		return nil
	case err != nil:
		return fmt.Errorf("%w (%s)", errTunnelRevoked, verifier.Reason(err))
	case !now.Before(c.Expiry()):
		return errTunnelExpired
	}
	return nil
}
