package main_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/revocation"
)

func TestKill9DuringBatchedRevocations(t *testing.T) {
	t.Parallel()
	kill9DuringBatches(t, nil)
}

func TestKill9DuringBatchedRevocationsPostgres(t *testing.T) {
	t.Parallel()
	kill9DuringBatches(t, []string{"--db", migrated.Schema(t)})
}

// kill9DuringBatches kills the authority with SIGKILL while many clients
// revoke at once (single sessions, single subjects, bulk calls of both), so
// that batches are in flight at the kill, then checks on the restarted
// authority that every acknowledged revocation is in the log, under the seq
// it was acknowledged with, that the log has no gap, and that acknowledged
// session revocations still hold.
func kill9DuringBatches(t *testing.T, args []string) {
	dir := t.TempDir()
	key := "tgk_" + strings.Repeat("b", 43)
	env := []string{"TEGATA_API_KEY=" + key, "TEGATA_MASTER_KEY=", "TEGATA_RATE_LIMITS=off"}
	p := serveArgs(t, dir, args, env...)
	c := &client.Client{BaseURL: p.URL(), APIKey: key}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	const workers = 16
	sessions := make([][]client.Tokens, workers)
	for w := range workers {
		for i := range 8 {
			tk, err := c.CreateSession(ctx, client.SessionRequest{Subject: fmt.Sprintf("crash-%d-%d", w, i)})
			if err != nil {
				t.Fatal(err)
			}
			sessions[w] = append(sessions[w], tk)
		}
	}
	var mu sync.Mutex
	acked := map[int64]string{}      // seq → what it revokes
	revokedSIDs := map[string]bool{} // acknowledged session revocations
	enough := make(chan struct{})
	record := func(seq int64, what string) {
		mu.Lock()
		defer mu.Unlock()
		acked[seq] = what
		if len(acked) == 400 {
			close(enough)
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				if err := revokeOnce(ctx, c, w, i, sessions[w], record, &mu, revokedSIDs); err != nil {
					var ce *client.Error
					if errors.As(err, &ce) {
						t.Errorf("worker %d: refused before the crash: %v", w, err)
					}
					return // connection refused: the server is gone
				}
			}
		})
	}
	select {
	case <-enough:
	case <-ctx.Done():
		t.Fatal("400 revocations were not acknowledged in time")
	}
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown path runs
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	wg.Wait()

	p2 := serveArgs(t, dir, args, env...)
	c.BaseURL = p2.URL()
	log := readLog(t, ctx, c.BaseURL, key)
	for seq := int64(1); seq <= int64(len(log)); seq++ {
		if _, ok := log[seq]; !ok {
			t.Fatalf("the log after the crash has %d entries but no seq %d", len(log), seq)
		}
	}
	for seq, what := range acked {
		e, ok := log[seq]
		if !ok || describe(e) != what {
			t.Errorf("acknowledged revocation %d (%s) after the crash: %+v (found %v)", seq, what, e, ok)
		}
	}
	for w := range workers {
		for _, tk := range sessions[w] {
			if _, err := c.Refresh(ctx, tk.RefreshToken); revokedSIDs[tk.SessionID] && err == nil {
				t.Errorf("session %s: its revocation was acknowledged before the crash, but refresh works after it", tk.SessionID)
			}
		}
	}
	t.Logf("%d revocations acknowledged before the kill; the log holds %d", len(acked), len(log))
}

// revokeOnce makes worker w's i-th revocation call: a session, a subject,
// or a bulk call of both, in turn.
func revokeOnce(ctx context.Context, c *client.Client, w, i int, sessions []client.Tokens,
	record func(int64, string), mu *sync.Mutex, revokedSIDs map[string]bool) error {
	switch i % 3 {
	case 0:
		tk := sessions[(i/3)%len(sessions)]
		r, err := c.RevokeSession(ctx, client.SessionRevocation{SessionID: tk.SessionID})
		if err == nil && r.Entry != nil {
			record(r.Entry.Seq, "session "+tk.SessionID)
		}
		if err == nil {
			mu.Lock()
			revokedSIDs[tk.SessionID] = true
			mu.Unlock()
		}
		return err
	case 1:
		sub := fmt.Sprintf("single-%d-%d", w, i)
		r, err := c.RevokeSubject(ctx, client.SubjectRevocation{Subject: sub})
		if err == nil {
			record(r.Entry.Seq, "subject "+sub)
		}
		return err
	}
	items := make([]client.RevokeItem, 20)
	for j := range items {
		items[j] = client.RevokeItem{Subject: fmt.Sprintf("bulk-%d-%d-%d", w, i, j)}
	}
	out, err := c.RevokeMany(ctx, client.BulkRevocation{Items: items, Reason: "crash test"})
	for j, o := range out.Items {
		record(o.Seq, "subject "+items[j].Subject)
	}
	return err
}

// readLog follows the feed of the authority at base until it is synced and
// returns every entry by seq.
func readLog(t *testing.T, ctx context.Context, base, key string) map[int64]revocation.Entry {
	t.Helper()
	var mu sync.Mutex
	log := map[int64]revocation.Entry{}
	f := &feed.Client{URLs: []string{base}, APIKey: key, Apply: func(e revocation.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		log[e.Seq] = e
		return nil
	}}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(fctx) }()
	err := f.WaitSynced(fctx)
	stop()
	<-done
	if err != nil {
		t.Fatalf("reading the log after the crash: %v", err)
	}
	return log
}

func describe(e revocation.Entry) string {
	if e.Kind == revocation.KindSession {
		return "session " + e.Session
	}
	return "subject " + e.Subject
}
