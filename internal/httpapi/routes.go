package httpapi

import (
	"net/http"

	"github.com/tegata-dev/tegata/internal/authority"
)

// This file is the API's policy in one place: every route, who may call
// it, what each role may do there, and how its calls are rate limited.
// Handlers enforce what a grant means; they never look at roles.

// grant is what one role may do on a route.
type grant uint8

const (
	// anything the route does.
	full grant = iota + 1
	// signOutOnly: a subject revocation that signs the subject out
	// everywhere (scope sessions) and sets no claims.
	signOutOnly
	// usersOnly: anything the route does for users' sessions; the
	// operator console's sessions (authority.ConsoleSubjectPrefix) are
	// the operators' to read, an app's only to revoke.
	usersOnly
)

// access maps the roles whose API key may call a route to what each may
// do there. A nil access is a public route.
type access map[string]grant

func roles(rs ...string) access {
	a := access{}
	for _, r := range rs {
		a[r] = full
	}
	return a
}

// The roles' access, route by route (see the table in routes).
var (
	adminOnly = roles(authority.RoleAdmin)
	// readers follow the feed: every role.
	readers = roles(authority.RoleAdmin, authority.RoleFeed, authority.RoleGate)
	// sessionKeepers create, list and revoke sessions and refresh for
	// their users: operators and web gates. A gate key thereby signs in
	// any subject with any claims (docs/security.md), but reads no
	// operator console session.
	sessionKeepers = access{authority.RoleAdmin: full, authority.RoleGate: usersOnly}
	// subjectRevokers: a web gate only signs a user out everywhere (its
	// devices page); changing claims or cutting access tokens alone is
	// for operators.
	subjectRevokers = access{authority.RoleAdmin: full, authority.RoleGate: signOutOnly}
)

// routeFlag says how a route's calls are limited.
type routeFlag uint8

const (
	// revokes: the route revokes something, so its calls have rate-limit
	// buckets of their own (limitKey).
	revokes routeFlag = 1 << iota
	// perAddress: calls without an API key are limited per client
	// address.
	perAddress
	// keyOptional: the route's access applies to calls that carry an
	// Authorization header; the others are public (and perAddress).
	keyOptional
	// noKeyLimit: the per-key limit leaves the route alone. Position
	// reports come from every verifier sharing a feed key, each pacing
	// itself (at least one a second, at most one per 5 ms), and a refused
	// report would make a verifier fail closed.
	noKeyLimit
)

// route is one endpoint of the API.
type route struct {
	pattern string
	serve   http.Handler
	who     access
	flags   routeFlag
}

// routes returns the API's endpoints, with the optional ones cfg turns on.
func (s *server) routes(cfg Config) []route {
	h := func(f func(http.ResponseWriter, *http.Request) error) http.Handler { return s.wrap(f) }
	rs := []route{
		// App backends, web gates and operators (API key).
		{"POST /v1/sessions", h(s.createSession), sessionKeepers, 0},
		{"POST /v1/sessions/{sid}/revoke", h(s.revokeSession), sessionKeepers, revokes},
		// Device binding: a web gate binds at DBSC registration and reads
		// the key back to check refresh proofs; a failed proof revokes.
		{"GET /v1/sessions/{sid}", h(s.getSession), sessionKeepers, 0},
		{"POST /v1/sessions/{sid}/bind", h(s.bindSession), sessionKeepers, 0},
		{"POST /v1/sessions/{sid}/binding-failed", h(s.bindingFailed), sessionKeepers, revokes},
		{"POST /v1/subjects/{sub}/revoke", h(s.revokeSubject), subjectRevokers, revokes},
		{bulkRevocationRoute, h(s.revokeMany), adminOnly, revokes},
		{"GET /v1/subjects/{sub}/sessions", h(s.listSessions), sessionKeepers, 0},
		{"POST /v1/introspect", h(s.introspect), readers, 0},
		{"GET /v1/keys", h(s.listKeys), adminOnly, 0},
		{"POST /v1/keys/rotate", h(s.rotateKey), adminOnly, 0},
		{"GET /v1/audit", h(s.audit), adminOnly, 0},
		{"POST /v1/apikeys", h(s.createAPIKey), adminOnly, 0},
		{"GET /v1/apikeys", h(s.listAPIKeys), adminOnly, 0},
		// Revokes an API key, not a token: no revocation bucket.
		{"POST /v1/apikeys/{id}/revoke", h(s.revokeAPIKey), adminOnly, 0},
		{"GET /v1/verifiers", h(s.listVerifiers), sessionKeepers, 0},
		// Clients (no API key): the refresh token or access token is the
		// credential. A web gate refreshes for all its browsers from one
		// address: with its API key it is limited per key, not per
		// address. ?confirm= on a token revocation needs an admin key
		// (revokeToken authenticates it): it holds a request open.
		{"POST /v1/token/refresh", h(s.refresh), sessionKeepers, keyOptional | perAddress},
		{"POST /v1/token/revoke", h(s.revokeToken), nil, perAddress | revokes},
		// Public.
		{"GET /.well-known/jwks.json", h(s.jwks), nil, 0},
		{"GET /.well-known/openid-configuration", h(s.discovery), nil, 0},
		{"GET /healthz", http.HandlerFunc(healthz), nil, 0},
		{"GET /readyz", http.HandlerFunc(s.ready), nil, 0},
	}
	if cfg.Feed != nil {
		rs = append(rs, route{"GET /v1/feed", s.feed(cfg.Feed), readers, 0})
	}
	if cfg.Position != nil {
		rs = append(rs, route{"POST /v1/feed/position", cfg.Position, readers, noKeyLimit})
	}
	if cfg.Reports != nil {
		rs = append(rs, route{"POST /v1/feed/reports", s.reports(cfg.Reports), readers, noKeyLimit})
	}
	if cfg.StatusLists != nil {
		rs = append(rs, route{"GET /v1/statuslists/{id}", h(s.statusList), nil, 0},
			route{"GET /v1/statuslists", h(s.statusListAggregation), nil, 0})
	}
	if cfg.SSF != nil {
		rs = append(rs, s.ssfRoutes(cfg.SSF)...)
	}
	if cfg.Metrics != nil {
		rs = append(rs, route{"GET /metrics", cfg.Metrics, nil, 0})
	}
	return rs
}

// handle registers rt on mux, behind its access and limits.
func (s *server) handle(mux *http.ServeMux, rt route) {
	s.policy[rt.pattern] = rt
	h := rt.serve
	switch {
	case rt.who != nil && rt.flags&keyOptional != 0:
		h = s.keyOrClient(h, rt.who)
	case rt.who != nil:
		h = s.requireKey(h, rt.who)
	case rt.flags&perAddress != 0:
		h = s.limitClient(h)
	}
	mux.Handle(rt.pattern, h)
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
