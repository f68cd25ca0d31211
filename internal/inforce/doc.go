// Package inforce tells when a revocation is in force on every verifier of
// the cluster, and who follows the feed.
//
// # In force
//
// A log position S is in force when every verifier that follows any node of
// the cluster either holds every entry up to S or refuses every token. Each
// node's feed hub works out, for its own followers, the highest position
// that holds for (feed.Hub.Safe: the verifiers report their positions and
// their freshness rests on leases the hub grants, so a silent one is known
// to refuse after its staleness bound). A Cluster combines the nodes:
//
//   - its own node, in process;
//   - every other node whose record (store.NodeRecord) was in the store when
//     the wait began: a node that registers later started its feed after S
//     was committed, so it never vouches for a state without S.
//
// S is in force when every such node's safe position has reached S, or the
// node has stopped vouching (its record expired: the leases it granted have
// run out, so its followers refuse tokens by themselves).
//
// # Across nodes
//
// News travels two ways. Every node rewrites its record (and those of its
// verifiers whose state changed) about once a second, one transaction for
// all of them, however many verifiers report; that bounds the database's
// write load by the number of nodes, not of verifiers. A node that waits for
// S broadcasts "who wants S" (Postgres NOTIFY); every node answers with its
// record as soon as its safe position reaches S (at once if it already
// has), so a confirmed revocation waits for the verifiers, not for the next
// periodic write. The calls waiting on one node share its asks: one per
// rise of the highest position it waits for, and a repeat a second, not
// one per call, since Postgres commits every NOTIFY of the server one
// after the other, the log's appends included. A node's lease license
// comes from its record too: it grants no lease that outlives the expiry
// it last wrote durably.
//
// # Concurrency
//
// A Cluster runs one goroutine (Run) that evaluates its hub, writes its
// records and handles messages; Confirm and List may be called from any
// goroutine.
package inforce
