package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/store"
)

type ctxKey struct{}

// requireKey wraps h so it runs only for an API key holding one of roles.
func (s *server) requireKey(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secret, ok := bearer(r)
		if !ok {
			writeError(w, r, s.log, &apiError{Status: http.StatusUnauthorized, Code: httperr.InvalidRequest,
				Description: "an API key is required: Authorization: Bearer <key>", Challenge: true, NoCredential: true})
			return
		}
		key, err := s.a.Authenticate(r.Context(), secret)
		if errors.Is(err, authority.ErrUnauthorized) {
			// Failed guesses count against the client's address; past the
			// limit the answer is 429 (logged at Debug, so guessing cannot
			// flood the logs). A valid key is never refused by this, even
			// from an address someone else is guessing from.
			if d := s.authFailures.wait(httpguard.AddrKey(clientAddr(r, s.trusted)), s.now()); d > 0 {
				err = tooMany(d, "after failed API key attempts from this address")
			}
		}
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if d := s.keyWait(r, key.ID); d > 0 {
			writeError(w, r, s.log, tooMany(d, "for this API key"))
			return
		}
		if !hasRole(key, roles) {
			writeError(w, r, s.log, &apiError{Status: http.StatusForbidden, Code: httperr.InsufficientScope,
				Description: "this API key may not call this endpoint", Challenge: true})
			return
		}
		// Lets a verifier warn when it holds more than a feed key.
		w.Header().Set(feed.KeyRoleHeader, key.Role)
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, key)))
	}
}

// keyWait applies the per-key limit, except to the routes in noKeyLimit.
func (s *server) keyWait(r *http.Request, keyID string) time.Duration {
	if noKeyLimit[r.Pattern] {
		return 0
	}
	return s.perKey.wait(limitKey(r, keyID), s.now())
}

func hasRole(k store.APIKey, roles []string) bool {
	for _, r := range roles {
		if k.Role == r {
			return true
		}
	}
	return false
}

// actor names the caller in the audit trail: the API key's name, never its
// secret.
func actor(r *http.Request, reason string) store.Actor {
	k, _ := r.Context().Value(ctxKey{}).(store.APIKey)
	return store.Actor{By: "api-key:" + k.Name, Reason: reason, Entity: "admin"}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimLeft(tok, " ") // RFC 6750 §2.1: "Bearer" 1*SP b64token
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// noKeyLimit are the routes the per-key limit leaves alone: verifiers'
// position reports come from every verifier sharing a feed key, each
// pacing itself (at least one a second, at most one per 5 ms), and a
// refused report would make a verifier fail closed.
var noKeyLimit = map[string]bool{"POST /v1/feed/position": true}

// The roles each group of endpoints admits.
var (
	adminOnly = []string{authority.RoleAdmin}
	readers   = []string{authority.RoleAdmin, authority.RoleFeed, authority.RoleGate}
	// sessionKeepers create, list and revoke sessions for their users.
	sessionKeepers = []string{authority.RoleAdmin, authority.RoleGate}
	// verifierReaders may list the verifiers: operators and web gates.
	verifierReaders = []string{authority.RoleAdmin, authority.RoleGate}
)

// keyRole returns the role of the API key requireKey admitted.
func keyRole(r *http.Request) string {
	k, _ := r.Context().Value(ctxKey{}).(store.APIKey)
	return k.Role
}
