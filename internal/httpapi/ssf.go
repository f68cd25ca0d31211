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

func (s *server) routeSSF(mux *http.ServeMux, t *ssf.Transmitter) {
	h := func(f func(http.ResponseWriter, *http.Request, *ssf.Transmitter) error) func(http.ResponseWriter, *http.Request) error {
		return func(w http.ResponseWriter, r *http.Request) error { return ssfError(f(w, r, t)) }
	}
	mux.HandleFunc("GET /.well-known/ssf-configuration", s.wrap(h(ssfMetadata)))
	admin := func(pattern string, f func(http.ResponseWriter, *http.Request, *ssf.Transmitter) error) {
		mux.HandleFunc(pattern, s.requireKey(s.wrap(h(f)), adminOnly...))
	}
	admin("POST /ssf/streams", ssfBody(http.StatusCreated, false, (*ssf.Transmitter).Create))
	admin("GET /ssf/streams", ssfRead)
	admin("PATCH /ssf/streams", ssfBody(http.StatusOK, true, func(t *ssf.Transmitter, ctx context.Context, req ssf.StreamRequest) (ssf.StreamConfig, error) {
		return t.Update(ctx, req, false)
	}))
	admin("PUT /ssf/streams", ssfBody(http.StatusOK, true, func(t *ssf.Transmitter, ctx context.Context, req ssf.StreamRequest) (ssf.StreamConfig, error) {
		return t.Update(ctx, req, true)
	}))
	admin("DELETE /ssf/streams", ssfDelete)
	admin("GET /ssf/status", ssfStatus)
	admin("POST /ssf/status", ssfBody(http.StatusOK, true, (*ssf.Transmitter).SetStatus))
	admin("POST /ssf/verify", ssfVerify)
	mux.HandleFunc("POST /ssf/poll/{id}", s.requireKey(s.wrap(h(ssfPoll)), readers...))
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
	res, err := t.Poll(r.Context(), r.PathValue("id"), req)
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
