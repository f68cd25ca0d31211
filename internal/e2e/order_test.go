package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// seqRecorder is a feed consumer that keeps the seqs it was given, in the
// order it was given them.
type seqRecorder struct {
	mu   sync.Mutex
	seqs []int64
}

func (r *seqRecorder) apply(e revocation.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = append(r.seqs, e.Seq)
	return nil
}

func (r *seqRecorder) got() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seqs)
}

// TestBatchedRevocationsArriveInOrder: revocations of every kind (one
// session, one subject, bulk calls mixing both) made concurrently on two
// nodes, which commit them in batches, reach feed clients following either
// node, one of them through a stream cut again and again, each entry once
// and in strictly increasing seq order; the entries they hold are exactly
// the ones acknowledged. Group commit must not change the log's order:
// seqs are handed out in commit order, with no gap filled in later.
func TestBatchedRevocationsArriveInOrder(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	cut := newCutProxy(t, c.addrs[1])
	followers := map[string]*feed.Client{
		"follows A":         {URLs: []string{c.url(0)}},
		"follows B":         {URLs: []string{c.url(1)}},
		"follows B via cut": {URLs: []string{cut.URL()}},
	}
	recs := map[string]*seqRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for name, f := range followers {
		rec := &seqRecorder{}
		recs[name] = rec
		f.APIKey, f.Apply, f.Logger = c.feedKey, rec.apply, quietLogger()
		f.RetryMin, f.RetryMax = 5*time.Millisecond, 50*time.Millisecond
		wg.Go(func() { _ = f.Run(ctx) })
	}
	const n = 240
	toks := c.sessions(n, "order-")

	stopCutting := cut.cutRepeatedly(15 * time.Millisecond)
	var mu sync.Mutex
	var acked []int64
	ack := func(seqs ...int64) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range seqs {
			if s != 0 {
				acked = append(acked, s)
			}
		}
	}
	parallel(t, n/4, 32, func(k int) error {
		node := c.client(k % 2)
		i := 4 * k
		r1, err := node.RevokeSession(context.Background(), client.SessionRevocation{SessionID: toks[i].SessionID})
		if err != nil {
			return err
		}
		r2, err := node.RevokeSubject(context.Background(), client.SubjectRevocation{Subject: fmt.Sprint("order-", i+1)})
		if err != nil {
			return err
		}
		bulk, err := node.RevokeMany(context.Background(), client.BulkRevocation{Items: []client.RevokeItem{
			{SessionID: toks[i+2].SessionID}, {Subject: fmt.Sprint("order-", i+3), Scope: client.ScopeAccess},
			{Subject: fmt.Sprint("nobody-", k)},
		}})
		if err != nil {
			return err
		}
		ack(seqOf(r1), seqOf(r2))
		for _, o := range bulk.Items {
			ack(o.Seq)
		}
		return nil
	})
	cuts := stopCutting()
	for i, node := range c.nodes {
		if ws, ok := node.Store.(interface{ WriteStats() (int64, int64) }); ok {
			writes, batches := ws.WriteStats()
			t.Logf("node %d committed %d writes in %d transactions", i, writes, batches)
		}
	}
	if cuts == 0 {
		t.Fatal("no stream was cut during the revocations: the test did not test resumption")
	}
	slices.Sort(acked)
	if want := int64(len(acked)); acked[len(acked)-1] != want || acked[0] != 1 {
		t.Fatalf("acknowledged seqs run from %d to %d for %d revocations, want 1 to %d", acked[0], acked[len(acked)-1], len(acked), want)
	}
	for name, rec := range recs {
		eventually(t, 20*time.Second, name+" to hold every entry", func() error {
			if got := len(rec.got()); got < len(acked) {
				return fmt.Errorf("%d of %d entries", got, len(acked))
			}
			return nil
		})
		got := rec.got()
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("%s: seq %d came after seq %d", name, got[i], got[i-1])
			}
		}
		if !slices.Equal(got, acked) {
			t.Fatalf("%s applied %d entries, not exactly the %d acknowledged", name, len(got), len(acked))
		}
	}
}

func seqOf(r client.Revocation) int64 {
	if r.Entry == nil {
		return 0
	}
	return r.Entry.Seq
}
