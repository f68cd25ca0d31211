package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/requestid"
	"github.com/tegata-dev/tegata/internal/ssf"
)

// Config wires the HTTP API.
type Config struct {
	// Feed serves GET /v1/feed (the feed hub). Nil leaves the route out.
	Feed http.Handler
	// Position serves POST /v1/feed/position, where verifiers report the
	// position they applied (the hub's ServePosition). Nil leaves it out.
	Position http.Handler
	// Reports serves POST /v1/feed/reports, a verifier's stream of
	// position reports (the hub's ServeReports). Nil leaves it out.
	Reports http.Handler
	// FeedReady reports whether the feed serves (the hub's Ready); /readyz
	// answers 503 with its error until it does. Nil: not consulted.
	FeedReady func() error
	// Metrics serves GET /metrics. Nil leaves the route out.
	Metrics http.Handler
	// StatusLists serves the Token Status Lists. Nil leaves the routes out
	// (tegata serve --status-list=false).
	StatusLists StatusLists
	// SSF is the Shared Signals transmitter. Nil leaves its routes out.
	SSF *ssf.Transmitter
	// Instruments counts and times every request (see NewMetrics). Nil:
	// requests are not measured.
	Instruments *Metrics
	Logger      *slog.Logger
	// Limits caps request rates; the zero value disables every limit.
	// tegata serve uses DefaultLimits.
	Limits Limits
	// Clock times rate limits and feed streams (their key checks and
	// maximum age). Nil: the wall clock.
	Clock clock.Clock
	// BodyTimeout bounds how long a request body may take to arrive (see
	// httpguard.BodyDeadline). Zero: httpguard.BodyTimeout.
	BodyTimeout time.Duration
	// FeedMaxAge ends every feed stream after about this long (jittered
	// down by up to a quarter); the verifier reconnects where it was, and
	// its API key is checked again. Zero: DefaultFeedMaxAge; negative: no
	// maximum.
	FeedMaxAge time.Duration
	// InForce answers ?confirm= on revocations and GET /v1/verifiers. Nil:
	// neither is offered.
	InForce InForce
	// MaxConfirm caps ?confirm=. Default DefaultMaxConfirm.
	MaxConfirm time.Duration
	// Epoch is the cluster's epoch, sent with the key set (header
	// Tegata-Epoch) so that verifiers tell which log the keys go with.
	Epoch string
}

type server struct {
	a          *authority.Authority
	log        *slog.Logger
	now        func() time.Time
	clock      clock.Clock // now's clock, with timers
	trusted    []netip.Prefix
	perKey     *limiter
	perSubject *limiter
	perClient  *limiter
	// statusLists is nil when status lists are off.
	statusLists StatusLists
	// authFailures counts failed API key attempts per client address.
	authFailures *limiter
	streams      *streams
	inForce      InForce
	maxConfirm   time.Duration
	epoch        string
	feedReady    func() error
	// policy is every route's, by pattern (routes.go); read-only once New
	// returns.
	policy map[string]route
}

// New returns the authority's HTTP handler.
func New(a *authority.Authority, cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = httpguard.BodyTimeout
	}
	switch {
	case cfg.FeedMaxAge == 0:
		cfg.FeedMaxAge = DefaultFeedMaxAge
	case cfg.FeedMaxAge < 0:
		cfg.FeedMaxAge = 0
	}
	s := &server{a: a, log: slog.New(requestid.LogHandler(cfg.Logger.Handler())), now: cfg.Clock.Now, clock: cfg.Clock, trusted: cfg.Limits.TrustedProxies,
		streams: newStreams(cfg.Limits, cfg.FeedMaxAge, cfg.Clock, func(ctx context.Context, secret string) error {
			_, err := a.Authenticate(ctx, secret)
			return err
		}),
		perKey: newLimiter(cfg.Limits.PerKey), perSubject: newLimiter(cfg.Limits.PerSubject),
		perClient: newLimiter(cfg.Limits.PerClient), authFailures: newLimiter(cfg.Limits.AuthFailures),
		statusLists: cfg.StatusLists, inForce: cfg.InForce, maxConfirm: cfg.MaxConfirm, epoch: cfg.Epoch,
		feedReady: cfg.FeedReady}
	if s.maxConfirm <= 0 {
		s.maxConfirm = DefaultMaxConfirm
	}
	mux := http.NewServeMux()
	s.policy = map[string]route{}
	for _, rt := range s.routes(cfg) {
		s.handle(mux, rt)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, &apiError{Status: http.StatusNotFound, Code: "not_found", Description: "no such endpoint for this method"})
	})
	// A client trickling the body of a request, to a route that reads it
	// or not, loses the connection after BodyTimeout. Every answer
	// carries X-Request-Id, and every log line about the request its
	// request_id.
	return requestid.Middleware(httpguard.BodyDeadline(cfg.Instruments.instrument(mux), cfg.BodyTimeout))
}

// wrap adapts a handler that returns an error to the single error path.
func (s *server) wrap(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	}
}

// limitClient applies the per-client-address limit to a public endpoint.
func (s *server) limitClient(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := s.perClient.wait(s.limitKey(r, httpguard.AddrKey(clientAddr(r, s.trusted))), s.now()); d > 0 {
			writeError(w, r, s.log, tooMany(d, "from this address"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// keyOrClient serves h to a request with an Authorization header only if
// it is an API key with access (limited per key), and to any other
// request limited per client address.
func (s *server) keyOrClient(h http.Handler, who access) http.Handler {
	keyed, public := s.requireKey(h, who), s.limitClient(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Authorization"]; ok {
			keyed.ServeHTTP(w, r)
			return
		}
		public.ServeHTTP(w, r)
	})
}

// allowSubject applies the per-subject limit. A subject too long to be
// valid takes no bucket (the authority refuses it): buckets are kept by
// subject, and one per megabyte-long path would let a caller fill memory.
func (s *server) allowSubject(r *http.Request, subject string) error {
	if len(subject) > authority.MaxSubjectLen {
		return nil
	}
	if d := s.perSubject.wait(s.limitKey(r, subject), s.now()); d > 0 {
		return tooMany(d, "for this subject")
	}
	return nil
}

// limitKey names the rate-limit bucket of id (an API key, subject or client
// address) for r. Revocations (the routes marked revokes) have buckets of
// their own, apart from every other call's: an app signing a user in
// dozens of times a second, or refreshing from behind one address, must
// never make an operator's "sign out everywhere" or a client's sign-out
// wait.
func (s *server) limitKey(r *http.Request, id string) string {
	if s.policy[r.Pattern].flags&revokes != 0 {
		return "revoke\x00" + id
	}
	return id
}
