package store

import (
	"context"
	"errors"
	"time"
)

// Stream is a Shared Signals (SSF 1.0) event stream: its configuration and
// its delivery state. Its events are not stored: they are derived from the
// revocation log entries after Cursor, in log order.
type Stream struct {
	ID          string
	Audience    string
	Method      string // delivery method URI: push (RFC 8935) or poll (RFC 8936)
	EndpointURL string // push: where SETs are POSTed; poll: empty
	// AuthHeader is the push Authorization header value, sealed with the
	// master key by the caller (nil: none).
	AuthHeader []byte
	// Events is events_requested as given (nil: not given).
	Events      []string
	Description string
	// PollKey is the ID of the API key that may poll the stream (poll
	// delivery, which always names one); empty for push.
	PollKey   string
	Status    string // "enabled", "paused" or "disabled"
	Reason    string
	CreatedAt time.Time
	UpdatedAt time.Time

	// Cursor is the log position every event up to which has been
	// delivered (push) or acknowledged (poll), or filtered out.
	Cursor int64
	// Verification: VerifySeq counts requests, VerifySent is the last one
	// delivered (pending while VerifySeq > VerifySent), VerifyState its
	// state, VerifyAt when it was requested.
	VerifySeq, VerifySent int64
	VerifyState           string
	VerifyAt              time.Time

	// Push delivery: the node holding the lease delivers.
	LeaseOwner  string
	LeaseUntil  time.Time
	Attempts    int       // failed attempts in a row
	NextAttempt time.Time // no delivery before
	LastError   string
	Delivered   int64 // SETs delivered, ever
	Lost        int64 // events pruned from the log before delivery
}

// VerifyPending reports whether a verification event waits for delivery.
func (s Stream) VerifyPending() bool { return s.VerifySeq > s.VerifySent }

// Progress is what a delivering node records for a stream it holds the
// lease of.
type Progress struct {
	Cursor      int64
	VerifySent  int64
	Attempts    int
	NextAttempt time.Time
	LastError   string
	Delivered   int64 // added to the count
	Lost        int64 // added to the count
	// LeaseUntil extends the lease; zero releases it.
	LeaseUntil time.Time
}

// ErrLeaseLost: another node holds the stream's lease (or the stream is
// gone); the caller stops delivering it.
var ErrLeaseLost = errors.New("store: stream lease lost")

// Streams stores Shared Signals streams.
type Streams interface {
	// AddStream stores a new stream; ErrConflict on a duplicate ID.
	AddStream(ctx context.Context, s Stream) error
	// Stream returns a stream; ErrNotFound if there is none.
	Stream(ctx context.Context, id string) (Stream, error)
	// ListStreams returns every stream, oldest first.
	ListStreams(ctx context.Context) ([]Stream, error)
	// UpdateStream replaces a stream's configuration and status (Audience,
	// Method, EndpointURL, AuthHeader, Events, Description, PollKey, Status,
	// Reason, UpdatedAt) and, when moveCursor, sets Cursor too (a stream enabled
	// again after being disabled starts at the head). It ends the delivery
	// lease, whoever holds it: a delivery started under the old
	// configuration gets ErrLeaseLost at its next SaveProgress, so it can
	// neither send what was logged after the change nor move the cursor
	// back. ErrNotFound if the stream does not exist.
	UpdateStream(ctx context.Context, s Stream, moveCursor bool) error
	// DeleteStream deletes a stream and its acknowledgements; ErrNotFound
	// if there is none.
	DeleteStream(ctx context.Context, id string) error
	// RequestVerification queues a verification event with state at now,
	// unless the previous request is less than minInterval old
	// (ErrTooSoon). ErrNotFound if the stream does not exist.
	RequestVerification(ctx context.Context, id, state string, now time.Time, minInterval time.Duration) error
	// LeaseStream takes the stream's delivery lease for owner until until,
	// if it is free at now or already owner's, and returns the stream.
	// ErrLeaseLost if another owner holds it.
	LeaseStream(ctx context.Context, id, owner string, now, until time.Time) (Stream, error)
	// SaveProgress records delivery progress under owner's lease;
	// ErrLeaseLost if owner no longer holds it.
	SaveProgress(ctx context.Context, id, owner string, p Progress) error
	// Acknowledge records the acknowledgements of a poll stream: log seqs
	// beyond its cursor, and verification (0: none), which marks that
	// verification and any earlier one sent. It returns the stream and every
	// acknowledged seq beyond its cursor, ascending. ErrNotFound if the
	// stream does not exist.
	Acknowledge(ctx context.Context, id string, acks []int64, verification int64) (Stream, []int64, error)
	// MoveCursor moves a stream's cursor from from to to (no-op if another
	// caller moved it first), drops the acknowledgements up to to and adds
	// delivered (the events acknowledged between the two) to the stream's
	// Delivered count.
	MoveCursor(ctx context.Context, id string, from, to, delivered int64) error
}

// ErrTooSoon: a verification was requested again within
// min_verification_interval.
var ErrTooSoon = errors.New("store: too soon")
