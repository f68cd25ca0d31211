package server_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/postgres"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestRestoredLogRenewsEpoch: a node that starts on a log behind the heads
// nodes recorded (a database restored from a backup, whose epoch is the
// one it had) gives the cluster a new epoch, once, so verifiers start over
// instead of resuming at positions the restored log reuses for other
// entries.
func TestRestoredLogRenewsEpoch(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, sub := range []string{"a", "b"} {
		if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: sub, Scope: "sessions"}); err != nil {
			t.Fatal(err)
		}
	}
	before := epochOf(t, e)
	// A node recorded having read the log up to 50: before the database
	// was restored to a copy whose log ends at 2.
	gone := store.NodeRecord{ID: "gone", URL: "http://old", Head: 50, Safe: 50, Version: 1,
		UpdatedAt: e.clock.Now().Add(-time.Minute), ExpiresAt: e.clock.Now().Add(-50 * time.Second)}
	if _, err := e.Store.SaveFollowers(ctx(t), gone, nil); err != nil {
		t.Fatal(err)
	}
	dir := e.dir
	shutdown(t, e.Running)
	restart := func() *env {
		t.Helper()
		return start(t, func(c *server.Config) { c.DataDir = dir })
	}
	e2 := restart()
	after := epochOf(t, e2)
	if after == before || !strings.Contains(e2.logs.String(), "the database was restored from a backup") {
		t.Fatalf("epoch after a start on a restored log = %q (was %q), log:\n%s\nwant a new epoch and a warning", after, before, e2.logs.String())
	}
	shutdown(t, e2.Running)
	if again := epochOf(t, restart()); again != after {
		t.Errorf("epoch at the next start = %q, want %q kept: the stale record went with the renewal", again, after)
	}
}

// TestForgedPositionKeepsEpoch: a position a feed key reports far beyond
// the log's head is not recorded beyond the node's own head, and only
// nodes' records count when a node starts, so a forged report cannot make
// a start look like a restored database and renew the epoch (every
// verifier replaying the log).
func TestForgedPositionKeepsEpoch(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "a", Scope: "sessions"}); err != nil {
		t.Fatal(err)
	}
	before := epochOf(t, e)
	feedKey := createKey(t, e.admin, "feed", authority.RoleFeed)
	s := openFeedAs(t, e.URL, feedKey.Key, "mallory")
	if !s.open() {
		t.Fatalf("stream: %d %s", s.status, s.body)
	}
	body := fmt.Sprintf(`{"id":"mallory","stale_after_ms":60000,"position":1000000000,"epoch":%q,"token":%q}`, before, s.token)
	if status, b := postAs(t, e.URL+"/v1/feed/position", feedKey.Key, "application/json", body); status != http.StatusOK {
		t.Fatalf("report = %d %s, want 200", status, b)
	}
	testtime.Eventually(t, 10*time.Second, "the verifier's record saved", func() error {
		vs, err := e.Store.FeedVerifiers(ctx(t), time.Time{})
		if err != nil {
			return err
		}
		for _, v := range vs {
			if v.ID == "mallory" {
				if v.Position > 1 {
					t.Fatalf("record of a report of position 1000000000 on a log at 1 = %d, want at most the head", v.Position)
				}
				return nil
			}
		}
		return fmt.Errorf("no record of mallory among %d", len(vs))
	})
	s.cancel()
	dir := e.dir
	shutdown(t, e.Running)
	e2 := start(t, func(c *server.Config) { c.DataDir = dir })
	if after := epochOf(t, e2); after != before || strings.Contains(e2.logs.String(), "restored from a backup") {
		t.Fatalf("epoch after a forged report and a restart = %q (was %q), log:\n%s\nwant it kept", after, before, e2.logs.String())
	}
}

// TestNewEpochFlag: tegata serve --new-epoch renews the epoch, and refuses
// while another node runs on the database: one whose record is live and
// was not marked stopped at a clean shutdown (a node killed), until that
// record lapses. A node shut down cleanly holds nothing up.
func TestNewEpochFlag(t *testing.T) {
	t.Parallel()
	dsn := migrated.Schema(t)
	master, admin := base64.StdEncoding.EncodeToString(make([]byte, 32)), authority.NewAPIKey()
	clk := testtime.NewClock(time.Now())
	startNode := func(renew bool) (*server.Running, error) {
		return server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DB: dsn, DataDir: t.TempDir(),
			Issuer: "https://auth.test", MasterKey: master, APIKey: admin, NewEpoch: renew,
			Clock: clk, Logger: quietLog()})
	}
	a, err := startNode(false)
	if err != nil {
		t.Fatal(err)
	}
	first := epochAt(t, a.URL)
	if _, err := startNode(true); err == nil || !strings.Contains(err.Error(), "stop every node first") {
		t.Fatalf("Start(--new-epoch) with another node running = %v, want a refusal saying to stop every node first", err)
	}
	shutdown(t, a) // its record stays live for seconds, marked stopped
	b, err := startNode(true)
	if err != nil {
		t.Fatalf("Start(--new-epoch) right after the other node shut down cleanly = %v", err)
	}
	renewed := epochAt(t, b.URL)
	if renewed == first {
		t.Fatalf("epoch after --new-epoch = %q, want a new one", renewed)
	}
	shutdown(t, b)

	// A node killed leaves its record live and unmarked.
	st, err := postgres.Open(ctx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	killed := store.NodeRecord{ID: "killed", URL: "http://killed.test", Version: 1, UpdatedAt: clk.Now(), ExpiresAt: clk.Now().Add(12 * time.Second)}
	if _, err := st.SaveFollowers(ctx(t), killed, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := startNode(true); err == nil || !strings.Contains(err.Error(), "http://killed.test") {
		t.Fatalf("Start(--new-epoch) with a killed node's record live = %v, want a refusal naming it", err)
	}
	clk.Add(13 * time.Second) // the killed node's record lapses
	c, err := startNode(true)
	if err != nil {
		t.Fatalf("Start(--new-epoch) once the killed node's record lapsed = %v", err)
	}
	defer shutdown(t, c)
	again := epochAt(t, c.URL)
	d, err := startNode(false)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, d)
	if got := epochAt(t, d.URL); got != again || again == renewed {
		t.Errorf("epoch of a node started after = %q, want %q (and not %q)", got, again, renewed)
	}
}
