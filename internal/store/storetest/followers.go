package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

func testClaimCluster(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := store.ClusterInfo{Issuer: "https://auth.example", Epoch: "epoch-1", CreatedAt: t0}
	got, err := s.ClaimCluster(ctx, first)
	if err != nil {
		t.Fatalf("ClaimCluster(first) = %v", err)
	}
	if got.Issuer != first.Issuer || got.Epoch != first.Epoch || !got.CreatedAt.Equal(t0) {
		t.Fatalf("ClaimCluster(first) = %+v, want %+v", got, first)
	}
	again, err := s.ClaimCluster(ctx, store.ClusterInfo{Issuer: "https://other.example", Epoch: "epoch-2", CreatedAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatalf("ClaimCluster(second) = %v", err)
	}
	if !reflect.DeepEqual(again, got) {
		t.Errorf("ClaimCluster(second) = %+v, want the first claim %+v", again, got)
	}
	if _, err := s.ClaimCluster(ctx, store.ClusterInfo{Issuer: "x"}); err == nil {
		t.Errorf("ClaimCluster(no epoch) = nil error, want one")
	}
}

// testClaimClusterConcurrent: nodes starting at once on an empty database
// agree on one identity.
func testClaimClusterConcurrent(t *testing.T, s store.Store) {
	const n = 8
	got := make([]store.ClusterInfo, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.ClaimCluster(context.Background(), store.ClusterInfo{
				Issuer: fmt.Sprint("https://node", i), Epoch: fmt.Sprint("epoch-", i), CreatedAt: t0})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("ClaimCluster #%d = %v", i, errs[i])
		}
		if !reflect.DeepEqual(got[i], got[0]) {
			t.Errorf("ClaimCluster #%d = %+v, #0 = %+v: nodes disagree", i, got[i], got[0])
		}
	}
}

// testRenewEpoch: a renewal replaces the epoch once (a second one from the
// same old epoch finds it renewed already) and drops the records of
// positions beyond the log's head.
func testRenewEpoch(t *testing.T, s store.Store) {
	ctx := context.Background()
	first, err := s.ClaimCluster(ctx, store.ClusterInfo{Issuer: "https://auth.example", Epoch: "epoch-1", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		revokeSubject(t, s, fmt.Sprint("user", i), t0)
	}
	saveFollowers(t, s, store.NodeRecord{ID: "behind", Head: 3, Version: 1, UpdatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		verifierRecord("v-ok", "behind", 3, t0))
	saveFollowers(t, s, store.NodeRecord{ID: "ahead", Head: 9, Version: 1, UpdatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		verifierRecord("v-ahead", "ahead", 8, t0))
	got, err := s.RenewEpoch(ctx, "epoch-1", "epoch-2")
	if err != nil || got.Epoch != "epoch-2" || got.Issuer != first.Issuer || !got.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("RenewEpoch(epoch-1, epoch-2) = %+v, %v; want epoch-2, issuer and creation kept", got, err)
	}
	if again, err := s.RenewEpoch(ctx, "epoch-1", "epoch-3"); err != nil || again.Epoch != "epoch-2" {
		t.Errorf("RenewEpoch(epoch-1, epoch-3) after a renewal = %+v, %v; want epoch-2 kept", again, err)
	}
	if c, err := s.ClaimCluster(ctx, store.ClusterInfo{Issuer: "x", Epoch: "y"}); err != nil || c.Epoch != "epoch-2" {
		t.Errorf("ClaimCluster after RenewEpoch = %+v, %v; want epoch-2", c, err)
	}
	nodes, err := s.FeedNodes(ctx, time.Time{})
	if err != nil || len(nodes) != 1 || nodes[0].ID != "behind" {
		t.Errorf("FeedNodes after RenewEpoch = %+v, %v; want behind only (ahead's head 9 > log head 3)", nodes, err)
	}
	vs, err := s.FeedVerifiers(ctx, time.Time{})
	if err != nil || len(vs) != 1 || vs[0].ID != "v-ok" {
		t.Errorf("FeedVerifiers after RenewEpoch = %+v, %v; want v-ok only", vs, err)
	}
}

func verifierRecord(id, node string, pos int64, heard time.Time) store.VerifierRecord {
	return store.VerifierRecord{ID: id, Name: "name " + id, Host: "host-" + id, Version: "v1", Node: node,
		Position: pos, Ready: true, StaleAfter: 10 * time.Second, HeardAt: heard}
}

// testSaveFollowersOthers: SaveFollowers returns the other nodes' records
// live at the saved record's UpdatedAt, by ID, not the saved node's own.
func testSaveFollowersOthers(t *testing.T, s store.Store) {
	ctx := context.Background()
	node := func(id string, expires time.Duration) store.NodeRecord {
		return store.NodeRecord{ID: id, URL: "http://" + id, Safe: 3, Head: 4, Followers: 1, Version: 1,
			UpdatedAt: t0, ExpiresAt: t0.Add(expires)}
	}
	c, b, gone := node("node-c", time.Minute), node("node-b", time.Minute), node("node-gone", 5*time.Second)
	for _, n := range []store.NodeRecord{c, b, gone} {
		saveFollowers(t, s, n)
	}
	a := node("node-a", time.Minute)
	a.UpdatedAt = t0.Add(10 * time.Second)
	got, err := s.SaveFollowers(ctx, a, []store.VerifierRecord{verifierRecord("v1", "node-a", 3, a.UpdatedAt)})
	if err != nil {
		t.Fatalf("SaveFollowers(node-a) = %v", err)
	}
	if want := []store.NodeRecord{b, c}; !reflect.DeepEqual(got, want) {
		t.Errorf("SaveFollowers(node-a at t0+10s) = %+v, want %+v (not node-a, not node-gone, which expired at t0+5s)", got, want)
	}
	if ns, vs := followers(t, s, a.UpdatedAt, t0); len(ns) != 3 || vs["v1"].Node != "node-a" {
		t.Errorf("after SaveFollowers(node-a): nodes %+v, v1 %+v; want 3 nodes and v1 saved", ns, vs["v1"])
	}
}

func saveFollowers(t *testing.T, s store.Store, n store.NodeRecord, vs ...store.VerifierRecord) {
	t.Helper()
	if _, err := s.SaveFollowers(context.Background(), n, vs); err != nil {
		t.Fatalf("SaveFollowers(%s, %d verifiers) = %v", n.ID, len(vs), err)
	}
}

func followers(t *testing.T, s store.Store, now, heardAfter time.Time) ([]store.NodeRecord, map[string]store.VerifierRecord) {
	t.Helper()
	ns, err := s.FeedNodes(context.Background(), now)
	if err != nil {
		t.Fatalf("FeedNodes() = %v", err)
	}
	vs, err := s.FeedVerifiers(context.Background(), heardAfter)
	if err != nil {
		t.Fatalf("FeedVerifiers() = %v", err)
	}
	m := map[string]store.VerifierRecord{}
	for _, v := range vs {
		m[v.ID] = v
	}
	return ns, m
}

func testFollowers(t *testing.T, s store.Store) {
	a := store.NodeRecord{ID: "node-a", URL: "http://a", Advertise: "https://a.example", Safe: 5, Head: 7, Followers: 2, Version: 1, UpdatedAt: t0, ExpiresAt: t0.Add(15 * time.Second)}
	saveFollowers(t, s, a, verifierRecord("v1", "node-a", 5, t0), verifierRecord("v2", "node-a", 7, t0))
	ns, vs := followers(t, s, t0, t0.Add(-time.Minute))
	if len(ns) != 1 || ns[0] != a {
		t.Fatalf("Followers nodes = %+v, want [%+v]", ns, a)
	}
	if got, want := vs["v1"], verifierRecord("v1", "node-a", 5, t0); got != want {
		t.Errorf("Followers v1 = %+v, want %+v", got, want)
	}

	// A newer version of the node replaces it; an older one does not.
	a2 := a
	a2.Safe, a2.Version, a2.UpdatedAt, a2.Stopped = 7, 2, t0.Add(time.Second), true
	saveFollowers(t, s, a2)
	saveFollowers(t, s, a)
	if ns, _ := followers(t, s, t0, t0); len(ns) != 1 || ns[0] != a2 {
		t.Errorf("after saving versions 2 then 1: nodes = %+v, want [%+v]", ns, a2)
	}

	// v1 moves to node b; a's later write of its older record loses.
	b := store.NodeRecord{ID: "node-b", URL: "http://b", Safe: 7, Head: 7, Version: 1, UpdatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	saveFollowers(t, s, b, verifierRecord("v1", "node-b", 7, t0.Add(2*time.Second)))
	saveFollowers(t, s, a2, verifierRecord("v1", "node-a", 5, t0.Add(time.Second)))
	if _, vs := followers(t, s, t0, t0.Add(-time.Minute)); vs["v1"].Node != "node-b" || vs["v1"].Position != 7 {
		t.Errorf("v1 after moving to node-b = %+v, want node-b's record at 7", vs["v1"])
	}

	// Expired nodes and verifiers not heard since heardAfter are left out.
	ns, vs = followers(t, s, t0.Add(20*time.Second), t0.Add(time.Second))
	if len(ns) != 1 || ns[0].ID != "node-b" {
		t.Errorf("nodes at t0+20s = %+v, want node-b only", ns)
	}
	if _, ok := vs["v2"]; ok || len(vs) != 1 {
		t.Errorf("verifiers heard after t0+1s = %v, want v1 only", vs)
	}

	n, err := s.PruneFollowers(context.Background(), t0.Add(20*time.Second))
	if err != nil || n != 3 {
		t.Errorf("PruneFollowers(t0+20s) = %d, %v; want 3 (node-a, v1, v2)", n, err)
	}
	if ns, vs := followers(t, s, t0, time.Time{}); len(ns) != 1 || len(vs) != 0 {
		t.Errorf("after pruning: %d nodes, %d verifiers; want 1, 0", len(ns), len(vs))
	}
}

// testFollowersMany: a node with thousands of verifiers saves them in one
// call (several statements inside).
func testFollowersMany(t *testing.T, s store.Store) {
	node := store.NodeRecord{ID: "big", URL: "http://big", Version: 1, UpdatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	vs := make([]store.VerifierRecord, 1234)
	for i := range vs {
		vs[i] = verifierRecord(fmt.Sprintf("v%04d", i), "big", int64(i), t0)
	}
	saveFollowers(t, s, node, vs...)
	_, got := followers(t, s, t0, t0.Add(-time.Second))
	if len(got) != len(vs) {
		t.Fatalf("Followers() = %d verifiers, want %d", len(got), len(vs))
	}
	if got["v1233"].Position != 1233 {
		t.Errorf("v1233 = %+v, want position 1233", got["v1233"])
	}
}

func testBroadcaster(t *testing.T, s store.Store) {
	b, ok := s.(store.Broadcaster)
	if !ok {
		t.Skipf("%T does not implement store.Broadcaster", s)
	}
	msgs, stop := b.Listen()
	defer stop()
	ctx := context.Background()
	for _, m := range []string{"one", "two"} {
		if err := b.Broadcast(ctx, m); err != nil {
			t.Fatalf("Broadcast(%q) = %v", m, err)
		}
	}
	for _, want := range []string{"one", "two"} {
		if got := waitMessage(t, msgs); got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
	}
	if err := b.Broadcast(ctx, string(make([]byte, store.MaxBroadcast+1))); err == nil {
		t.Errorf("Broadcast(%d bytes) = nil error, want one", store.MaxBroadcast+1)
	}
}

// waitMessage returns the next message that is not "" (a reconnect).
func waitMessage(t *testing.T, msgs <-chan string) string {
	t.Helper()
	deadline := time.After(WakeTimeout)
	for {
		select {
		case m := <-msgs:
			if m != "" {
				return m
			}
		case <-deadline:
			t.Fatalf("no broadcast message within %v", WakeTimeout)
		}
	}
}
