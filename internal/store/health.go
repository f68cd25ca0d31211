package store

import (
	"context"
	"errors"
)

// ErrUnwritable: the database refused a write for want of room or of
// permission (a full disk or database, a read-only file, a read-only
// Postgres server or transaction). Nothing of the write was kept.
var ErrUnwritable = errors.New("store: the database refuses writes")

// WriteHealth is a store that can tell whether it can still write.
// Readiness needs it: a node whose store answers reads but refuses writes
// can verify tokens but can neither sign anyone in nor sign anyone out.
type WriteHealth interface {
	// ProbeWrite tries a write that allocates space the way a new session
	// does, then rolls it back: nothing stays. It returns an error wrapping
	// ErrUnwritable when the database refuses it. A successful probe
	// clears the refusals seen before it started.
	ProbeWrite(ctx context.Context) error
	// Unwritable returns the last refusal (wrapping ErrUnwritable) of any
	// write seen since the last successful probe, or nil.
	Unwritable() error
}
