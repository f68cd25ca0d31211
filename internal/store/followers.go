package store

import (
	"context"
	"time"
)

// ClusterInfo is the identity of the cluster whose state a store holds.
type ClusterInfo struct {
	// Issuer is the iss every node of the cluster signs with.
	Issuer string
	// Epoch is random, chosen when the identity was claimed. A verifier
	// that sees it change is following another log.
	Epoch     string
	CreatedAt time.Time
	// Home is the identity of the database the record was last confirmed
	// in (see ClusterRecord.Home); empty until a node has recorded one.
	Home string
	// Settings are the settings every node must share, as recorded by the
	// first node to start (see ClusterRecord.RecordCluster); nil until
	// recorded.
	Settings map[string]string
	// RestoredAt is when a node last found the database restored and reset
	// the cluster (zero if never).
	RestoredAt time.Time
}

// Cluster records the cluster's identity.
type Cluster interface {
	// ClaimCluster records c as the cluster's identity unless one is
	// recorded already, and returns the recorded one: c itself for the
	// first caller, whatever ran concurrently.
	ClaimCluster(ctx context.Context, c ClusterInfo) (ClusterInfo, error)
	// RenewEpoch replaces the recorded epoch old with epoch, unless it is
	// no longer old (another node renewed it first), and returns the
	// recorded identity. In the same transaction it deletes the node and
	// verifier records whose head or position lies beyond the log's head:
	// positions in a log that is gone (a restored database), which would
	// otherwise make the next node to start think so again.
	RenewEpoch(ctx context.Context, old, epoch string) (ClusterInfo, error)
}

// NodeRecord is what one authority node process publishes about the
// verifiers that follow it.
type NodeRecord struct {
	ID  string // random per process
	URL string // where the node listens, for people
	// Advertise is the URL verifiers may follow this node at (tegata serve
	// --advertise-url), published to them as the cluster's membership;
	// empty: not advertised.
	Advertise string
	// Stopped: the node wrote this record as it shut down, after its feed
	// and API had stopped serving. ExpiresAt still bounds the leases it
	// granted; only a check for running nodes may pass over it.
	Stopped bool
	// Safe: every verifier following the node holds every log entry up to
	// Safe, or refuses every token it has not checked against them.
	Safe int64
	// Head is the position the node's feed has read the log up to.
	Head int64
	// Followers is how many verifiers follow the node.
	Followers int
	// Version grows with every record the node writes, so that readers
	// keep the newest of several copies (a row and notifications).
	Version   int64
	UpdatedAt time.Time
	// ExpiresAt: should the node write nothing more, every verifier that
	// followed it refuses tokens it has not checked by then, so its Safe no
	// longer matters.
	ExpiresAt time.Time
}

// VerifierRecord is one verifier as the node that last heard from it saw
// it.
type VerifierRecord struct {
	ID      string // random per verifier process
	Name    string // chosen by its operator; may be empty
	Host    string
	Version string
	Node    string // NodeRecord.ID of the node that heard it
	// Position is the log position it has applied.
	Position int64
	// Ready is what the verifier said of itself: its state is current.
	Ready bool
	// StaleAfter is its staleness bound: past it without news it refuses
	// tokens.
	StaleAfter time.Duration
	HeardAt    time.Time
}

// Followers shares what each authority node knows of its verifiers, so
// that any node can answer for the whole cluster.
type Followers interface {
	// SaveFollowers upserts the node's record and the given verifier
	// records in one transaction, and returns the records of the other
	// nodes whose ExpiresAt is after n.UpdatedAt, by ID, as that
	// transaction saw them: a node writes its records and reads the
	// others' every second, in one round trip where the database allows.
	// A verifier's record replaces the stored one only if it was heard no
	// earlier (a verifier that moved to another node keeps that node's
	// newer record).
	SaveFollowers(ctx context.Context, n NodeRecord, vs []VerifierRecord) ([]NodeRecord, error)
	// FeedNodes returns the node records whose ExpiresAt is after now, by
	// ID.
	FeedNodes(ctx context.Context, now time.Time) ([]NodeRecord, error)
	// FeedVerifiers returns the verifier records heard after heardAfter,
	// by ID.
	FeedVerifiers(ctx context.Context, heardAfter time.Time) ([]VerifierRecord, error)
	// PruneFollowers deletes node records that expired before t and
	// verifier records last heard before t, and returns how many went.
	PruneFollowers(ctx context.Context, t time.Time) (int64, error)
}

// Broadcaster is an optional capability of a Store: short messages to
// every process sharing it (Postgres NOTIFY), this one included. Delivery
// is best effort: messages sent while a listener is disconnected are lost,
// and a listener that does not keep up loses messages; after either it
// receives "" (re-read whatever the messages stood for).
type Broadcaster interface {
	// Broadcast sends msg (at most MaxBroadcast bytes) to every listener.
	Broadcast(ctx context.Context, msg string) error
	// Listen returns a channel of messages and a func to stop.
	Listen() (msgs <-chan string, stop func())
}

// MaxBroadcast is the longest message a Broadcaster carries (Postgres
// limits NOTIFY payloads to just under 8000 bytes).
const MaxBroadcast = 7000
