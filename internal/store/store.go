// Package store defines the persistence contract of the tegata authority:
// sessions, rotating refresh tokens, the revocation log, signing keys, API
// keys and the audit trail. Implementations live in sub-packages (sqlite,
// postgres) and must pass the conformance suite in store/storetest.
//
// Every method is safe for concurrent use by many goroutines and, for shared
// backends, by many processes. Methods that change more than one row do so in
// one transaction: either all of it is durable when the method returns nil,
// or none of it is. An implementation may commit the writes of concurrent
// callers in one transaction (group commit); each call keeps this
// all-or-nothing guarantee on its own and returns only once its writes are
// durable, and a call that fails does not fail the others.
//
// Times are stored with microsecond precision or better; callers pass every
// instant in (no method reads the clock), so tests can move time.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// Errors callers act on. Implementations return these (possibly wrapped with
// %w); any other error is an infrastructure failure.
var (
	// ErrNotFound: no such session, key, API key or refresh token.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a row with the same unique identifier already exists.
	ErrConflict = errors.New("store: already exists")
	// ErrBound: BindSession found the session bound to another key (or by
	// another kind of binding). A binding is never replaced: a device key
	// that could be swapped would bind nothing.
	ErrBound = errors.New("store: session is bound to another key")
	// ErrChallengeUsed: RotateRefresh was given a proof over a challenge no
	// newer than one already accepted with the same refresh token (see
	// Rotation.Check). Nothing changed.
	ErrChallengeUsed = errors.New("store: the proof's challenge was used already")
)

// Store is everything the authority persists.
type Store interface {
	Sessions
	Log
	DetailedLog
	StatusLists
	Streams
	Keys
	APIKeys
	Lifetimes
	Audit
	Cluster
	ClusterRecord
	Followers
	Notifier
	Console
	// Close releases connections. The Store must not be used afterwards.
	Close() error
}

// Session is one signed-in device.
type Session struct {
	ID          string
	Subject     string
	Device      string
	Claims      json.RawMessage // app claims for future access tokens; a JSON object or nil
	CreatedAt   time.Time
	RefreshedAt time.Time // last successful refresh; CreatedAt until then
	ExpiresAt   time.Time // absolute end of the session
	RevokedAt   time.Time // zero while live
	// Status is the status list entry of the session's current generation
	// (zero when the authority publishes no status lists).
	Status StatusSlot
	// Binding is the device key the session is bound to; zero: unbound.
	Binding Binding
}

// Kinds of Binding.
const (
	BindingDPoP = "dpop" // an API client proving its key per request (RFC 9449)
	BindingDBSC = "dbsc" // a browser's Device Bound Session Credentials key
)

// Binding ties a session to a key its device holds: its tokens are good
// only with a proof signed by that key.
type Binding struct {
	Kind string // BindingDPoP or BindingDBSC; "" while unbound
	// Thumbprint is the key's RFC 7638 SHA-256 thumbprint, base64url (the
	// jkt of DPoP).
	Thumbprint string
	// Key is the public key as a canonical JWK (keyproof.Key.JSON), to
	// check later proofs signed by it; nil when only the thumbprint is
	// known (a DPoP session bound by dpop_jkt).
	Key     json.RawMessage
	BoundAt time.Time
}

// Bound reports whether the session is bound to a device key.
func (b Binding) Bound() bool { return b.Kind != "" }

// NewSession is the input of CreateSession.
type NewSession struct {
	Session Session
	// Refresh is the first refresh token of the session.
	Refresh RefreshToken
	// Slot, when set, allocates the session's status list entry in the same
	// transaction (Session.Status is ignored); ErrNoSlot if every candidate
	// is held.
	Slot *SlotRequest
	// Actor is who signs the device in; with Session.Binding set, the
	// "session.bind" record names it.
	Actor Actor
	// Record, when set, is the action of an audit record of the creation
	// itself, by Actor, its target the session id (ActionConsoleSignIn).
	Record string
}

// ConsoleSubjectPrefix begins the subject of the operator console's own
// sessions (followed by the API key's id), and no other session's. The
// store keeps them as any other; readers of the log that speak for the
// apps' users (the Shared Signals transmitter) leave them out.
const ConsoleSubjectPrefix = "tegata-console:"

// IsConsoleSubject reports whether subject is one of the operator
// console's own (ConsoleSubjectPrefix).
func IsConsoleSubject(subject string) bool { return strings.HasPrefix(subject, ConsoleSubjectPrefix) }

// ActionConsoleSignIn is the audit action of a sign-in to the operator
// console: an admin API key opened a console session.
const ActionConsoleSignIn = "console.sign_in"

// Created is the outcome of CreateSession.
type Created struct {
	Generation int64      // the subject's current generation, for the sgen claim
	Status     StatusSlot // the status list entry, when NewSession.Slot asked for one
}

// RefreshToken is a refresh token as stored: only its SHA-256.
type RefreshToken struct {
	Hash      [32]byte
	SessionID string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Rotation asks RotateRefresh to exchange the refresh token whose hash is
// Presented for Next.
type Rotation struct {
	Presented [32]byte
	// Next is the successor; Next.SessionID is ignored (the presented token's
	// session is used).
	Next RefreshToken
	// NextSealed is Next's plaintext encrypted by the caller. It is kept so
	// that a concurrent refresh within Grace receives the same successor
	// instead of forking the chain; the store never sees the plaintext.
	NextSealed []byte
	Now        time.Time
	// Grace is how long after a rotation (inclusive) the same presented
	// token is still answered with the same successor (two tabs refreshing
	// at once). Zero: no grace; every second use is Reused.
	Grace time.Duration
	// RevokedUntil is the ExpiresAt given to the revocation entry written
	// when reuse is detected (Now + the longest access token lifetime).
	RevokedUntil time.Time
	// Check, when set, is called inside the transaction before a
	// presentation that would be Rotated or Replayed writes or returns
	// anything, with the session and the subject's generation the caller
	// will mint an access token for. An error aborts: nothing changes,
	// Presented stays as it was, and RotateRefresh returns the error. The
	// authority uses it so that a refresh token is never spent on an access
	// token it cannot mint, and so that a grace replay meets the session's
	// binding as the rotation did. It runs while rows are locked: keep it
	// cheap.
	//
	// Check returns the issue time of the challenge the request's proof
	// signs when the session's binding makes such a proof single use (DBSC),
	// the zero time otherwise. The store keeps, with the presented token,
	// the newest such time it accepted; a presentation whose challenge is
	// not newer is refused with ErrChallengeUsed and changes nothing. So a
	// proof captured in flight is worth nothing within the grace window of
	// the rotation it was made for, while the browser that lost the answer
	// and signs a fresh challenge still gets the successor.
	Check func(s Session, generation int64) (challengeAt time.Time, err error)
	// Slot, when set, gives the session a new status list entry if it has
	// none or its entry stands for an older subject generation (the first
	// refresh after an access cutoff); the result's Session.Status is the
	// entry its tokens carry. ErrNoSlot if every candidate is held.
	Slot *SlotRequest
}

// Outcome says what RotateRefresh did.
type Outcome int

const (
	// Rotated: Presented was current; it is now used and Next is current.
	Rotated Outcome = iota + 1
	// Replayed: Presented was rotated less than Grace ago and its successor
	// has not been used; nothing changed, Result.Sealed holds the successor
	// handed out then.
	Replayed
	// Reused: Presented was already rotated and this is not a grace replay
	// (outside the window, or the successor was itself used): theft. The
	// session is now revoked and Result.Entry is the log entry written.
	Reused
	// Refused: the token is unknown, expired, or its session is revoked or
	// expired. Nothing changed.
	Refused
)

// RotateResult is the outcome of RotateRefresh.
type RotateResult struct {
	Outcome    Outcome
	Session    Session // the token's session (zero when Refused for an unknown token)
	Generation int64   // the subject's current generation (for the sgen claim)
	Sealed     []byte  // with Replayed: the NextSealed stored by the earlier rotation
	Entry      revocation.Entry
	// Reason explains Refused for logs: "unknown token", "expired" (the
	// token), "session revoked" or "session expired".
	Reason string
}

// Actor says who did something and why, for the audit trail.
type Actor struct {
	By     string // API key name, "client" for self-service sign-out, "system" for theft detection
	Reason string
	// Entity says who initiated a revocation in CAEP's words: "admin",
	// "user", "policy" or "system". It goes into the entry's detail.
	Entity string
}

// SubjectRevocation is the input of RevokeSubject.
type SubjectRevocation struct {
	Subject string
	// EndSessions also revokes every live session of the subject, so refresh
	// fails ("sign out everywhere"). Without it sessions live on and only
	// access tokens issued before now are cut off (role change).
	EndSessions bool
	// Claims, when non-nil, replaces the claims of every live session of the
	// subject, so the next refresh carries them.
	Claims json.RawMessage
	Now    time.Time
	// ExpiresAt of the log entry: Now + the longest access token lifetime.
	ExpiresAt time.Time
	Actor     Actor
}

// Revocation is one item of Revoke: a session (SessionID set), or else a
// subject cutoff as RevokeSubject makes (Subject, EndSessions, Claims).
type Revocation struct {
	SessionID   string
	Subject     string
	EndSessions bool
	Claims      json.RawMessage
	Now         time.Time
	// ExpiresAt of the log entry: Now + the longest access token lifetime.
	ExpiresAt time.Time
	Actor     Actor
	// Cause of a session revocation: "" is CauseSessionRevoke;
	// CauseBindingFailed for a bound session whose device failed a proof
	// (treated as theft). It is the entry's cause and the audit action.
	Cause string
}

// Revoked is what Revoke did with one item: the log entry it appended, and
// how many live sessions it found (not revoked, not expired): for a
// session, 1 when it ended it; for a subject cutoff, the subject's sessions
// it ended (EndSessions) or whose tokens it cut off. A cutoff that found
// none still bumps the generation and is logged; the count lets a caller
// tell a subject that had no session (a typo?) from one signed out.
type Revoked struct {
	revocation.Entry
	Sessions int
}

// ItemError is the error of a bulk call (Revoke) caused by one of its
// items; nothing of the call was written.
type ItemError struct {
	Index int // the item's position in the call, from 0
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("item %d: %v", e.Index, e.Err) }
func (e *ItemError) Unwrap() error { return e.Err }

// Sessions stores sessions and refresh tokens.
type Sessions interface {
	// CreateSession stores a session and its first refresh token and returns
	// the subject's current generation (0 for a subject never cut off) and
	// the status list entry allocated, if one was requested. ErrConflict if
	// the session ID or token hash exists. A session created with a Binding
	// is bound from the start (its BoundAt is the session's CreatedAt) and
	// "session.bind" is recorded by s.Actor in the same transaction.
	CreateSession(ctx context.Context, s NewSession) (Created, error)
	// BindSession binds a live session (neither revoked nor expired at now)
	// to b's Kind, Thumbprint and Key at now and records "session.bind" by
	// a, in one transaction, returning the session as bound. A session
	// already bound with the same Kind and Thumbprint is returned as it is
	// (nothing recorded); ErrBound if it is bound otherwise; ErrNotFound if
	// no live session has the id.
	BindSession(ctx context.Context, id string, b Binding, now time.Time, a Actor) (Session, error)
	// RotateRefresh exchanges a refresh token atomically: at most one
	// successor is ever current for a token, whatever runs concurrently.
	RotateRefresh(ctx context.Context, r Rotation) (RotateResult, error)
	// Session returns a session (live or not) and its subject's generation.
	// ErrNotFound if it never existed.
	Session(ctx context.Context, id string) (Session, int64, error)
	// SessionByRefresh returns the session a refresh token (current or
	// rotated) belongs to. ErrNotFound if the hash is unknown.
	SessionByRefresh(ctx context.Context, hash [32]byte) (Session, error)
	// ListSessions returns the subject's sessions that are neither revoked
	// nor expired at now, newest first.
	ListSessions(ctx context.Context, subject string, now time.Time) ([]Session, error)
	// RevokeSession revokes a session and appends a KindSession entry
	// expiring at expiresAt. Revoking an already revoked session appends
	// nothing and returns the zero Entry with a nil error. ErrNotFound if the
	// session never existed. The session's status list entries that are
	// still held become INVALID with the entry: they are held at least
	// until expiresAt, and the entry's detail lists them.
	RevokeSession(ctx context.Context, id string, now, expiresAt time.Time, a Actor) (revocation.Entry, error)
	// RevokeSubject increments the subject's generation (creating the
	// subject if needed) and appends a KindSubject entry carrying the new
	// generation: every token issued before has a lower sgen. The status
	// list entries of the subject's older generations that are still held
	// become INVALID with it, as with RevokeSession.
	RevokeSubject(ctx context.Context, r SubjectRevocation) (revocation.Entry, error)
	// Revoke applies every item as RevokeSession or RevokeSubject would (a
	// session item with its Cause), in
	// order, in one transaction: all of them or none. Outcome i is item
	// i's: its Entry is the zero Entry for a session already revoked (also
	// by an earlier item); an audit record is written per item. An item
	// naming a session that never existed fails the call with an
	// *ItemError wrapping ErrNotFound.
	Revoke(ctx context.Context, items []Revocation) ([]Revoked, error)
	// DeleteExpired removes sessions and refresh tokens that have expired at
	// now (ExpiresAt not after now), with every refresh token of a removed
	// session, and returns how many rows went.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
}

// Log reads the revocation log. Entries are appended only by the revoking
// methods of Sessions. Seq values are strictly increasing, and an entry with
// seq n is never visible after one with seq > n became visible (no gaps that
// fill in later): a reader that saw head h has seen every entry <= h.
type Log interface {
	// EntriesAfter returns up to limit entries with seq > after, in seq order.
	EntriesAfter(ctx context.Context, after int64, limit int) ([]revocation.Entry, error)
	// Head returns the highest seq (0 for an empty log).
	Head(ctx context.Context) (int64, error)
	// PruneLog deletes entries that are no longer live at now (ExpiresAt not
	// after now), keeping the head entry so that Head never goes back, and
	// keeping the entries recorded after keepSince that a Shared Signals
	// stream (not disabled) has not consumed yet (seq beyond its Cursor).
	// Returns how many went.
	PruneLog(ctx context.Context, now, keepSince time.Time) (int64, error)
}

// Notifier wakes the caller when entries may have been appended, by any
// process: part of every Store, since the feed and the authority's
// follower of other nodes' writes both need it. A wake-up carries no data;
// the reader re-reads the log after its last seq. Implementations also wake
// after reconnecting, since notifications sent meanwhile are lost.
type Notifier interface {
	// Subscribe returns a channel that receives a value (coalesced) after
	// appends, and a func to stop.
	Subscribe() (wake <-chan struct{}, stop func())
	// Heard returns what this process has heard of the log's appends
	// (its own commits, and other processes' by notification): the
	// highest head committed, and the highest head committed by an
	// append made for a caller that waits for its confirmation
	// (WithConfirmation). Each rises before the wake-up of the append
	// that raised it, so a subscriber woken reads them at least that
	// high. Zero when nothing was heard; a lost notification is not
	// heard, so they may lag the log (Head is the log's own answer).
	Heard() (head, asked int64)
}

type confirmationKey struct{}

// WithConfirmation marks ctx as a caller that will wait for its appends to
// be confirmed in force (?confirm=): the append's notification says so, so
// that every node asks its verifiers to report their positions with the
// entries themselves, rather than in a write of its own once the node that
// waits has asked.
func WithConfirmation(ctx context.Context) context.Context {
	return context.WithValue(ctx, confirmationKey{}, true)
}

// ConfirmationWanted reports whether ctx was marked by WithConfirmation.
func ConfirmationWanted(ctx context.Context) bool {
	v, _ := ctx.Value(confirmationKey{}).(bool)
	return v
}

// LifetimeLease says that access tokens living up to Lifetime may be
// minted until Until: so no token minted under it is valid after
// Until + Lifetime (+ the verifiers' leeway).
type LifetimeLease struct {
	Lifetime time.Duration
	Until    time.Time
}

// Lifetimes records the access token lifetimes authority nodes mint with.
// A revocation entry must be kept as long as the longest-lived token it
// covers can be valid, and after an operator lowers the lifetime, tokens
// minted under the old one live on: the leases say for how long.
type Lifetimes interface {
	// LeaseLifetime records that tokens living up to lifetime may be minted
	// until until. A lease is never shortened: the later until is kept.
	LeaseLifetime(ctx context.Context, lifetime time.Duration, until time.Time) error
	// LifetimeLeases returns every recorded lease, shortest lifetime first.
	LifetimeLeases(ctx context.Context) ([]LifetimeLease, error)
	// PruneLifetimeLeases deletes the leases under which no token is valid
	// any more at before (Until + Lifetime before it) and returns how many
	// went.
	PruneLifetimeLeases(ctx context.Context, before time.Time) (int64, error)
}

// SigningKey is a key of the authority's key set.
type SigningKey struct {
	ID         string // kid
	Algorithm  string // "EdDSA" or "ES256"
	Public     []byte // PKIX DER
	PrivateEnc []byte // PKCS#8 DER sealed with the master key
	CreatedAt  time.Time
	// SignFrom is when the authority starts signing with the key; it is
	// published in JWKS from CreatedAt on, so verifiers know it first.
	SignFrom time.Time
	// RetiredAt is zero while the key may sign; once set, the key still
	// verifies until RetiredAt + the longest access token lifetime.
	RetiredAt time.Time
	// Purpose is what the key signs: "" access tokens (and status lists),
	// PurposeEvents Security Event Tokens. Keys of one purpose never
	// retire keys of the other.
	Purpose string
}

// PurposeEvents marks keys that sign Security Event Tokens (RS256).
const PurposeEvents = "events"

// Keys stores signing keys.
type Keys interface {
	// AddKey stores a key and, in the same transaction, sets RetiredAt =
	// key.SignFrom on every other key of its Purpose not yet retired. ErrConflict on a
	// duplicate ID.
	AddKey(ctx context.Context, k SigningKey, a Actor) error
	// AddFirstKey stores k as AddKey does, but only if the store holds no
	// key of k's Purpose, decided under a lock so that of several processes starting
	// on an empty store at once exactly one adds its key. It reports whether
	// k was added.
	AddFirstKey(ctx context.Context, k SigningKey, a Actor) (added bool, err error)
	// ListKeys returns all keys, oldest first.
	ListKeys(ctx context.Context) ([]SigningKey, error)
	// DeleteKeysRetiredBefore removes keys retired before t.
	DeleteKeysRetiredBefore(ctx context.Context, t time.Time) (int64, error)
}

// APIKey authenticates app backends and operators.
type APIKey struct {
	ID        string
	Name      string
	Hash      [32]byte // SHA-256 of the secret
	Role      string   // "admin" (everything) or "feed" (read the feed and JWKS only)
	CreatedAt time.Time
	// InstalledAs names the setting a key was installed from at start
	// ("bootstrap", "feed"); empty for keys created through the API.
	InstalledAs string
}

// APIKeys stores API keys, hashed. A revoked key is kept (marked revoked,
// never served again) so that its secret can never be installed again: a
// leaked bootstrap key must not come back on the next start.
type APIKeys interface {
	// AddAPIKey stores a key and records "apikey.create" by a (target
	// "name (id)", so the trail names the key after it is gone), in one
	// transaction. ErrConflict on a duplicate ID or hash (revoked keys
	// included) or on the name of a live key; a revoked key's name may be
	// used again.
	AddAPIKey(ctx context.Context, k APIKey, a Actor) error
	// APIKeyByHash returns the live key with that hash; ErrNotFound if no
	// key has it or the key was revoked.
	APIKeyByHash(ctx context.Context, hash [32]byte) (APIKey, error)
	// APIKeyRevoked reports whether the key with that hash was revoked
	// (false for a live or unknown hash).
	APIKeyRevoked(ctx context.Context, hash [32]byte) (bool, error)
	// ListAPIKeys returns the live keys, oldest first.
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	// RevokeAPIKey revokes a live key at now and records "apikey.revoke" by
	// a (target "name (id)"), in one transaction. ErrNotFound if no live
	// key has that ID; ErrLastAdminKey if it is the last live key with the
	// "admin" role, decided under a lock so that two admins revoking each
	// other at once cannot both succeed.
	RevokeAPIKey(ctx context.Context, id string, now time.Time, a Actor) error
	// RetireInstalledAPIKeys revokes at now every live key installed as
	// installedAs except the live key whose hash is keep, which it marks as
	// installed so (a setting's new secret replaces the old one), and
	// records "apikey.revoke" by a for each, in one transaction. It returns
	// the keys it revoked. ErrNotFound if keep is not a live key.
	RetireInstalledAPIKeys(ctx context.Context, installedAs string, keep [32]byte, now time.Time, a Actor) ([]APIKey, error)
}

// ErrLastAdminKey: RevokeAPIKey refused to revoke the last live admin key,
// which would leave nobody able to manage the authority over its API.
var ErrLastAdminKey = errors.New("store: the last admin API key cannot be revoked")

// AuditRecord is one line of the audit trail.
type AuditRecord struct {
	ID     int64
	At     time.Time
	Actor  Actor
	Action string // "session.revoke", "subject.revoke", "session.reuse", "session.bind", "key.add", ...
	Target string // session id, subject, or kid
}

// Audit is the trail of revocations, key and API key changes. The methods
// that make those changes write their records in the same transaction, so
// there is no separate way to add one.
type Audit interface {
	// AuditLog returns records with ID > after, oldest first, up to limit.
	AuditLog(ctx context.Context, after int64, limit int) ([]AuditRecord, error)
}

// SubjectQuery asks Console.Subjects for one page of subjects.
type SubjectQuery struct {
	Prefix string // subjects that begin with it (byte-wise); "" for all
	After  string // subjects that sort after it (byte order): the last of the previous page
	Limit  int    // at most this many; below 1 returns nothing
	// Now decides which sessions count as live.
	Now time.Time
}

// SubjectSummary is one subject found by Console.Subjects.
type SubjectSummary struct {
	Subject string
	// LiveSessions counts the sessions neither revoked nor expired.
	LiveSessions int
}

// AuditQuery filters the audit trail for Console.SearchAudit. Empty fields
// do not filter.
type AuditQuery struct {
	Actor   string   // Actor.By, exactly
	Actions []string // any of these actions
	Target  string   // exactly (a subject, a session id, a kid)
	From    time.Time
	To      time.Time // records before it
	Before  int64     // records with a lower ID: the last of the previous page
	Limit   int       // at most this many; below 1 returns nothing
}

// Console is what the operator console reads besides the rest of the
// store: subjects by prefix and the audit trail by filter. Each reads an
// index, never the whole table: the console stays fast over millions of
// sessions.
type Console interface {
	// Subjects returns the subjects that ever had a session, beginning with
	// q.Prefix and sorting after q.After, in byte order (UTF-8 byte order
	// is code point order, whatever the database's collation), with their
	// live sessions at q.Now.
	Subjects(ctx context.Context, q SubjectQuery) ([]SubjectSummary, error)
	// SearchAudit returns the records matching every filter of q, newest
	// (highest ID) first.
	SearchAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
	// AuditCounts returns how many records of each action were written at
	// or after since.
	AuditCounts(ctx context.Context, since time.Time) (map[string]int64, error)
	// SessionSubjects returns the subject of every stored session (live,
	// revoked or expired) among ids, by id, in one query: the users of a
	// page of audit records. An id of no stored session is absent.
	SessionSubjects(ctx context.Context, ids []string) (map[string]string, error)
}
