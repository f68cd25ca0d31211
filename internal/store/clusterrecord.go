package store

import (
	"context"
	"time"
)

// ClusterRecord is what a node checks at start against the rest of the
// cluster beyond its identity (Cluster): the database the record was
// written in, so that a restore from a backup is noticed, and the settings
// every node must share.
type ClusterRecord interface {
	// Home returns the identity of the database as it is now: a value that
	// a restore from a logical backup (pg_dump) changes and that physical
	// copies, point-in-time recovery, failover and pg_upgrade keep. Empty
	// when the store has no such identity (SQLite, where a restore is a
	// file copy that keeps everything).
	Home(ctx context.Context) (string, error)
	// RecordCluster sets the recorded home (unless empty) and settings
	// (unless nil) of the cluster whose epoch is epoch, and returns the
	// recorded identity; when the epoch is no longer epoch (another node
	// renewed it) it changes nothing.
	RecordCluster(ctx context.Context, epoch, home string, settings map[string]string) (ClusterInfo, error)
	// ResetAfterRestore gives the cluster a new epoch and home after a
	// restore, as RenewEpoch does (node and verifier records beyond the
	// log's head go), and with r.Cutoff also, in the same transaction:
	// revokes every live session, deletes every access token signing key
	// (a new one is made on the next start), and revokes every live API
	// key whose hash is not in r.Keep, with an audit record for each key
	// and one "cluster.restore" for the reset. Nothing is written when the
	// epoch is no longer r.OldEpoch (another node reset first):
	// RestoreOutcome.Applied is then false.
	ResetAfterRestore(ctx context.Context, r RestoreReset) (ClusterInfo, RestoreOutcome, error)
	// SealedValues returns every value kept sealed with the master key:
	// the private keys of signing keys and the push credentials of event
	// streams (refresh successors live seconds and are left out).
	SealedValues(ctx context.Context) ([]SealedValue, error)
	// Reseal stores each value's New in place of its Sealed, for the values
	// whose stored bytes are still Sealed (another node may have re-sealed
	// one meanwhile), in one transaction, and returns how many it replaced.
	Reseal(ctx context.Context, vs []SealedValue) (int64, error)
}

// Kinds of SealedValue.
const (
	SealedSigningKey = "signing_key" // ID: the kid; sealed: SigningKey.PrivateEnc
	SealedStreamAuth = "stream_auth" // ID: the stream id; sealed: Stream.AuthHeader
)

// SealedValue is one value sealed with the master key.
type SealedValue struct {
	Kind   string
	ID     string
	Sealed []byte
	New    []byte // for Reseal
}

// RestoreReset is the input of ResetAfterRestore.
type RestoreReset struct {
	OldEpoch, Epoch string
	Home            string
	Now             time.Time
	// Cutoff ends everything issued before Now that a revocation lost with
	// the restore may have covered: sessions, access tokens (through their
	// signing keys) and API keys.
	Cutoff bool
	// Keep are the hashes of the API keys that survive a cutoff: the ones
	// the resetting node is configured with.
	Keep  [][32]byte
	Actor Actor
}

// RestoreOutcome says what ResetAfterRestore did.
type RestoreOutcome struct {
	Applied  bool
	Sessions int64    // sessions revoked
	Keys     int64    // signing keys deleted
	APIKeys  []APIKey // API keys revoked
}
