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
	ID              string   `json:"stream_id"`
	Issuer          string   `json:"iss"`
	Audience        string   `json:"aud"`
	EventsDelivered []string `json:"events_delivered"`
	Delivery        struct {
		Method      string `json:"method"`
		EndpointURL string `json:"endpoint_url"`
	} `json:"delivery"`
	Description string `json:"description"`
	// PollKey is the ID of the API key that may poll a poll stream.
	PollKey string `json:"tegata_poll_key"`
	State   struct {
		Status              string     `json:"status"`
		Position            int64      `json:"position"`
		Head                int64      `json:"head"`
		Delivered           int64      `json:"delivered"`
		Lost                int64      `json:"lost"`
		FailedAttempts      int        `json:"failed_attempts"`
		NextAttempt         *time.Time `json:"next_attempt"`
		LastError           string     `json:"last_error"`
		VerificationPending bool       `json:"verification_pending"`
	} `json:"tegata_delivery"`
}

// CreateStream creates a push stream (PushURL set) or a poll stream.
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

// Streams lists every stream.
func (c *Client) Streams(ctx context.Context) ([]Stream, error) {
	var out []Stream
	err := c.call(ctx, "GET", "/ssf/streams", nil, &out)
	return out, err
}

// DeleteStream deletes a stream.
func (c *Client) DeleteStream(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/ssf/streams?stream_id="+url.QueryEscape(id), nil, nil)
}
