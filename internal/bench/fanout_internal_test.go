package bench

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
)

// childSetup starts this test binary as tegata: TestMain (main_test.go)
// runs the tegata command when TEGATA_BENCH_TEST_CHILD=1.
func childSetup(t *testing.T) Setup {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	return Setup{Binary: bin, Env: []string{"TEGATA_BENCH_TEST_CHILD=1"}}
}

// sqliteRun starts one SQLite node (no gates) and a fan-out run on it that
// makes revocations revocations per phase; the test's cleanup stops both
// (the verifiers through f.cancel, which the test sets when it starts any).
func sqliteRun(ctx context.Context, t *testing.T, revocations int) *fanoutRun {
	t.Helper()
	cfg := FanoutConfig{Setup: childSetup(t), Revocations: revocations, Rate: 100, Bulk: -1}
	c, err := startSQLiteCluster(ctx, cfg.Setup, 0)
	if err != nil {
		t.Fatalf("startSQLiteCluster() = %v", err)
	}
	f := &fanoutRun{cfg: cfg, c: c, backend: "sqlite", cancel: func() {}}
	t.Cleanup(func() {
		f.stop()
		c.close()
	})
	return f
}

func TestFanoutFailedCallNamesNodeStateAndLog(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := sqliteRun(ctx, t, 1)
	node := f.c.nodes[0]
	if err := node.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill the node: %v", err)
	}
	<-node.done

	_, _, _, err := f.revocations(ctx, 1, 0, spent{})
	if err == nil {
		t.Fatal("revocations() on a killed node = nil error")
	}
	for _, want := range []string{"authority node (SQLite)", "exited, signal: killed", "stderr in " + node.log} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("revocations() on a killed node = %q, want it to contain %q", err, want)
		}
	}
	t.Logf("revocations() on a killed node = %v", err)
	f.c.keep = true
	f.c.close()
	defer os.RemoveAll(f.c.dir)
	log, err := os.ReadFile(node.log)
	if err != nil {
		t.Fatalf("the node's log after a failed run: %v", err)
	}
	if !strings.Contains(string(log), "msg=listening url=") {
		t.Errorf("the node's log %s lacks its first lines:\n%s", node.log, log)
	}
}

func TestFanoutCountsReconnects(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := sqliteRun(ctx, t, 2)
	l, err := newLink(strings.TrimPrefix(f.c.urls[0], "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	f.c.urls = []string{"http://" + l.addr()} // the verifiers follow the node through l
	vctx, stop := context.WithCancel(ctx)
	f.cancel = stop
	mark := f.ends.n.Load()
	f.grow(vctx, 3)
	for _, v := range f.vs {
		if err := v.c.WaitFor(ctx, func(st feed.State) bool { return st.Synced && st.Connected }); err != nil {
			t.Fatalf("verifier %s not connected: %v", v.c.Follower.Name, err)
		}
	}
	var p FanoutPoint
	if got := f.reconnects(&p, "connect", mark); got != "no stream reconnects" || p.Reconnects != nil {
		t.Fatalf("reconnects while connecting = %q, %v, want none", got, p.Reconnects)
	}
	if b, _ := json.Marshal(p); strings.Contains(string(b), "reconnects") {
		t.Errorf("a point without reconnects marshals to %s, want no reconnects field", b)
	}

	mark = f.ends.n.Load()
	l.cut()
	// Every verifier must hold the revocations, so each has reconnected.
	if _, _, _, err := f.revocations(ctx, 3, 0, spent{}); err != nil {
		t.Fatalf("revocations() after the cut = %v", err)
	}
	f.reconnects(&p, "revocations", mark)
	t.Logf("after the cut: %s", f.reconnects(&FanoutPoint{}, "revocations", mark))
	if n := p.Reconnects["revocations"]; n < int64(len(f.vs)) {
		t.Errorf("reconnects after cutting %d streams = %d, want at least %d", len(f.vs), n, len(f.vs))
	}
	if b, _ := json.Marshal(p); !strings.Contains(string(b), `"reconnects":{"revocations":`) {
		t.Errorf("a point with reconnects marshals to %s, want them by phase", b)
	}
}
