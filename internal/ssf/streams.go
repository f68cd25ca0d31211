package ssf

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tegata-dev/tegata/internal/store"
)

// DeliveryConfig is a stream's delivery object (SSF 1.0 §6.1). The
// authorization_header is write-only: it is stored sealed and never shown.
type DeliveryConfig struct {
	Method              string `json:"method"`
	EndpointURL         string `json:"endpoint_url,omitempty"`
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// StreamConfig is a stream's configuration as SSF 1.0 §8.1.1 shows it.
type StreamConfig struct {
	StreamID                string         `json:"stream_id"`
	Iss                     string         `json:"iss"`
	Aud                     string         `json:"aud"`
	EventsSupported         []string       `json:"events_supported"`
	EventsRequested         []string       `json:"events_requested,omitempty"`
	EventsDelivered         []string       `json:"events_delivered"`
	Delivery                DeliveryConfig `json:"delivery"`
	MinVerificationInterval int            `json:"min_verification_interval"`
	Description             string         `json:"description,omitempty"`
	// TegataDelivery is tegata's own member: where delivery stands.
	// Receivers ignore members they do not know (SSF 1.0 §4.2.3).
	TegataDelivery *DeliveryState `json:"tegata_delivery,omitempty"`
	// TegataPollKey, tegata's too, is the ID of the API key that may poll
	// a poll stream (see Poll).
	TegataPollKey string `json:"tegata_poll_key,omitempty"`
}

// DeliveryState says where a stream's delivery stands.
type DeliveryState struct {
	Status              string     `json:"status"`
	Position            int64      `json:"position"` // revocation log seq delivered up to
	Head                int64      `json:"head"`     // the log's head when read
	Delivered           int64      `json:"delivered"`
	Lost                int64      `json:"lost,omitempty"` // events pruned before delivery
	FailedAttempts      int        `json:"failed_attempts,omitempty"`
	NextAttempt         *time.Time `json:"next_attempt,omitempty"`
	LastError           string     `json:"last_error,omitempty"`
	VerificationPending bool       `json:"verification_pending,omitempty"`
}

// StreamRequest is the body of a create (POST), update (PATCH) or replace
// (PUT). Pointers tell an absent member from an empty one. Members the
// transmitter supplies may be sent back; they must then match.
type StreamRequest struct {
	StreamID        *string         `json:"stream_id"`
	Delivery        *DeliveryConfig `json:"delivery"`
	EventsRequested *[]string       `json:"events_requested"`
	Description     *string         `json:"description"`

	Iss *string `json:"iss"`
	// Aud is transmitter-supplied; on create tegata lets the operator
	// choose it (default: the push endpoint, or the poll endpoint).
	Aud                     *string   `json:"aud"`
	EventsSupported         *[]string `json:"events_supported"`
	EventsDelivered         *[]string `json:"events_delivered"`
	MinVerificationInterval *int      `json:"min_verification_interval"`
	TegataDelivery          any       `json:"tegata_delivery"` // shown by reads; ignored
	// TegataPollKey names the API key (its ID) that may poll a poll
	// stream, which must name one. The caller checks that it is a live
	// key; absent on create, the caller sets it to the creating key;
	// absent on update, it is kept (a push stream made a poll stream has
	// none to keep, so the update must name one).
	TegataPollKey *string `json:"tegata_poll_key"`
}

// Statuses of a stream (SSF 1.0 §8.1.2).
const (
	StatusEnabled  = "enabled"
	StatusPaused   = "paused"
	StatusDisabled = "disabled"
)

// StatusBody is the body and answer of the status endpoint.
type StatusBody struct {
	StreamID string `json:"stream_id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// VerifyRequest is the body of the verification endpoint.
type VerifyRequest struct {
	StreamID string `json:"stream_id"`
	State    string `json:"state"`
}

// Limits on what a request may carry.
const (
	maxURL         = 2048
	maxAuthHeader  = 4096
	maxDescription = 500
	maxEvents      = 100
	maxEventURI    = 512
	maxState       = 1024
)

// Create creates a stream whose events start with the next revocation.
func (t *Transmitter) Create(ctx context.Context, req StreamRequest) (StreamConfig, error) {
	if req.StreamID != nil {
		return StreamConfig{}, badRequest("stream_id is chosen by the transmitter")
	}
	now := t.cfg.Clock.Now()
	st := store.Stream{ID: randomID(16), Status: StatusEnabled, CreatedAt: now, UpdatedAt: now}
	if err := t.apply(&st, req, true); err != nil {
		return StreamConfig{}, err
	}
	aud, err := t.audience(st, req.Aud)
	if err != nil {
		return StreamConfig{}, err
	}
	st.Audience = aud
	if st.Cursor, err = t.st.Head(ctx); err != nil {
		return StreamConfig{}, err
	}
	if err := t.sealHeader(&st, req.Delivery); err != nil {
		return StreamConfig{}, err
	}
	// The key is made now rather than on the first event, so the receiver
	// can fetch it before any SET arrives.
	if err := t.keys.EnsureEventKey(ctx); err != nil {
		return StreamConfig{}, err
	}
	if err := t.st.AddStream(ctx, st); err != nil {
		return StreamConfig{}, err
	}
	t.cfg.Logger.Info("event stream created", "stream", st.ID, "method", st.Method, "aud", st.Audience)
	return t.config(st, nil), nil
}

// audience is the aud of a new stream.
func (t *Transmitter) audience(st store.Stream, aud *string) (string, error) {
	switch {
	case aud == nil && st.Method == MethodPush:
		return st.EndpointURL, nil
	case aud == nil:
		return t.pollEndpoint(st.ID), nil
	case *aud == "" || len(*aud) > maxURL || !plainText(*aud):
		return "", badRequest("aud must be 1-%d bytes of text", maxURL)
	}
	return *aud, nil
}

// Get returns a stream's configuration with its delivery state.
func (t *Transmitter) Get(ctx context.Context, id string) (StreamConfig, error) {
	st, err := t.stream(ctx, id)
	if err != nil {
		return StreamConfig{}, err
	}
	head, err := t.st.Head(ctx)
	if err != nil {
		return StreamConfig{}, err
	}
	return t.config(st, &head), nil
}

// List returns every stream's configuration, oldest first.
func (t *Transmitter) List(ctx context.Context) ([]StreamConfig, error) {
	streams, err := t.st.ListStreams(ctx)
	if err != nil {
		return nil, err
	}
	head, err := t.st.Head(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]StreamConfig, 0, len(streams))
	for _, st := range streams {
		out = append(out, t.config(st, &head))
	}
	return out, nil
}

// Update changes a stream's configuration: the members present (PATCH),
// or all of them, a missing one meaning none (PUT, replace).
func (t *Transmitter) Update(ctx context.Context, req StreamRequest, replace bool) (StreamConfig, error) {
	if req.StreamID == nil {
		return StreamConfig{}, badRequest("stream_id is required")
	}
	st, err := t.stream(ctx, *req.StreamID)
	if err != nil {
		return StreamConfig{}, err
	}
	if req.Aud != nil && *req.Aud != st.Audience {
		return StreamConfig{}, badRequest("aud cannot be changed")
	}
	if replace {
		st.Events, st.Description = nil, ""
		if req.Delivery == nil {
			req.Delivery = &DeliveryConfig{Method: MethodPoll}
		}
	}
	if err := t.apply(&st, req, replace); err != nil {
		return StreamConfig{}, err
	}
	if req.Delivery != nil {
		if err := t.sealHeader(&st, req.Delivery); err != nil {
			return StreamConfig{}, err
		}
	}
	st.UpdatedAt = t.cfg.Clock.Now()
	if err := t.st.UpdateStream(ctx, st, false); err != nil {
		return StreamConfig{}, t.mapErr(st.ID, err)
	}
	t.wake()
	return t.Get(ctx, st.ID)
}

// apply validates the receiver-supplied members of req into st, and checks
// that the transmitter-supplied ones match. delivery is required to be
// decided (create, replace); on update an absent member keeps its value.
func (t *Transmitter) apply(st *store.Stream, req StreamRequest, decide bool) error {
	if req.Delivery != nil || decide {
		d := req.Delivery
		if d == nil {
			d = &DeliveryConfig{Method: MethodPoll} // SSF 1.0 §8.1.1.1: no delivery means poll
		}
		url, err := t.checkDelivery(*d)
		if err != nil {
			return err
		}
		st.Method, st.EndpointURL = d.Method, url
	}
	if req.EventsRequested != nil {
		ev := *req.EventsRequested
		if len(ev) > maxEvents || slices.ContainsFunc(ev, func(e string) bool { return e == "" || len(e) > maxEventURI }) {
			return badRequest("events_requested must list at most %d event type URIs of at most %d bytes", maxEvents, maxEventURI)
		}
		st.Events = slices.Clone(ev)
	}
	if req.Description != nil {
		if len(*req.Description) > maxDescription || !plainText(*req.Description) {
			return badRequest("description must be at most %d bytes of text without control characters", maxDescription)
		}
		st.Description = *req.Description
	}
	if req.TegataPollKey != nil {
		st.PollKey = *req.TegataPollKey
	}
	if st.Method != MethodPoll {
		st.PollKey = ""
	}
	if st.Method == MethodPoll && st.PollKey == "" {
		// Polling deletes the receiver's events: exactly one key may.
		return badRequest("tegata_poll_key is required for a poll stream: the id of the API key its receiver polls with")
	}
	return t.checkSupplied(*st, req)
}

// checkSupplied refuses transmitter-supplied members that do not match.
func (t *Transmitter) checkSupplied(st store.Stream, req StreamRequest) error {
	switch {
	case req.Iss != nil && *req.Iss != t.cfg.Issuer:
		return badRequest("iss does not match the transmitter's issuer")
	case req.EventsSupported != nil && !slices.Equal(*req.EventsSupported, EventsSupported):
		return badRequest("events_supported does not match what the transmitter supports")
	case req.EventsDelivered != nil && !slices.Equal(*req.EventsDelivered, delivered(st.Events)):
		return badRequest("events_delivered does not match the events this stream delivers")
	case req.MinVerificationInterval != nil && *req.MinVerificationInterval != int(MinVerifyEvery/time.Second):
		return badRequest("min_verification_interval does not match the transmitter's")
	}
	return nil
}

// sealHeader stores the delivery's authorization header sealed.
func (t *Transmitter) sealHeader(st *store.Stream, d *DeliveryConfig) error {
	st.AuthHeader = nil
	if d == nil || d.AuthorizationHeader == "" {
		return nil
	}
	h := d.AuthorizationHeader
	if len(h) > maxAuthHeader || strings.ContainsFunc(h, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return badRequest("authorization_header must be at most %d bytes of printable ASCII", maxAuthHeader)
	}
	if st.Method != MethodPush {
		return badRequest("authorization_header applies to push delivery only")
	}
	st.AuthHeader = t.keys.SealReceiverSecret([]byte(h), st.ID)
	return nil
}

// config presents a stream; head, when known, adds the delivery state.
func (t *Transmitter) config(st store.Stream, head *int64) StreamConfig {
	c := StreamConfig{
		StreamID: st.ID, Iss: t.cfg.Issuer, Aud: st.Audience,
		EventsSupported: slices.Clone(EventsSupported), EventsRequested: st.Events,
		EventsDelivered: delivered(st.Events), Delivery: DeliveryConfig{Method: st.Method, EndpointURL: st.EndpointURL},
		MinVerificationInterval: int(MinVerifyEvery / time.Second), Description: st.Description,
		TegataPollKey: st.PollKey,
	}
	if st.Method == MethodPoll {
		c.Delivery.EndpointURL = t.pollEndpoint(st.ID)
	}
	if head != nil {
		ds := &DeliveryState{Status: st.Status, Position: st.Cursor, Head: *head, Delivered: st.Delivered,
			Lost: st.Lost, FailedAttempts: st.Attempts, LastError: st.LastError, VerificationPending: st.VerifyPending()}
		if st.Attempts > 0 {
			next := st.NextAttempt.UTC()
			ds.NextAttempt = &next
		}
		c.TegataDelivery = ds
	}
	return c
}

// Delete deletes a stream; nothing more is sent on it.
func (t *Transmitter) Delete(ctx context.Context, id string) error {
	if id == "" {
		return badRequest("stream_id is required")
	}
	if err := t.st.DeleteStream(ctx, id); err != nil {
		return t.mapErr(id, err)
	}
	t.cfg.Logger.Info("event stream deleted", "stream", id)
	return nil
}

// Status reads a stream's status.
func (t *Transmitter) Status(ctx context.Context, id string) (StatusBody, error) {
	st, err := t.stream(ctx, id)
	if err != nil {
		return StatusBody{}, err
	}
	return StatusBody{StreamID: st.ID, Status: st.Status, Reason: st.Reason}, nil
}

// SetStatus enables, pauses or disables a stream. A paused stream holds its
// events (within the log's retention); a disabled one drops them, and
// starts again from the newest revocation when enabled.
func (t *Transmitter) SetStatus(ctx context.Context, b StatusBody) (StatusBody, error) {
	if b.Status != StatusEnabled && b.Status != StatusPaused && b.Status != StatusDisabled {
		return StatusBody{}, badRequest("status must be %q, %q or %q", StatusEnabled, StatusPaused, StatusDisabled)
	}
	if len(b.Reason) > maxDescription || !plainText(b.Reason) {
		return StatusBody{}, badRequest("reason must be at most %d bytes of text without control characters", maxDescription)
	}
	st, err := t.stream(ctx, b.StreamID)
	if err != nil {
		return StatusBody{}, err
	}
	restart := st.Status == StatusDisabled && b.Status != StatusDisabled
	if restart {
		if st.Cursor, err = t.st.Head(ctx); err != nil {
			return StatusBody{}, err
		}
	}
	st.Status, st.Reason, st.UpdatedAt = b.Status, b.Reason, t.cfg.Clock.Now()
	if err := t.st.UpdateStream(ctx, st, restart); err != nil {
		return StatusBody{}, t.mapErr(st.ID, err)
	}
	t.cfg.Logger.Info("event stream status changed", "stream", st.ID, "status", st.Status)
	t.wake()
	return StatusBody{StreamID: st.ID, Status: st.Status, Reason: st.Reason}, nil
}

// Verify queues a verification event on a stream (SSF 1.0 §8.1.4.2).
func (t *Transmitter) Verify(ctx context.Context, r VerifyRequest) error {
	if r.StreamID == "" {
		return badRequest("stream_id is required")
	}
	if len(r.State) > maxState || !plainText(r.State) {
		return badRequest("state must be at most %d bytes of text without control characters", maxState)
	}
	err := t.st.RequestVerification(ctx, r.StreamID, r.State, t.cfg.Clock.Now(), MinVerifyEvery)
	if errors.Is(err, store.ErrTooSoon) {
		return &Error{Status: http.StatusTooManyRequests, Code: "too_many_requests",
			Description: "a verification was requested less than min_verification_interval ago"}
	}
	if err != nil {
		return t.mapErr(r.StreamID, err)
	}
	t.wake()
	return nil
}

func (t *Transmitter) mapErr(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound(id)
	}
	return err
}

// plainText: valid UTF-8 without control characters.
func plainText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}
