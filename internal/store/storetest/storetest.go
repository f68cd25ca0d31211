// Package storetest is the conformance suite of store.Store: every
// implementation runs Run from its own tests, so the contract in package
// store is checked once, the same way, for all of them.
//
// Run's subtests run in parallel, each on a fresh store of its own; some
// start many goroutines against that store to check its concurrency
// guarantees.
// RunNodes runs those again with the goroutines spread over several stores
// opened on one database, so the database's locking between connections
// (SQLite's file lock, Postgres's row locks) is what keeps them correct.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// Run runs the conformance suite. open returns a new, empty store for one
// subtest, and is called by subtests running in parallel; Run closes the
// store when the subtest ends (cleanups registered by open run after that).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateSession", testCreateSession},
		{"SessionByRefresh", testSessionByRefresh},
		{"ListSessions", testListSessions},
		{"DeleteExpired", testDeleteExpired},
		{"RevokeSession", testRevokeSession},
		{"RevokeSubject", testRevokeSubject},
		{"RevokeSubjectEndSessions", testRevokeSubjectEndSessions},
		{"RevokeSubjectClaims", testRevokeSubjectClaims},
		{"Generation", testGeneration},
		{"CreateDuringCutoff", oneNode(testCreateDuringCutoff)},
		{"CreateBound", testCreateBound},
		{"BindSession", testBindSession},
		{"BindSessionConcurrent", oneNode(testBindSessionConcurrent)},
		{"RevokeBindingFailed", testRevokeBindingFailed},
		{"RotateRotated", testRotateRotated},
		{"RotateCheck", testRotateCheck},
		{"RotateGraceWindow", testRotateGraceWindow},
		{"RotateReused", testRotateReused},
		{"RotateRefused", testRotateRefused},
		{"RotateConcurrent", oneNode(testRotateConcurrent)},
		{"RotateChallenge", testRotateChallenge},
		{"RotateChallengeRefusedFirst", testRotateChallengeRefusedFirst},
		{"RotateChallengeConcurrent", oneNode(testRotateChallengeConcurrent)},
		{"LogEmpty", testLogEmpty},
		{"EntriesAfter", testEntriesAfter},
		{"PruneLog", testPruneLog},
		{"LogConcurrentAppends", oneNode(testLogConcurrentAppends)},
		{"RevokeBulk", testRevokeBulk},
		{"RevokeBulkAllOrNothing", testRevokeBulkAllOrNothing},
		{"ConcurrentFailuresIsolated", testConcurrentFailuresIsolated},
		{"BatchesForm", testBatchesForm},
		{"Keys", testKeys},
		{"RecordCluster", testRecordCluster},
		{"ResetAfterRestore", testResetAfterRestore},
		{"ResetAfterRestoreKeep", testResetAfterRestoreKeep},
		{"Reseal", testReseal},
		{"FirstKeyOnce", testFirstKeyOnce},
		{"APIKeys", testAPIKeys},
		{"APIKeyConflicts", testAPIKeyConflicts},
		{"RevokeAPIKey", testRevokeAPIKey},
		{"RevokeAPIKeyConcurrent", oneNode(testRevokeAPIKeyConcurrent)},
		{"RetireInstalledAPIKeys", testRetireInstalledAPIKeys},
		{"RetireInstalledConcurrent", testRetireInstalledConcurrent},
		{"Lifetimes", testLifetimes},
		{"Audit", testAudit},
		{"CreateRecord", testCreateRecord},
		{"Notifier", testNotifier},
		{"Heard", testHeard},
		{"StatusLists", testStatusLists},
		{"SlotAllocation", testSlotAllocation},
		{"SlotAllocationConcurrent", testSlotAllocationConcurrent},
		{"SlotRevokeSession", testSlotRevokeSession},
		{"SlotAccessCutoff", testSlotAccessCutoff},
		{"SlotReuse", testSlotReuse},
		{"SlotCutoffRace", testSlotCutoffRace},
		{"SlotBulkRevoke", testSlotBulkRevoke},
		{"KeyPurposes", testKeyPurposes},
		{"Streams", testStreams},
		{"StreamVerification", testStreamVerification},
		{"StreamLease", testStreamLease},
		{"StreamAcks", testStreamAcks},
		{"PruneLogKeepsStreams", testPruneLogKeepsStreams},
		{"ClaimCluster", testClaimCluster},
		{"ClaimClusterConcurrent", testClaimClusterConcurrent},
		{"RenewEpoch", testRenewEpoch},
		{"Followers", testFollowers},
		{"FollowersMany", testFollowersMany},
		{"SaveFollowersOthers", testSaveFollowersOthers},
		{"Broadcaster", testBroadcaster},
		{"Subjects", testSubjects},
		{"SearchAudit", testSearchAudit},
		{"SessionSubjects", testSessionSubjects},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each has a database of its own
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close() = %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

// nodeTests are the tests of the locking that keeps concurrent writers
// correct. Run runs them with every writer on one store; RunNodes spreads
// the writers over several stores that share one database, as several
// authority processes do, so the database's own locking is what is tested.
var nodeTests = []struct {
	name string
	fn   func(t *testing.T, nodes []store.Store)
}{
	{"CreateDuringCutoff", testCreateDuringCutoff},
	{"RotateConcurrent", testRotateConcurrent},
	{"RotateChallengeConcurrent", testRotateChallengeConcurrent},
	{"LogConcurrentAppends", testLogConcurrentAppends},
	{"RevokeAPIKeyConcurrent", testRevokeAPIKeyConcurrent},
	{"BindSessionConcurrent", testBindSessionConcurrent},
}

// oneNode runs a node test with a single store.
func oneNode(fn func(t *testing.T, nodes []store.Store)) func(t *testing.T, s store.Store) {
	return func(t *testing.T, s store.Store) { fn(t, []store.Store{s}) }
}

// RunNodes runs the locking tests with writers spread over several stores
// on one database: open returns, for one subtest, a new empty database
// opened more than once (separate connection pools, or separate
// processes' stores). RunNodes closes them when the subtest ends.
func RunNodes(t *testing.T, open func(t *testing.T) []store.Store) {
	for _, tt := range nodeTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each has a database of its own
			nodes := open(t)
			if len(nodes) < 2 {
				t.Fatalf("RunNodes: open returned %d stores, want at least 2", len(nodes))
			}
			t.Cleanup(func() {
				for i, s := range nodes {
					if err := s.Close(); err != nil {
						t.Errorf("Close() node %d = %v", i, err)
					}
				}
			})
			tt.fn(t, nodes)
		})
	}
}

// t0 is the suite's "now": a whole second, far from the zero time.
var t0 = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

const (
	sessionLife = 24 * time.Hour
	accessLife  = 15 * time.Minute
)

// hash returns the stored form of a refresh token or API key.
func hash(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// newSession is a live session of subject created at created, whose first
// refresh token is "rt-<id>".
func newSession(id, subject string, created time.Time) store.NewSession {
	return store.NewSession{
		Session: store.Session{
			ID:        id,
			Subject:   subject,
			Device:    "device " + id,
			Claims:    []byte(`{"role":"user"}`),
			CreatedAt: created,
			ExpiresAt: created.Add(sessionLife),
		},
		Refresh: store.RefreshToken{
			Hash:      hash("rt-" + id),
			SessionID: id,
			CreatedAt: created,
			ExpiresAt: created.Add(sessionLife),
		},
	}
}

func create(t *testing.T, s store.Store, ns store.NewSession) int64 {
	t.Helper()
	c, err := s.CreateSession(context.Background(), ns)
	if err != nil {
		t.Fatalf("CreateSession(%q) = %v", ns.Session.ID, err)
	}
	return c.Generation
}

// rotation exchanges presented for next at now with a one minute grace.
func rotation(presented, next string, now time.Time) store.Rotation {
	return store.Rotation{
		Presented: hash(presented),
		Next: store.RefreshToken{
			Hash:      hash(next),
			CreatedAt: now,
			ExpiresAt: now.Add(sessionLife),
		},
		NextSealed:   []byte("sealed " + next),
		Now:          now,
		Grace:        time.Minute,
		RevokedUntil: now.Add(accessLife),
	}
}

func rotate(t *testing.T, s store.Store, r store.Rotation) store.RotateResult {
	t.Helper()
	res, err := s.RotateRefresh(context.Background(), r)
	if err != nil {
		t.Fatalf("RotateRefresh() = %v", err)
	}
	return res
}

func revokeSubject(t *testing.T, s store.Store, subject string, now time.Time) revocation.Entry {
	t.Helper()
	e, err := s.RevokeSubject(context.Background(), store.SubjectRevocation{
		Subject:   subject,
		Now:       now,
		ExpiresAt: now.Add(accessLife),
		Actor:     store.Actor{By: "admin-key", Reason: "test"},
	})
	if err != nil {
		t.Fatalf("RevokeSubject(%q) = %v", subject, err)
	}
	return e
}

func session(t *testing.T, s store.Store, id string) (store.Session, int64) {
	t.Helper()
	ss, gen, err := s.Session(context.Background(), id)
	if err != nil {
		t.Fatalf("Session(%q) = %v", id, err)
	}
	return ss, gen
}

func head(t *testing.T, s store.Store) int64 {
	t.Helper()
	h, err := s.Head(context.Background())
	if err != nil {
		t.Fatalf("Head() = %v", err)
	}
	return h
}

func auditLog(t *testing.T, s store.Store) []store.AuditRecord {
	t.Helper()
	rs, err := s.AuditLog(context.Background(), 0, 1000)
	if err != nil {
		t.Fatalf("AuditLog() = %v", err)
	}
	return rs
}

// findAudit returns the last record with action and target.
func findAudit(t *testing.T, s store.Store, action, target string) (store.AuditRecord, bool) {
	t.Helper()
	rs := auditLog(t, s)
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Action == action && rs[i].Target == target {
			return rs[i], true
		}
	}
	return store.AuditRecord{}, false
}

// diffSession describes how got differs from want, or returns "".
func diffSession(got, want store.Session) string {
	var d []string
	field := func(name string, ok bool, g, w any) {
		if !ok {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	field("ID", got.ID == want.ID, got.ID, want.ID)
	field("Subject", got.Subject == want.Subject, got.Subject, want.Subject)
	field("Device", got.Device == want.Device, got.Device, want.Device)
	field("Claims", bytes.Equal(got.Claims, want.Claims), string(got.Claims), string(want.Claims))
	field("CreatedAt", got.CreatedAt.Equal(want.CreatedAt), got.CreatedAt, want.CreatedAt)
	field("RefreshedAt", got.RefreshedAt.Equal(want.RefreshedAt), got.RefreshedAt, want.RefreshedAt)
	field("ExpiresAt", got.ExpiresAt.Equal(want.ExpiresAt), got.ExpiresAt, want.ExpiresAt)
	field("RevokedAt", got.RevokedAt.Equal(want.RevokedAt), got.RevokedAt, want.RevokedAt)
	gb, wb := got.Binding, want.Binding
	field("Binding", gb.Kind == wb.Kind && gb.Thumbprint == wb.Thumbprint && bytes.Equal(gb.Key, wb.Key) &&
		gb.BoundAt.Equal(wb.BoundAt), gb, wb)
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// entryEqual compares entries, instants by Equal.
func entryEqual(a, b revocation.Entry) bool {
	return a.Seq == b.Seq && a.Kind == b.Kind && a.Session == b.Session && a.Subject == b.Subject &&
		a.Generation == b.Generation && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func seqs(es []revocation.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func ids(ss []store.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func wantErr(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", call, err, want)
	}
}
