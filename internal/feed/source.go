package feed

import (
	"context"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// Source is the revocation log a Hub serves. The store's log satisfies it.
//
// Seq values are strictly increasing and never fill in later: once an entry
// with seq n is visible (to Head or EntriesAfter), so is every entry below
// n, and none below n appears afterwards. The hub relies on it to move its
// position past what it has read. EntriesAfter may leave out entries that
// were pruned because they expired; the feed skips expired entries anyway.
type Source interface {
	// EntriesAfter returns up to limit entries with seq > after, in seq order.
	EntriesAfter(ctx context.Context, after int64, limit int) ([]revocation.Entry, error)
	// Head returns the highest seq in the log (0 for an empty log).
	Head(ctx context.Context) (int64, error)
	// Subscribe returns a channel that receives a value (coalesced) after
	// entries may have been appended, by any process, and after the source
	// reconnects to its database; and a func to stop.
	Subscribe() (wake <-chan struct{}, stop func())
}
