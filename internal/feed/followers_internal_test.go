package feed

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

var h0 = time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return h0.Add(time.Duration(s * float64(time.Second))) }

func TestHistory(t *testing.T) {
	t.Parallel()
	h := history{base: 3, maxStale: 10 * time.Second}
	h.add(at(1), 5)
	h.add(at(2), 5) // no progress: not a point
	h.add(at(3), 9)
	tests := []struct {
		t    time.Time
		want int64
	}{{at(0), 3}, {at(1), 5}, {at(2.5), 5}, {at(3), 9}, {at(100), 9}}
	for _, tt := range tests {
		if got := h.at(tt.t); got != tt.want {
			t.Errorf("at(%s) = %d, want %d", tt.t.Sub(h0), got, tt.want)
		}
	}
	if got, ok := h.passed(5); !ok || !got.Equal(at(3)) {
		t.Errorf("passed(5) = %s, %v; want %s", got.Sub(h0), ok, at(3).Sub(h0))
	}
	if _, ok := h.passed(9); ok {
		t.Errorf("passed(9) = true, want false: the head never went above 9")
	}
	// Pruning keeps what a query within the longest bound needs, and only
	// understates the past.
	h.prune(at(40))
	if got := h.at(at(30)); got != 9 {
		t.Errorf("after prune, at(30s) = %d, want 9", got)
	}
	if got := h.at(at(0.5)); got > 3 {
		t.Errorf("after prune, at(0.5s) = %d, want at most the start head 3", got)
	}
}

// TestHistoryThinUnderstates: thinning a long history never says a head
// was reached earlier than it was.
func TestHistoryThinUnderstates(t *testing.T) {
	t.Parallel()
	var h history
	for i := range historyMaxPoint + 10 {
		h.add(at(float64(i)/1000), int64(i+1))
	}
	if len(h.pts) > historyMaxPoint {
		t.Fatalf("%d points kept, want at most %d", len(h.pts), historyMaxPoint)
	}
	for i := 0; i < historyMaxPoint+10; i += 97 {
		if got, truth := h.at(at(float64(i)/1000)), int64(i+1); got > truth {
			t.Fatalf("at(%d ms) = %d, more than the true %d", i, got, truth)
		}
	}
	last := int64(historyMaxPoint + 10)
	if got := h.at(at(1e6)); got != last {
		t.Errorf("at(far future) = %d, want the last head %d", got, last)
	}
}

func fol(id string, stale time.Duration) Follower {
	return Follower{ID: id, StaleAfter: stale}
}

// TestSafe walks through the rules that make a follower safe up to a
// position.
func TestSafe(t *testing.T) {
	t.Parallel()
	const stale = 10 * time.Second
	fs := newFollowers(followerLimits{})
	fs.replaced(2) // the hub starts at head 2
	mustConnect(t, fs, fol("a", stale), 0, 2, at(0))
	mustReport(t, fs, fol("b", stale), 2, 2, at(0))

	// a registered at head 2: its floor covers 2 although it said 0.
	if safe, _ := fs.safe(2, at(0)); safe != 2 {
		t.Fatalf("safe(head 2) = %d, want 2 (a's floor)", safe)
	}
	fs.advanced(5, at(1))
	safe, next := fs.safe(5, at(1))
	if safe != 2 {
		t.Fatalf("safe(head 5) with a and b at 2 = %d, want 2", safe)
	}
	if want := at(10).Add(time.Nanosecond); !next.Equal(want) {
		t.Errorf("next = %s, want %s (a and b silent past their bound)", next.Sub(h0), want.Sub(h0))
	}
	mustReport(t, fs, fol("a", stale), 5, 5, at(2))
	mustReport(t, fs, fol("b", stale), 4, 5, at(2))
	if safe, _ := fs.safe(5, at(2)); safe != 4 {
		t.Fatalf("safe with a at 5, b at 4 = %d, want 4", safe)
	}
	// b keeps reporting 4: once the head has been past 4 for longer than
	// b's bound, every lease b could hold names a head above 4.
	mustReport(t, fs, fol("b", stale), 4, 5, at(10.5))
	if safe, _ := fs.safe(5, at(10.5)); safe != 4 {
		t.Fatalf("safe at 10.5s = %d, want 4 (the head passed 4 at 1s, b's bound is 10s)", safe)
	}
	if safe, _ := fs.safe(5, at(11.1)); safe != 5 {
		t.Fatalf("safe at 11.1s = %d, want 5: leases without 5 ran out at 11s", safe)
	}
	if p, n := fs.pending(5, 10, at(10.5)); len(p) != 1 || n != 1 || p[0].ID != "b" {
		t.Errorf("pending(5) at 10.5s = %+v, %d; want b", p, n)
	}
}

// TestSafeSilent: a follower silent past its bound is dropped, whatever
// its position.
func TestSafeSilent(t *testing.T) {
	t.Parallel()
	fs := newFollowers(followerLimits{})
	fs.replaced(0)
	mustReport(t, fs, fol("frozen", 3*time.Second), 0, 0, at(0))
	fs.advanced(7, at(1))
	if safe, _ := fs.safe(7, at(3)); safe != 0 {
		t.Fatalf("safe at 3s = %d, want 0: frozen was heard 3s ago, its bound", safe)
	}
	if safe, _ := fs.safe(7, at(3.001)); safe != 7 {
		t.Fatalf("safe at 3.001s = %d, want 7: frozen has been silent past its bound", safe)
	}
	if got := fs.list(at(3.001)); len(got) != 0 {
		t.Errorf("list after the bound = %+v, want nobody", got)
	}
}

// TestSafeNeverAboveHead: leases granted from now on name the head, so
// nothing above it is safe, even with nobody following.
func TestSafeNeverAboveHead(t *testing.T) {
	t.Parallel()
	fs := newFollowers(followerLimits{})
	fs.replaced(4)
	if safe, next := fs.safe(4, at(0)); safe != 4 || !next.IsZero() {
		t.Errorf("safe with no followers = %d, %v; want the head 4 and no next", safe, next)
	}
}

func TestFollowerCheck(t *testing.T) {
	t.Parallel()
	good := Follower{ID: "abc_DEF-123", Name: "edge 1", Host: "h", Version: "v1", StaleAfter: time.Second}
	if err := good.check(); err != nil {
		t.Fatalf("check(%+v) = %v", good, err)
	}
	bad := []Follower{
		{ID: "", StaleAfter: time.Second},
		{ID: "a b", StaleAfter: time.Second},
		{ID: string(make([]byte, 65)), StaleAfter: time.Second},
		{ID: "a", Name: "tab\there", StaleAfter: time.Second},
		{ID: "a", Host: string([]byte{0xff}), StaleAfter: time.Second},
		{ID: "a"},
		{ID: "a", StaleAfter: 25 * time.Hour},
	}
	for _, f := range bad {
		if err := f.check(); err == nil {
			t.Errorf("check(%+v) = nil, want an error", f)
		}
	}
	// The header round-trips.
	got, epoch, ok, err := parseFollower(good.header("ep"))
	if err != nil || !ok || got != good || epoch != "ep" {
		t.Errorf("parseFollower(header) = %+v, %q, %v, %v; want %+v, ep", got, epoch, ok, err, good)
	}
}

// mustConnect registers a stream of f, with its record's token if it has
// one.
func mustConnect(t *testing.T, fs *followers, f Follower, after, head int64, now time.Time) {
	t.Helper()
	if _, err := fs.connected(f, tokenOf(fs, f.ID), Requester{}, after, head, now); err != nil {
		t.Fatal(err)
	}
}

// mustReport records a report of f, with its record's token; a follower
// without a record opens a stream first (only a stream makes a record).
func mustReport(t *testing.T, fs *followers, f Follower, pos, head int64, now time.Time) {
	t.Helper()
	if tokenOf(fs, f.ID) == "" {
		mustConnect(t, fs, f, pos, head, now)
	}
	if _, _, err := fs.reported(f, tokenOf(fs, f.ID), pos, true, now); err != nil {
		t.Fatal(err)
	}
}

func tokenOf(fs *followers, id string) string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if r := fs.m[id]; r != nil {
		return r.token
	}
	return ""
}

// TestReportToken: once a follower's record exists, streams and reports in
// its name must carry the token it was given.
func TestReportToken(t *testing.T) {
	t.Parallel()
	fs := newFollowers(followerLimits{})
	tok, err := fs.connected(fol("a", time.Second), "", Requester{}, 0, 0, at(0))
	if err != nil || tok == "" {
		t.Fatalf("connected(new) = %q, %v; want a token", tok, err)
	}
	if _, _, err := fs.reported(fol("a", time.Second), "", 9, true, at(0)); !errors.Is(err, errClaimed) {
		t.Errorf("report without the token = %v, want errClaimed", err)
	}
	if _, err := fs.connected(fol("a", time.Second), "guess", Requester{}, 0, 0, at(0)); !errors.Is(err, errClaimed) {
		t.Errorf("stream with a wrong token = %v, want errClaimed", err)
	}
	if got, _, err := fs.reported(fol("a", time.Second), tok, 9, true, at(0)); err != nil || got != tok {
		t.Errorf("report with the token = %q, %v; want %q, nil", got, err, tok)
	}
	if p := fs.list(at(0)); len(p) != 1 || p[0].Position != 9 {
		t.Errorf("list = %+v, want a at 9", p)
	}
}

// BenchmarkSafe10k: what one evaluation of a node with ten thousand
// followers costs (a node waiting for a confirmed revocation makes at most
// one a millisecond).
func BenchmarkSafe10k(b *testing.B) {
	fs := newFollowers(followerLimits{})
	fs.replaced(0)
	for i := range 10_000 {
		if _, err := fs.connected(fol(fmt.Sprint("v", i), 10*time.Second), "", Requester{}, int64(i%500), 0, at(0)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 500 {
		fs.advanced(int64(i+1), at(float64(i)/100))
	}
	b.ResetTimer()
	for range b.N {
		fs.safe(500, at(6))
	}
}

// TestReportMakesNoRecord: only a stream makes a follower's record; a
// report for a verifier the hub has no record of is refused, so reports
// alone cannot fill the registry (or hold up confirmations).
func TestReportMakesNoRecord(t *testing.T) {
	t.Parallel()
	fs := newFollowers(followerLimits{})
	if _, _, err := fs.reported(fol("ghost", time.Hour), "", 0, true, at(0)); !errors.Is(err, errUnknown) {
		t.Fatalf("report without a stream = %v, want errUnknown", err)
	}
	if n, _ := fs.count(at(0)); n != 0 {
		t.Errorf("followers after a refused report = %d, want 0", n)
	}
}

// TestFollowerCaps: records made for one API key, or from one address,
// are capped; a record dropped after its bound frees its place.
func TestFollowerCaps(t *testing.T) {
	t.Parallel()
	fs := newFollowers(followerLimits{perKey: 3, perAddr: 2})
	fs.replaced(0)
	connect := func(id string, q Requester, now time.Time) error {
		_, err := fs.connected(fol(id, time.Second), "", q, 0, 0, now)
		return err
	}
	k1a, k1b, k2a := Requester{"k1", "a"}, Requester{"k1", "b"}, Requester{"k2", "a"}
	for i, id := range []string{"v1", "v2"} {
		if err := connect(id, k1a, at(0)); err != nil {
			t.Fatalf("stream %d from k1 at a = %v", i, err)
		}
	}
	if err := connect("v3", k2a, at(0)); !errors.Is(err, errAddrCap) {
		t.Errorf("third record from address a = %v, want errAddrCap", err)
	}
	if err := connect("v3", k1b, at(0)); err != nil {
		t.Fatalf("third record of k1, from b = %v", err)
	}
	if err := connect("v4", Requester{"k1", "c"}, at(0)); !errors.Is(err, errKeyCap) {
		t.Errorf("fourth record of k1 = %v, want errKeyCap", err)
	}
	// A known verifier's new stream makes no record: no cap applies.
	if _, err := fs.connected(fol("v1", time.Second), tokenOf(fs, "v1"), k2a, 0, 0, at(0)); err != nil {
		t.Errorf("v1 reconnecting = %v, want nil", err)
	}
	fs.safe(0, at(1.5)) // everyone silent past 1s: dropped
	if err := connect("v5", k1a, at(1.5)); err != nil {
		t.Errorf("a record after the others were dropped = %v, want nil", err)
	}
}

// TestStaleAfterCap: a follower naming a bound above the hub's cap is
// taken at the cap: listed with it, and dropped once silent that long.
func TestStaleAfterCap(t *testing.T) {
	t.Parallel()
	fs := newFollowers(followerLimits{staleCap: 5 * time.Second})
	fs.replaced(0)
	mustConnect(t, fs, fol("long", 24*time.Hour), 0, 0, at(0))
	_, bound, err := fs.reported(fol("long", 24*time.Hour), tokenOf(fs, "long"), 0, true, at(0))
	if err != nil || bound != 5*time.Second {
		t.Fatalf("reported = %v, %v; want the cap 5s", bound, err)
	}
	if l := fs.list(at(0)); len(l) != 1 || l[0].StaleAfter != 5*time.Second {
		t.Fatalf("list = %+v, want long at the cap", l)
	}
	fs.advanced(3, at(1))
	if safe, _ := fs.safe(3, at(5.1)); safe != 3 {
		t.Errorf("safe 5.1s after long was last heard = %d, want 3: its leases lasted at most 5s", safe)
	}
	if n, _ := fs.count(at(5.1)); n != 0 {
		t.Errorf("followers after the cap = %d, want 0", n)
	}
}

// TestPendingCapped: pending names at most limit followers and counts all.
func TestPendingCapped(t *testing.T) {
	t.Parallel()
	fs := newFollowers(followerLimits{})
	fs.replaced(0)
	for i := range 5 {
		mustConnect(t, fs, fol(fmt.Sprint("v", i), time.Minute), 0, 0, at(0))
	}
	fs.advanced(1, at(0))
	if p, n := fs.pending(1, 2, at(0)); len(p) != 2 || n != 5 {
		t.Errorf("pending(1, limit 2) = %d named, %d in all; want 2 and 5", len(p), n)
	}
}

// TestHeaderRoundsBoundUp: a bound that is not a whole number of
// milliseconds reaches the hub rounded up, never down: the hub must not
// count a verifier as refusing tokens before it does.
func TestHeaderRoundsBoundUp(t *testing.T) {
	t.Parallel()
	f := Follower{ID: "a", StaleAfter: 1500 * time.Microsecond}
	got, _, _, err := parseFollower(f.header(""))
	if err != nil || got.StaleAfter != 2*time.Millisecond {
		t.Errorf("parseFollower(header(1.5ms)) = %v, %v; want 2ms", got.StaleAfter, err)
	}
}

// TestTakeChanged: the registry hands out a follower's state for storing
// when it is new, when what it says changes, and, when other nodes read
// the records, when it was heard half its bound after the state last
// handed out; renewals in between hand out nothing, and a follower silent
// past its bound is left out. A single node's registry hands out no
// renewal that changes nothing.
func TestTakeChanged(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprint("shared=", shared), func(t *testing.T) {
			t.Parallel()
			testTakeChanged(t, shared)
		})
	}
}

func testTakeChanged(t *testing.T, shared bool) {
	fs := newFollowers(followerLimits{})
	fs.shared = shared
	// when returns want where the records are shared, else unshared.
	when := func(want, unshared []string) []string {
		if shared {
			return want
		}
		return unshared
	}
	ids := func(st []FollowerState) []string {
		var out []string
		for _, s := range st {
			out = append(out, s.ID)
		}
		return out
	}
	report := func(id, tok string, pos int64, ready bool, s float64) {
		t.Helper()
		if _, _, err := fs.reported(fol(id, 10*time.Second), tok, pos, ready, at(s)); err != nil {
			t.Fatalf("report of %s at %vs = %v", id, s, err)
		}
	}
	ta, err := fs.connected(fol("a", 10*time.Second), "", Requester{}, 0, 0, at(0))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := fs.connected(fol("b", 10*time.Second), "", Requester{}, 0, 0, at(0))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		do   func()
		now  float64
		want []string
	}{
		{"new", func() {}, 0, []string{"a", "b"}},
		{"nothing since", func() {}, 0, nil},
		{"renewals", func() { report("a", ta, 0, false, 5); report("b", tb, 0, false, 5) }, 5, when([]string{"a", "b"}, nil)},
		{"a moved (an ask answered)", func() { report("a", ta, 5, true, 6) }, 6, []string{"a"}},
		{"renewals a second after a moved", func() { report("a", ta, 5, true, 7); report("b", tb, 0, false, 10) }, 10, when([]string{"a", "b"}, nil)},
		{"nothing since the renewals", func() {}, 10, nil},
		{"b moved then went silent past its bound, a heard", func() { report("b", tb, 1, false, 7); report("a", ta, 5, true, 17) }, 17.5, when([]string{"a"}, nil)},
		{"a moved", func() { report("a", ta, 6, true, 18) }, 18, []string{"a"}},
	} {
		tt.do()
		if got := ids(fs.takeChanged(at(tt.now))); !slices.Equal(got, tt.want) {
			t.Errorf("%s: takeChanged = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestBehind: the followers not yet safe up to x are those safe finds
// below x; a later look at them alone leaves out those that caught up,
// went silent past their bound or were dropped, and tells when time alone
// frees the rest.
func TestBehind(t *testing.T) {
	t.Parallel()
	const stale = 10 * time.Second
	fs := newFollowers(followerLimits{})
	fs.replaced(2)
	mustReport(t, fs, fol("a", stale), 2, 2, at(0))
	mustReport(t, fs, fol("b", stale), 2, 2, at(0))
	mustReport(t, fs, fol("c", 3*time.Second), 2, 2, at(0))
	fs.advanced(5, at(1))
	mustConnect(t, fs, fol("late", stale), 0, 5, at(1)) // floor 5
	ids := func(rs []*record) map[string]bool {
		m := map[string]bool{}
		for _, r := range rs {
			m[r.ID] = true
		}
		return m
	}
	rs, next := fs.behind(nil, 5, at(1))
	if got := ids(rs); len(got) != 3 || !got["a"] || !got["b"] || !got["c"] {
		t.Fatalf("behind(nil, 5) = %v, want a, b, c", got)
	}
	if want := at(3).Add(time.Nanosecond); !next.Equal(want) {
		t.Errorf("behind(nil, 5) next = %s, want %s (c silent past its bound)", next.Sub(h0), want.Sub(h0))
	}
	mustReport(t, fs, fol("a", stale), 5, 5, at(2))
	rs, _ = fs.behind(rs, 5, at(2))
	if got := ids(rs); len(got) != 2 || !got["b"] || !got["c"] {
		t.Fatalf("behind(a, b, c) after a reported 5 = %v, want b, c", got)
	}
	rs, _ = fs.behind(rs, 5, at(3.5))
	if got := ids(rs); len(got) != 1 || !got["b"] {
		t.Fatalf("behind(b, c) at 3.5s = %v, want b (c silent past its bound)", got)
	}
	fs.replaced(0)
	if rs, _ = fs.behind(rs, 5, at(3.5)); len(rs) != 0 {
		t.Errorf("behind(b) after the log was replaced = %v, want none (b's record is gone)", ids(rs))
	}
}
