package server

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/store"
)

// masterKeySetting names the master key's fingerprint among the settings
// of the cluster's record.
const masterKeySetting = "master-key"

// nodeSettings returns what this node must share with every other node:
// the authority's shared settings and the master key's fingerprint; and,
// during a master key rotation, the other master key's fingerprint, which
// the record may still name.
func nodeSettings(ac authority.Config, master []byte) (mine, alt map[string]string, err error) {
	mine = ac.SharedSettings()
	if mine[masterKeySetting], err = authority.MasterKeyFingerprint(master); err != nil {
		return nil, nil, err
	}
	alt = map[string]string{}
	for _, other := range ac.OtherMasterKeys {
		if alt[masterKeySetting], err = authority.MasterKeyFingerprint(other); err != nil {
			return nil, nil, err
		}
	}
	return mine, alt, nil
}

// checkSettings compares this node's settings with the cluster's record
// and refuses to start on a difference, naming each setting with both
// values, unless update (--update-settings) makes this node's values the
// cluster's. The first node to start records its settings; a setting the
// record does not hold yet (a newer version's) is added. The master key
// can never be changed this way: a node with another one could not open
// the cluster's signing keys. It changes in a master key rotation: a node
// given the recorded key as the other master key (alt) records its own,
// under which it re-seals everything.
func checkSettings(ctx context.Context, st store.ClusterRecord, id store.ClusterInfo, mine, alt map[string]string, update bool, log *slog.Logger) (store.ClusterInfo, error) {
	if id.Settings == nil {
		rec, err := st.RecordCluster(ctx, id.Epoch, "", mine)
		if err != nil {
			return id, fmt.Errorf("cluster settings: %w", err)
		}
		log.Info("cluster settings recorded: every node must start with the same ones", "settings", describe(mine))
		return rec, nil
	}
	merged := maps.Clone(id.Settings)
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(mine)) {
		rec, ok := id.Settings[k]
		if ok && rec != mine[k] && rec == alt[k] {
			log.Warn("master key rotation: the cluster's sealed data moves to this node's master key; nodes given only the other one can no longer start",
				"was", rec, "now", mine[k])
		} else if ok && rec != mine[k] {
			if k == masterKeySetting {
				return id, fmt.Errorf("the master key (TEGATA_MASTER_KEY, or master.key in the data directory) differs from the cluster's "+
					"(fingerprint %s, the cluster's %s): every node needs the cluster's master key, without which it cannot open the signing keys; "+
					"to rotate it, see docs/operations.md, \"Master key rotation\"", mine[k], rec)
			}
			diffs = append(diffs, fmt.Sprintf("--%s is %q on this node but %q in the cluster's record", k, mine[k], rec))
		}
		merged[k] = mine[k]
	}
	if len(diffs) > 0 && !update {
		return id, fmt.Errorf("this node's settings differ from the cluster's: %s. Every node of a cluster must share them "+
			"(a token one node mints must pass at every gate and every other node). Start this node with the cluster's values; "+
			"to change them for the whole cluster, start one node with the new values and --update-settings, then restart the others with them",
			strings.Join(diffs, "; "))
	}
	if maps.Equal(merged, id.Settings) {
		return id, nil
	}
	rec, err := st.RecordCluster(ctx, id.Epoch, "", merged)
	if err != nil {
		return id, fmt.Errorf("cluster settings: %w", err)
	}
	for _, d := range diffs {
		log.Warn("--update-settings: the cluster's setting changed; restart every other node with the new value", "change", d)
	}
	return rec, nil
}

// describe lists settings as name=value, sorted, for logs.
func describe(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%s ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}
