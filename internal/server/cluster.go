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
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	proposed := store.ClusterInfo{Issuer: explicit, Epoch: base64.RawURLEncoding.EncodeToString(b), CreatedAt: time.Now()}
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
