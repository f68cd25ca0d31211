package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"time"

	"github.com/tegata-dev/tegata/internal/inforce"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/postgres"
)

// clusterIdentity claims the cluster's identity on the first start and
// reads it on every other: the issuer all nodes sign with and the epoch
// verifiers see. explicit is the issuer this node was given (--issuer),
// fallback the one it would use on a first start without one (its URL).
func clusterIdentity(ctx context.Context, st store.Cluster, explicit, fallback string, shared bool, log *slog.Logger) (store.ClusterInfo, error) {
	proposed := store.ClusterInfo{Issuer: explicit, Epoch: newEpoch(), CreatedAt: time.Now()}
	if proposed.Issuer == "" {
		proposed.Issuer = fallback
	}
	id, err := st.ClaimCluster(ctx, proposed)
	if err != nil {
		return id, fmt.Errorf("cluster identity: %w", err)
	}
	if explicit != "" && explicit != id.Issuer {
		return id, fmt.Errorf("--issuer %q does not match the issuer %q this database was set up with: "+
			"every node of a cluster signs as one issuer. Start this node without --issuer (it uses the recorded one) "+
			"or with --issuer %q; a node meant for another cluster needs that cluster's database", explicit, id.Issuer, id.Issuer)
	}
	first := id.Epoch == proposed.Epoch
	switch {
	case first && explicit == "" && shared:
		log.Warn("first start on this database without --issuer: this node's own address is now the cluster's issuer "+
			"(every node will use it); to choose the public URL instead, give --issuer on the first start", "issuer", id.Issuer)
	case first:
		log.Info("cluster identity recorded", "issuer", id.Issuer, "epoch", id.Epoch)
	case explicit == "":
		log.Info("using the cluster's recorded issuer", "issuer", id.Issuer)
	}
	return id, nil
}

// newEpoch returns a random epoch: 128 bits, base64url.
func newEpoch() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// epochStore is what checkEpoch reads and writes.
type epochStore interface {
	store.Cluster
	store.Followers
	Head(ctx context.Context) (int64, error)
}

// checkEpoch renews the cluster's epoch when asked (rc.renew:
// --new-epoch) and applies the restore policy when the database looks
// restored from a backup (restoreEvidence), and records the database's
// identity on the first start that knows it.
//
// Why: a verifier resumes the feed after the position it holds. If the
// database was restored from a backup, the log's seqs after the backup are
// handed out again, to other entries; a verifier that comes back once the
// restored log has grown past its position would resume inside them and
// skip entries, and nothing in the feed would tell it (the epoch is the
// database's, restored with it). A new epoch makes every verifier start
// over from the first live entry. And the revocations made after the
// backup are gone: the restore policy (restore.go) makes sure that what
// they revoked stays refused.
func checkEpoch(ctx context.Context, st restoreStore, id store.ClusterInfo, rc restoreCheck, now time.Time, log *slog.Logger) (store.ClusterInfo, error) {
	var flag string
	switch {
	case rc.renew:
		flag = "--new-epoch"
	case rc.restored:
		flag = "--restored"
	}
	if flag != "" {
		if err := aloneOn(ctx, st, flag, now); err != nil {
			return id, err
		}
	}
	home, err := st.Home(ctx)
	if err != nil {
		return id, fmt.Errorf("cluster epoch: %w", err)
	}
	why, err := restoreEvidence(ctx, st, id, home, rc.witness)
	if err != nil {
		return id, fmt.Errorf("cluster epoch: %w", err)
	}
	if why == "" && rc.restored {
		why = "--restored was given"
	}
	if why != "" {
		return resetAfterRestore(ctx, st, id, home, why, rc, now, log)
	}
	if id.Home == "" && home != "" {
		if id, err = st.RecordCluster(ctx, id.Epoch, home, nil); err != nil {
			return id, fmt.Errorf("cluster record: %w", err)
		}
	}
	if !rc.renew {
		return id, nil
	}
	renewed, err := st.RenewEpoch(ctx, id.Epoch, newEpoch())
	if err != nil {
		return id, fmt.Errorf("cluster epoch: %w", err)
	}
	log.Warn("--new-epoch: the cluster has a new epoch; every verifier starts over from the log's first live entry",
		"was", id.Epoch, "epoch", renewed.Epoch)
	return renewed, nil
}

// aloneOn refuses a flag that resets the cluster while another node's
// record is live. A record its node marked stopped as it shut down does
// not count: that node serves nobody any more. A node killed, or cut off
// from the store as it stopped, left no mark: its record counts until it
// lapses (a few seconds past its verifiers' staleness bound).
func aloneOn(ctx context.Context, st store.Followers, flag string, now time.Time) error {
	nodes, err := st.FeedNodes(ctx, now)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	var live []store.NodeRecord
	for _, n := range nodes {
		if !n.Stopped {
			live = append(live, n)
		}
	}
	if len(live) > 0 {
		return fmt.Errorf("%s: %d other node(s) still run on this database (%s, its record live until %s): "+
			"stop every node first, start this one with %s, then the others without it",
			flag, len(live), live[0].URL, live[0].ExpiresAt.UTC().Format(time.RFC3339), flag)
	}
	return nil
}

// recordedHead returns the log's head and the highest head any node
// record names. Verifier records do not count: their positions come from
// verifiers, which any feed key holder can run, and a verifier never holds
// more than some node read, so node records alone show a restore.
func recordedHead(ctx context.Context, st epochStore) (head, seen int64, err error) {
	if head, err = st.Head(ctx); err != nil {
		return 0, 0, err
	}
	nodes, err := st.FeedNodes(ctx, time.Time{})
	if err != nil {
		return 0, 0, err
	}
	for _, n := range nodes {
		seen = max(seen, n.Head)
	}
	return head, seen, nil
}

// broadcaster returns the store's way to reach other nodes, if it is
// shared by several.
func broadcaster(st store.Store) store.Broadcaster {
	if pg, ok := st.(*postgres.Store); ok {
		return pg
	}
	return nil
}

// drainingConfirm ends confirm waits as soon as the server begins to shut
// down, so that they answer (202, not yet in force) instead of holding the
// drain up.
type drainingConfirm struct {
	*inforce.Cluster
	stopping context.Context
}

func (d drainingConfirm) Confirm(ctx context.Context, seq int64, wait time.Duration) inforce.Confirmation {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(d.stopping, cancel)()
	return d.Cluster.Confirm(ctx, seq, wait)
}
