package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/tegata-dev/tegata/internal/ssf"
)

// Shared Signals (OpenID SSF 1.0): the transmitter configuration, stream
// management with an admin API key, and poll delivery (RFC 8936) with any
// reader key. Refusals keep tegata's error body; the status codes are the
// ones SSF prescribes.

// ssfRoutes are the transmitter's routes: its configuration (public),
// stream management (admin) and poll delivery (see ssfPoll).
func (s *server) ssfRoutes(t *ssf.Transmitter) []route {
	h := func(f func(http.ResponseWriter, *http.Request, *ssf.Transmitter) error) http.Handler {
		return s.wrap(func(w http.ResponseWriter, r *http.Request) error { return ssfError(f(w, r, t)) })
	}
	update := func(replace bool) func(*ssf.Transmitter, context.Context, ssf.StreamRequest) (ssf.StreamConfig, error) {
		return func(t *ssf.Transmitter, ctx context.Context, req ssf.StreamRequest) (ssf.StreamConfig, error) {
			return t.Update(ctx, req, replace)
		}
	}
	return []route{
		{"GET /.well-known/ssf-configuration", h(ssfMetadata), nil, 0},
		{"POST /ssf/streams", h(s.streamBody(http.StatusCreated, true, (*ssf.Transmitter).Create)), adminOnly, 0},
		{"GET /ssf/streams", h(ssfRead), adminOnly, 0},
		{"PATCH /ssf/streams", h(s.streamBody(http.StatusOK, false, update(false))), adminOnly, 0},
		{"PUT /ssf/streams", h(s.streamBody(http.StatusOK, false, update(true))), adminOnly, 0},
		{"DELETE /ssf/streams", h(ssfDelete), adminOnly, 0},
		{"GET /ssf/status", h(ssfStatus), adminOnly, 0},
		{"POST /ssf/status", h(ssfBody(http.StatusOK, true, (*ssf.Transmitter).SetStatus)), adminOnly, 0},
		{"POST /ssf/verify", h(ssfVerify), adminOnly, 0},
		// Any role reaches the route; Poll admits only the stream's own
		// poll key (ssf.Poller).
		{"POST /ssf/poll/{id}", h(ssfPoll), readers, 0},
	}
}

// ssfError turns the transmitter's refusals into the API's error shape.
func ssfError(err error) error {
	var e *ssf.Error
	if errors.As(err, &e) {
		return &apiError{Status: e.Status, Code: e.Code, Description: e.Description}
	}
	return err
}

func ssfMetadata(w http.ResponseWriter, _ *http.Request, t *ssf.Transmitter) error {
	writeJSON(w, http.StatusOK, t.Metadata())
	return nil
}

// ssfBody serves a call that takes a JSON body (required or not) and
// answers with JSON and status.
func ssfBody[Req, Resp any](status int, required bool, call func(*ssf.Transmitter, context.Context, Req) (Resp, error)) func(http.ResponseWriter, *http.Request, *ssf.Transmitter) error {
	return func(w http.ResponseWriter, r *http.Request, t *ssf.Transmitter) error {
		var req Req
		if err := decodeJSON(w, r, &req, required); err != nil {
			return err
		}
		res, err := call(t, r.Context(), req)
		if err != nil {
			return err
		}
		writeJSON(w, status, res)
		return nil
	}
}

// streamBody is ssfBody for a stream request: creating (a body is then
// optional) or updating (required). It checks the poll key the request
// names; a new stream that names none is polled with the creating key.
func (s *server) streamBody(status int, creating bool, call func(*ssf.Transmitter, context.Context, ssf.StreamRequest) (ssf.StreamConfig, error)) func(http.ResponseWriter, *http.Request, *ssf.Transmitter) error {
	return ssfBody(status, !creating, func(t *ssf.Transmitter, ctx context.Context, req ssf.StreamRequest) (ssf.StreamConfig, error) {
		switch {
		case req.TegataPollKey != nil:
			if err := s.liveKey(ctx, *req.TegataPollKey); err != nil {
				return ssf.StreamConfig{}, err
			}
		case creating:
			id := callerIn(ctx).key.ID
			req.TegataPollKey = &id
		}
		return call(t, ctx, req)
	})
}

// liveKey refuses an API key ID that names no live key.
func (s *server) liveKey(ctx context.Context, id string) error {
	keys, err := s.a.APIKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.ID == id {
			return nil
		}
	}
	return badRequest("tegata_poll_key must be the id of a live API key (tegata apikeys list)", nil)
}

// ssfRead returns one stream (?stream_id=) or the list of all.
func ssfRead(w http.ResponseWriter, r *http.Request, t *ssf.Transmitter) error {
	if id := r.URL.Query().Get("stream_id"); id != "" {
		c, err := t.Get(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, c)
		return nil
	}
	list, err := t.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func ssfDelete(w http.ResponseWriter, r *http.Request, t *ssf.Transmitter) error {
	if err := t.Delete(r.Context(), r.URL.Query().Get("stream_id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

func ssfStatus(w http.ResponseWriter, r *http.Request, t *ssf.Transmitter) error {
	b, err := t.Status(r.Context(), r.URL.Query().Get("stream_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

func ssfVerify(w http.ResponseWriter, r *http.Request, t *ssf.Transmitter) error {
	var req ssf.VerifyRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if err := t.Verify(r.Context(), req); err != nil {
		return err
	}
	noContent(w)
	return nil
}

func ssfPoll(w http.ResponseWriter, r *http.Request, t *ssf.Transmitter) error {
	var req ssf.PollRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	p := ssf.Poller{KeyID: callerOf(r).key.ID}
	res, err := t.Poll(r.Context(), r.PathValue("id"), p, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func noContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
