package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/store"
)

type ctxKey struct{}

// caller is the API key a request was authenticated with and what its role
// may do on the route.
type caller struct {
	key   store.APIKey
	grant grant
}

// requireKey wraps h so it runs only for an API key with access.
func (s *server) requireKey(h http.Handler, who access) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r = s.admit(w, r, who); r != nil {
			h.ServeHTTP(w, r)
		}
	})
}

// admit authenticates r's key and returns r carrying its caller, or
// answers the refusal and returns nil. It is requireKey's work in a
// function of its own, so that the feed streams, which run below
// requireKey's frame for hours, keep none of it on their stacks.
func (s *server) admit(w http.ResponseWriter, r *http.Request, who access) *http.Request {
	c, err := s.authenticate(r, who)
	if err != nil {
		writeError(w, r, s.log, err)
		return nil
	}
	// Lets a verifier warn when it holds more than a feed key.
	w.Header().Set(feed.KeyRoleHeader, c.key.Role)
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
}

// authenticate is the one check of an API key, whichever route asks for
// it: a bearer key, live, within the per-key limit (unless the route is
// noKeyLimit), of a role with access. Every refusal carries the RFC 6750
// challenge; failed guesses count against the client's address.
func (s *server) authenticate(r *http.Request, who access) (caller, error) {
	secret, ok := httpguard.Bearer(r)
	if !ok {
		return caller{}, &apiError{Status: http.StatusUnauthorized, Code: httperr.InvalidRequest,
			Description: "an API key is required: Authorization: Bearer <key>", Challenge: true, NoCredential: true}
	}
	key, err := s.a.Authenticate(r.Context(), secret)
	if errors.Is(err, authority.ErrUnauthorized) {
		// Past the limit the answer is 429 (logged at Debug, so guessing
		// cannot flood the logs). A valid key is never refused by this,
		// even from an address someone else is guessing from.
		if d := s.authFailures.wait(httpguard.AddrKey(clientAddr(r, s.trusted)), s.now()); d > 0 {
			err = tooMany(d, "after failed API key attempts from this address")
		}
	}
	if err != nil {
		return caller{}, err
	}
	if d := s.keyWait(r, key.ID); d > 0 {
		return caller{}, tooMany(d, "for this API key")
	}
	g := who[key.Role]
	if g == 0 {
		return caller{}, &apiError{Status: http.StatusForbidden, Code: httperr.InsufficientScope,
			Description: "this API key may not call this endpoint", Challenge: true}
	}
	return caller{key: key, grant: g}, nil
}

// keyWait applies the per-key limit, except to noKeyLimit routes.
func (s *server) keyWait(r *http.Request, keyID string) time.Duration {
	if s.policy[r.Pattern].flags&noKeyLimit != 0 {
		return 0
	}
	return s.perKey.wait(s.limitKey(r, keyID), s.now())
}

// callerOf returns the caller requireKey admitted (the zero caller on a
// public route).
func callerOf(r *http.Request) caller { return callerIn(r.Context()) }

// callerIn is callerOf for a request's context.
func callerIn(ctx context.Context) caller {
	c, _ := ctx.Value(ctxKey{}).(caller)
	return c
}

// actor names the caller in the audit trail: the API key's name, never its
// secret.
func actor(r *http.Request, reason string) store.Actor {
	return store.Actor{By: "api-key:" + callerOf(r).key.Name, Reason: reason, Entity: "admin"}
}
