package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/store"
)

// What a node does when it finds at start that the database was restored
// from a backup (Config.AfterRestore).
const (
	// AfterRestoreCutoff, the default, ends everything issued before the
	// restore was found: every session (refresh fails), every access token
	// (the signing keys are replaced) and every API key but the ones the
	// node is configured with. A revocation made after the backup was
	// lost with it, and nothing says which: this brings none back.
	AfterRestoreCutoff = "cutoff"
	// AfterRestoreKeep only gives the cluster a new epoch (verifiers start
	// over): for a restore known to have lost nothing, such as a copy to a
	// new server or point-in-time recovery to the end of the WAL.
	AfterRestoreKeep = "keep"
)

// checkAfterRestore refuses an unknown Config.AfterRestore.
func checkAfterRestore(v string) error {
	if v != "" && v != AfterRestoreCutoff && v != AfterRestoreKeep {
		return fmt.Errorf("--after-restore must be %q or %q, not %q", AfterRestoreCutoff, AfterRestoreKeep, v)
	}
	return nil
}

// restoreStore is what the restore check reads and writes.
type restoreStore interface {
	epochStore
	store.ClusterRecord
}

// restoreCheck is what checkEpoch is told beyond the store.
type restoreCheck struct {
	renew    bool   // --new-epoch
	restored bool   // --restored
	policy   string // Config.AfterRestore
	// keep are the hashes of the API keys this node is configured with:
	// they survive a cutoff.
	keep    [][32]byte
	witness *witness // nil without a data directory
}

// restoreEvidence says why the database looks restored from a backup, or
// "" if nothing says so. Three things can tell: node records naming heads
// beyond the log's head (nodes kept running across the restore), another
// database identity than the one recorded (a logical dump restored), and
// this node's own memory of the log, kept beside the database (a SQLite
// file copied back, a Postgres point-in-time recovery to an earlier time).
func restoreEvidence(ctx context.Context, st restoreStore, id store.ClusterInfo, home string, w *witness) (string, error) {
	head, seen, err := recordedHead(ctx, st)
	if err != nil {
		return "", err
	}
	if seen > head {
		return fmt.Sprintf("the revocation log ends at %d but a node recorded reading it up to %d", head, seen), nil
	}
	if id.Home != "" && home != "" && home != id.Home {
		return fmt.Sprintf("the database is not the one the cluster record was written in (identity %s, recorded %s): restored from a dump?", home, id.Home), nil
	}
	if m, ok := w.read(); ok && m.Epoch == id.Epoch && m.Head > head {
		return fmt.Sprintf("this node read the revocation log up to %d (%s) but the database's ends at %d", m.Head, w.path, head), nil
	}
	return "", nil
}

// resetAfterRestore applies the restore policy once restoreEvidence found
// a restore: a new epoch, and with the cutoff policy the end of everything
// issued before.
func resetAfterRestore(ctx context.Context, st restoreStore, id store.ClusterInfo, home, why string, rc restoreCheck, now time.Time, log *slog.Logger) (store.ClusterInfo, error) {
	cutoff := rc.policy != AfterRestoreKeep
	r := store.RestoreReset{OldEpoch: id.Epoch, Epoch: newEpoch(), Home: home, Now: now, Cutoff: cutoff, Keep: rc.keep,
		Actor: store.Actor{By: "system", Reason: "database restored from a backup: " + why, Entity: "system"}}
	info, did, err := st.ResetAfterRestore(ctx, r)
	if err != nil {
		return id, fmt.Errorf("reset after a restore: %w", err)
	}
	if !did.Applied {
		log.Info("the database was restored; another node has reset the cluster already", "epoch", info.Epoch)
		return info, nil
	}
	if !cutoff {
		log.Warn("the database was restored from a backup ("+why+"); --after-restore=keep: "+
			"the cluster has a new epoch (verifiers start over) and everything in the database stays valid, "+
			"including revocations the backup missed; restart the other nodes", "was", id.Epoch, "epoch", info.Epoch)
		return info, nil
	}
	names := make([]string, 0, len(did.APIKeys))
	for _, k := range did.APIKeys {
		names = append(names, k.Name+" ("+k.ID+")")
	}
	log.Warn("the database was restored from a backup ("+why+"): revocations made after the backup are lost, so everything "+
		"issued before now is ended: every session (users sign in again), every access token (new signing key), every API key "+
		"this node is not configured with (create new ones with 'tegata apikeys create'); the cluster has a new epoch, "+
		"verifiers start over; restart the other nodes. To keep everything instead (a restore known to have lost nothing), "+
		"start with --after-restore=keep", "sessions_ended", did.Sessions, "signing_keys_replaced", did.Keys,
		"api_keys_revoked", strings.Join(names, ", "), "was", id.Epoch, "epoch", info.Epoch)
	return info, nil
}

// witnessFile is the name of the witness in the data directory.
const witnessFile = "cluster-head"

// witness is this node's memory of the revocation log, kept in the data
// directory beside the database: the cluster's epoch and the highest log
// head it saw. The log's head never goes back, so a database whose head
// is behind it for the same epoch was restored. It is written at start,
// every few seconds while the head moves, and at shutdown.
type witness struct {
	path string
	mu   sync.Mutex
	last mark
}

// mark is what the witness file holds.
type mark struct {
	Epoch string `json:"epoch"`
	Head  int64  `json:"head"`
}

// newWitness returns the witness of a data directory, or nil without one.
func newWitness(d *dataDir) *witness {
	if d == nil {
		return nil
	}
	return &witness{path: d.file(witnessFile)}
}

// read returns the mark recorded, if there is a readable one.
func (w *witness) read() (mark, bool) {
	if w == nil {
		return mark{}, false
	}
	b, err := os.ReadFile(w.path)
	var m mark
	if err != nil || json.Unmarshal(b, &m) != nil || m.Epoch == "" {
		return mark{}, false
	}
	return m, true
}

// note records the store's head for epoch, if it changed. A failure is
// logged, not returned: the witness only adds a way to notice a restore.
func (w *witness) note(ctx context.Context, st store.Log, epoch string, log *slog.Logger) {
	if w == nil {
		return
	}
	head, err := st.Head(ctx)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := mark{Epoch: epoch, Head: head}
	if m == w.last {
		return
	}
	if err := writeMark(w.path, m); err != nil {
		log.Warn("cannot record the log head in the data directory (it helps notice a restored database)", "err", err)
		return
	}
	w.last = m
}

// run notes the head every witnessEvery of clk until ctx ends.
func (w *witness) run(ctx context.Context, clk clock.Clock, st store.Log, epoch string, log *slog.Logger) {
	if w == nil {
		return
	}
	t := clock.NewTicker(clk, witnessEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.note(ctx, st, epoch, log)
		}
	}
}

// writeMark replaces path with m as JSON, never leaving a partly
// written file.
func writeMark(path string, m mark) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".new-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// witnessEvery is how often a running node notes the log's head.
const witnessEvery = 5 * time.Second

// configuredKeys returns the hashes of the API key secrets given.
func configuredKeys(secrets ...string) [][32]byte {
	var out [][32]byte
	for _, s := range secrets {
		if s != "" {
			out = append(out, authority.HashSecret(s))
		}
	}
	return out
}
