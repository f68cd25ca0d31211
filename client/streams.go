package client

import (
	"context"
	"net/url"
	"time"
)

// Shared Signals event streams (SSF 1.0), managed with an admin key.

// Delivery methods of a stream.
const (
	DeliveryPush = "urn:ietf:rfc:8935"
	DeliveryPoll = "urn:ietf:rfc:8936"
)

// NewStream is the request to create a stream.
type NewStream struct {
	// PushURL is where SETs are pushed; empty for a poll stream.
	PushURL string
	// AuthorizationHeader is sent with every push (e.g. "Bearer ...").
	AuthorizationHeader string
	// Events are the event type URIs wanted; nil for every supported one.
	Events []string
	// Audience is the aud of the stream's SETs; empty for the default (the
	// push URL, or the poll endpoint).
	Audience    string
	Description string
	// PollKey is the ID of the API key the receiver of a poll stream polls
	// with (see APIKeys): no other key may poll it, since polling
	// acknowledges, and so deletes, its events. Empty: the key that
	// creates the stream.
	PollKey string
}

// Stream is a stream's configuration and delivery state.
type Stream struct {
	ID              string         `json:"stream_id"`
	Issuer          string         `json:"iss"`
	Audience        string         `json:"aud"`
	EventsDelivered []string       `json:"events_delivered"`
	Delivery        StreamDelivery `json:"delivery"`
	Description     string         `json:"description"`
	// PollKey is the ID of the API key that may poll a poll stream.
	PollKey string      `json:"tegata_poll_key"`
	State   StreamState `json:"tegata_delivery"`
}

// StreamDelivery is how a stream's events reach the receiver.
type StreamDelivery struct {
	Method      string `json:"method"`       // DeliveryPush or DeliveryPoll
	EndpointURL string `json:"endpoint_url"` // the receiver's (push) or the poll endpoint
}

// StreamState is how far a stream's delivery got.
type StreamState struct {
	Status   string `json:"status"`   // "enabled", "paused" or "disabled"
	Position int64  `json:"position"` // revocation log seq delivered up to
	Head     int64  `json:"head"`     // the log's head: Head - Position is how far behind
	// Delivered counts the events the receiver took: accepted (push) or
	// acknowledged (poll). Lost counts the entries pruned before delivery.
	Delivered           int64      `json:"delivered"`
	Lost                int64      `json:"lost"`
	FailedAttempts      int        `json:"failed_attempts"`
	NextAttempt         *time.Time `json:"next_attempt"`
	LastError           string     `json:"last_error"`
	VerificationPending bool       `json:"verification_pending"`
}

// CreateStream creates a push stream (PushURL set) or a poll stream (POST
// /ssf/streams, admin key).
func (c *Client) CreateStream(ctx context.Context, s NewStream) (Stream, error) {
	body := map[string]any{}
	if s.PushURL != "" {
		d := map[string]string{"method": DeliveryPush, "endpoint_url": s.PushURL}
		if s.AuthorizationHeader != "" {
			d["authorization_header"] = s.AuthorizationHeader
		}
		body["delivery"] = d
	} else {
		body["delivery"] = map[string]string{"method": DeliveryPoll}
	}
	if s.Events != nil {
		body["events_requested"] = s.Events
	}
	if s.Audience != "" {
		body["aud"] = s.Audience
	}
	if s.Description != "" {
		body["description"] = s.Description
	}
	if s.PollKey != "" {
		body["tegata_poll_key"] = s.PollKey
	}
	var out Stream
	err := c.call(ctx, "POST", "/ssf/streams", body, &out)
	return out, err
}

// Streams lists every stream (GET /ssf/streams, admin key).
func (c *Client) Streams(ctx context.Context) ([]Stream, error) {
	var out []Stream
	err := c.call(ctx, "GET", "/ssf/streams", nil, &out)
	return out, err
}

// DeleteStream deletes a stream (DELETE /ssf/streams?stream_id=, admin
// key).
func (c *Client) DeleteStream(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/ssf/streams?stream_id="+url.QueryEscape(id), nil, nil)
}
