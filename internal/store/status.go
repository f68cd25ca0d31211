package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// SlotPos is a position in the Token Status Lists: list id and index.
type SlotPos struct {
	List  int64
	Index int64
}

// StatusSlot is the Token Status List entry of one session generation: the
// access tokens a session mints while its subject's generation is
// Generation carry it. List is 0 when the session has none.
type StatusSlot struct {
	SlotPos
	Generation int64
}

// SlotRequest asks CreateSession or RotateRefresh for a status list entry.
//
// An entry is held from its allocation until Sweep's FreeSlots releases it.
// While the session is live it stays held until the session's end plus
// Grace (no token of it can be valid later); a revocation that covers it
// shortens that to the revocation entry's ExpiresAt (see the revoking
// methods). Two sessions never hold one entry at once.
type SlotRequest struct {
	// Candidates are tried in order; the first that no one holds is taken.
	Candidates []SlotPos
	// Grace is added to the session's end for the time the entry is held.
	Grace time.Duration
}

// ErrNoSlot: every candidate of a SlotRequest was held. Nothing changed;
// the caller adds a list and tries again with new candidates.
var ErrNoSlot = errors.New("store: no free status list entry among the candidates")

// StatusList is one Token Status List: Size entries of one bit.
type StatusList struct {
	ID        int64
	Size      int64
	CreatedAt time.Time
}

// StatusLists stores the lists and frees their entries.
type StatusLists interface {
	// StatusLists returns every list, by ID.
	StatusLists(ctx context.Context) ([]StatusList, error)
	// AddStatusList adds a list; ErrConflict if its ID exists (another node
	// added it first).
	AddStatusList(ctx context.Context, l StatusList) error
	// FreeSlots releases the entries held until before (exclusive of
	// entries held later), so they can be allocated again, and returns how
	// many went.
	FreeSlots(ctx context.Context, before time.Time) (int64, error)
	// HeldSlots counts the entries held now.
	HeldSlots(ctx context.Context) (int64, error)
}

// Causes of a revocation, recorded with its log entry.
const (
	CauseSessionRevoke = "session.revoke" // RevokeSession
	CauseSessionReuse  = "session.reuse"  // RotateRefresh detected a reused (stolen) refresh token
	CauseSubjectRevoke = "subject.revoke" // RevokeSubject
	// CauseBindingFailed: a bound session's device failed a proof of its
	// key (a copied cookie or token used elsewhere); Revoke with this Cause.
	CauseBindingFailed = "session.binding_failed"
)

// EntryDetail is what the standards outputs need to know about a
// revocation beyond what verifiers apply: why, by whom, and which status
// list entries it made INVALID. The revoking methods write it in the same
// transaction as the log entry.
type EntryDetail struct {
	Cause  string `json:"cause"`
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Entity is Actor.Entity: "admin", "user", "policy" or "system".
	Entity string `json:"entity,omitempty"`
	// Subject is the session's subject, for a session entry (whose Entry
	// names only the session).
	Subject string `json:"sub,omitempty"`
	// EndSessions and Claims repeat the SubjectRevocation of a subject entry.
	EndSessions bool            `json:"end_sessions,omitempty"`
	Claims      json.RawMessage `json:"claims,omitempty"`
	// Slots are the status list entries the revocation made INVALID until
	// the entry's ExpiresAt.
	Slots []SlotPos `json:"-"`
}

// DetailedEntry is a log entry with the detail its revoking method wrote in
// the same row (every method that appends an entry writes one).
type DetailedEntry struct {
	revocation.Entry
	Detail EntryDetail
}

// DetailedLog reads the revocation log with each entry's detail.
type DetailedLog interface {
	// DetailedEntriesAfter is Log.EntriesAfter with details.
	DetailedEntriesAfter(ctx context.Context, after int64, limit int) ([]DetailedEntry, error)
}
