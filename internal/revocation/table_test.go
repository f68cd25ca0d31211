package revocation

import (
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/tegata-dev/tegata/internal/testtime"
)

// model is the obvious implementation the set must agree with.
type model struct {
	sessions map[string]int64 // sid → expiry seconds
	subjects map[string]cutoff
}

type cutoff struct{ generation, expires int64 }

func newModel() *model {
	return &model{sessions: map[string]int64{}, subjects: map[string]cutoff{}}
}

func (m *model) apply(e Entry) {
	exp := expirySeconds(e.ExpiresAt)
	switch e.Kind {
	case KindSession:
		if _, _, ok := decodeSID(e.Session); ok {
			exp = int64(clampUint32(exp))
		}
		if old, ok := m.sessions[e.Session]; !ok || exp > old {
			m.sessions[e.Session] = exp
		}
	case KindSubject:
		c := cutoff{e.Generation, int64(clampUint32(exp))}
		if old, ok := m.subjects[e.Subject]; ok {
			c = cutoff{max(old.generation, c.generation), max(old.expires, c.expires)}
		}
		m.subjects[e.Subject] = c
	}
}

func (m *model) prune(now time.Time) int {
	cut, n := now.Unix(), 0
	for k, exp := range m.sessions {
		if exp <= cut {
			delete(m.sessions, k)
			n++
		}
	}
	for k, c := range m.subjects {
		if c.expires <= cut {
			delete(m.subjects, k)
			n++
		}
	}
	return n
}

func (m *model) revoked(sid, sub string, gen int64) (Kind, bool) {
	if _, ok := m.sessions[sid]; ok && sid != "" {
		return KindSession, true
	}
	if c, ok := m.subjects[sub]; ok && gen < c.generation {
		return KindSubject, true
	}
	return "", false
}

// TestSetMatchesModel runs random operations on a universe of keys large
// enough that tables (128 shards of each kind) grow several times over,
// shrink, wrap around, shift entries on deletion and are rebuilt by big
// prunes, and checks every answer against the model.
func TestSetMatchesModel(t *testing.T) {
	if testtime.Race {
		t.Skip("one goroutine: the race detector has nothing to check, and the plain run covers it")
	}
	r := rand.New(rand.NewPCG(7, 11))
	sids := make([]string, 0, 8101)
	for i := range uint64(8000) {
		sids = append(sids, sidN(i))
	}
	for i := range 100 {
		sids = append(sids, fmt.Sprint("legacy-", i))
	}
	sids = append(sids, "AAAAAAAAAAAAAAAAAAAAAA") // the all-zero key: kept as a string
	subs := make([]string, 8000)
	for i := range subs {
		subs[i] = fmt.Sprint("user-", i)
	}
	s, m := NewSet(0), newModel()
	clock := t0
	for op := range 60000 {
		switch x := r.IntN(10000); {
		case x < 4900:
			e := session(int64(op), sids[r.IntN(len(sids))], randomExpiry(r, clock))
			mustApply(t, s, e)
			m.apply(e)
		case x < 9800:
			e := subject(int64(op), subs[r.IntN(len(subs))], randomGeneration(r), randomExpiry(r, clock))
			mustApply(t, s, e)
			m.apply(e)
		case x < 9999:
			clock = clock.Add(randomStep(r))
			if got, want := s.Prune(clock), m.prune(clock); got != want {
				t.Fatalf("op %d: Prune(%v) = %d, want %d", op, clock, got, want)
			}
		default:
			checkModel(t, r, s, m, sids, subs, len(subs))
			s.Reset()
			m = newModel()
		}
		if got, want := s.Len(), len(m.sessions)+len(m.subjects); got != want {
			t.Fatalf("op %d: Len() = %d, want %d", op, got, want)
		}
		if op%97 == 0 {
			checkModel(t, r, s, m, sids, subs, 100)
		}
	}
	checkModel(t, r, s, m, sids, subs, len(subs))
}

// randomExpiry is mostly up to three hours after now; now and then it is
// already past, or beyond what a uint32 of seconds holds.
func randomExpiry(r *rand.Rand, now time.Time) time.Time {
	switch x := r.IntN(100); {
	case x == 0:
		return time.Time{}
	case x == 1:
		return time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	default:
		return now.Add(time.Duration(r.IntN(3*3600)) * time.Second)
	}
}

// randomGeneration is mostly below 20, the generations checkModel asks
// about, so that cutoffs are told apart; now and then it is extreme.
func randomGeneration(r *rand.Rand) int64 {
	switch r.IntN(400) {
	case 0:
		return math.MaxInt64
	case 1:
		return math.MinInt64
	default:
		return r.Int64N(20)
	}
}

// randomStep moves the clock on by up to a minute, now and then by an
// hour, so that a prune drops many entries of a shard and rebuilds its
// tables.
func randomStep(r *rand.Rand) time.Duration {
	if r.IntN(100) == 0 {
		return time.Hour
	}
	return time.Duration(r.IntN(60)) * time.Second
}

// checkModel asks the set and the model about n session ids and n subjects
// picked at random (every one when n is the universe's size).
func checkModel(t *testing.T, r *rand.Rand, s *Set, m *model, sids, subs []string, n int) {
	t.Helper()
	for _, sid := range pick(r, sids, n) {
		for _, gen := range []int64{0, 10} {
			sub := subs[len(sid)%len(subs)]
			gotK, gotOK := s.Revoked(sid, sub, gen)
			wantK, wantOK := m.revoked(sid, sub, gen)
			if gotK != wantK || gotOK != wantOK {
				t.Fatalf("Revoked(%q, %q, %d) = %q, %v, want %q, %v", sid, sub, gen, gotK, gotOK, wantK, wantOK)
			}
		}
	}
	for _, sub := range pick(r, subs, n) {
		for _, gen := range []int64{math.MinInt64, -1, 0, 1, 5, 10, 15, 18, 19, 20, math.MaxInt64} {
			gotK, gotOK := s.Revoked("", sub, gen)
			wantK, wantOK := m.revoked("", sub, gen)
			if gotK != wantK || gotOK != wantOK {
				t.Fatalf("Revoked(\"\", %q, %d) = %q, %v, want %q, %v", sub, gen, gotK, gotOK, wantK, wantOK)
			}
		}
	}
}

// pick returns n of keys at random, or all of them.
func pick(r *rand.Rand, keys []string, n int) []string {
	if n >= len(keys) {
		return keys
	}
	out := make([]string, n)
	for i := range out {
		out[i] = keys[r.IntN(len(keys))]
	}
	return out
}

// TestReadersDuringWrites checks what the seqlock promises: while writers
// insert, grow tables, prune (shifting entries) and shrink, a reader always
// finds the entries that stay and never finds one that was never there.
func TestReadersDuringWrites(t *testing.T) {
	s := NewSet(0)
	const stay = 3000
	for i := range uint64(stay) {
		mustApply(t, s, session(int64(i), sidN(i), t0.Add(time.Hour)))
		mustApply(t, s, subject(int64(i), fmt.Sprint("stay-", i%300), 5, t0.Add(time.Hour)))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		// Small rounds are pruned in place, large ones by rebuilding. The
		// readers read until the writer is done: the test does a fixed
		// amount of work, however fast the machine.
		defer stop.Store(true)
		for round, next := uint64(1), uint64(stay); round <= writeRounds; round++ {
			size := uint64(2000)
			if round%2 == 0 {
				size = 20000
			}
			for range size {
				n := next
				next++
				_ = s.Apply(session(int64(n), sidN(n), t0.Add(time.Second)))
				_ = s.Apply(subject(int64(n), fmt.Sprint("churn-", n), 1, t0.Add(time.Second)))
			}
			s.Prune(t0.Add(time.Second))
		}
	})
	for range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(1, 2))
			for !stop.Load() {
				i := r.Uint64N(stay)
				if kind, ok := s.Revoked(sidN(i), "", 0); !ok || kind != KindSession {
					t.Errorf("Revoked(sidN(%d)) = %q, %v during writes, want session, true", i, kind, ok)
					return
				}
				if kind, ok := s.Revoked("", fmt.Sprint("stay-", i%300), 4); !ok || kind != KindSubject {
					t.Errorf("Revoked(stay-%d, 4) = %q, %v during writes, want subject, true", i%300, kind, ok)
					return
				}
				if _, ok := s.Revoked(sidN(1<<40+i), "never", 0); ok {
					t.Errorf("Revoked(absent) = true during writes, want false")
					return
				}
			}
		})
	}
	wg.Wait()
}

// writeRounds is how many rounds of writes the concurrency tests make
// while readers check what they see: fewer under the race detector, which
// slows every memory access down, so that CI's -race run stays short.
var writeRounds = uint64(6)

func init() {
	if testtime.Race {
		writeRounds = 2
	}
}

func TestDeleteAtWrapsAround(t *testing.T) {
	// Keys whose home is the last slot form a cluster that wraps to the
	// start; deleting its first entry must pull the others back.
	tab := newKeyTable(8, 42)
	var keys [][2]uint64
	for k0 := uint64(1); len(keys) < 3; k0++ {
		if hashKey(k0, 0, 42)&7 == 7 {
			keys = append(keys, [2]uint64{k0, 0})
		}
	}
	for _, k := range keys {
		tab.insert(k[0], k[1], hashKey(k[0], k[1], 42), 1)
	}
	i, _ := tab.find(keys[0][0], 0, hashKey(keys[0][0], 0, 42))
	deleteAt(tab, i)
	for _, k := range keys[1:] {
		if _, found := tab.find(k[0], k[1], hashKey(k[0], k[1], 42)); !found {
			t.Errorf("find(%v) after deleting %v = false, want true", k, keys[0])
		}
	}
	if !tab.empty(1) {
		t.Errorf("slot 1 not empty after the shift back; slots %v", tab.slots)
	}
}

func TestSubjectSlotSize(t *testing.T) {
	// A bulk revocation's memory is its subject slots: four to a cache
	// line, none straddling two.
	if n := unsafe.Sizeof(subjectSlot{}); n != 16 {
		t.Errorf("unsafe.Sizeof(subjectSlot{}) = %d, want 16", n)
	}
}

// TestSubjectTableGenerations: a generation that does not fit a slot's 32
// bits is kept exactly all the same, as it is raised, lowered in vain,
// copied into a grown table and deleted.
func TestSubjectTableGenerations(t *testing.T) {
	const k0 = 42 << 32
	tests := []struct {
		name string
		gens []int64 // applied in turn
		want int64
	}{
		{"small", []int64{7}, 7},
		{"the largest in a slot", []int64{bigGen - 1}, bigGen - 1},
		{"the slot's marker itself", []int64{bigGen}, bigGen},
		{"past 32 bits", []int64{1 << 40}, 1 << 40},
		{"the largest", []int64{math.MaxInt64}, math.MaxInt64},
		{"negative", []int64{-3}, -3},
		{"the smallest", []int64{math.MinInt64}, math.MinInt64},
		{"small raised past 32 bits", []int64{7, 1<<40 + 1}, 1<<40 + 1},
		{"past 32 bits raised further", []int64{1 << 40, 1<<41 + 1}, 1<<41 + 1},
		{"past 32 bits not lowered", []int64{1 << 40, 7}, 1 << 40},
		{"negative raised to small", []int64{-3, 7}, 7},
		{"negative raised to another negative", []int64{-9, -3}, -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newSubjectTable(minTableSize)
			tab.insert(k0, tt.gens[0], 1)
			for _, g := range tt.gens[1:] {
				i, _ := tab.find(k0)
				tab.raise(i, k0, g, 1)
			}
			if gen, found := tab.cutoffLocked(k0); gen != tt.want || !found {
				t.Errorf("cutoff after %v = %d, %v, want %d, true", tt.gens, gen, found, tt.want)
			}
			if gen, found := tab.grown().cutoffLocked(k0); gen != tt.want || !found {
				t.Errorf("cutoff in the grown table after %v = %d, %v, want %d, true", tt.gens, gen, found, tt.want)
			}
			tab.remove(k0)
			if gen, found := tab.cutoffLocked(k0); found {
				t.Errorf("cutoff after remove = %d, true, want not found", gen)
			}
			s := NewSet(0)
			for i, g := range tt.gens {
				mustApply(t, s, subject(int64(i+1), "alice", g, t0.Add(time.Hour)))
			}
			k := s.Key("", "alice")
			if kind, ok := s.RevokedKey(&k, tt.want); ok {
				t.Errorf("RevokedKey(alice, %d) after %v = %q, true, want false", tt.want, tt.gens, kind)
			}
			if tt.want > math.MinInt64 {
				if _, ok := s.Revoked("", "alice", tt.want-1); !ok {
					t.Errorf("Revoked(alice, %d) after %v = false, want true", tt.want-1, tt.gens)
				}
			}
		})
	}
}

func TestSubjectTableDeleteWrapsAround(t *testing.T) {
	// The same on a subject table, whose size is not a power of two.
	tab := newSubjectTable(12)
	last := tab.size() - 1
	if last&(last+1) == 0 {
		t.Fatalf("newSubjectTable(12).size() = %d, want a size that is not a power of two", tab.size())
	}
	r := rand.New(rand.NewPCG(3, 5))
	var keys []uint64
	for len(keys) < 3 {
		if k0 := r.Uint64(); k0 != 0 && tab.homeOf(k0) == last {
			keys = append(keys, k0)
		}
	}
	for i, k := range keys {
		tab.insert(k, int64(i+1), 1)
	}
	i, _ := tab.find(keys[0])
	deleteAt(tab, i)
	for n, k := range keys[1:] {
		i, found := tab.find(k)
		if !found || tab.genAt(i, k) != int64(n+2) {
			t.Errorf("find(%#x) after deleting %#x = %d, %v, want the slot of generation %d", k, keys[0], i, found, n+2)
		}
	}
	if !tab.empty(1) {
		t.Errorf("slot 1 not empty after the shift back")
	}
}

// TestSubjectCutoffsDuringWrites aims all writes at one shard: subjects
// that stay, one whose cutoff keeps rising (its generation and its expiry,
// one word, rewritten in place under the readers),
// and churn pruned in place (shifting the others back under the seqlock)
// or rebuilt. Readers must always see each staying cutoff, and never see
// one go down.
func TestSubjectCutoffsDuringWrites(t *testing.T) {
	s := NewSet(0)
	home := s.shardOf(s.subjectKey("rising"))
	sameShard := func(prefix string, n int) []string {
		var subs []string
		for i := 0; len(subs) < n; i++ {
			sub := fmt.Sprint(prefix, i)
			if s.shardOf(s.subjectKey(sub)) == home {
				subs = append(subs, sub)
			}
		}
		return subs
	}
	stay, churn := sameShard("stay-", 100), sameShard("churn-", 2*inPlaceMax)
	for i, sub := range stay {
		mustApply(t, s, subject(int64(i), sub, 5, t0.Add(time.Hour)))
	}
	mustApply(t, s, subject(0, "rising", 5, t0.Add(time.Hour)))
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer stop.Store(true) // the readers read until the writer is done
		for round, gen := uint64(0), int64(6); round < 40*writeRounds; round++ {
			// Most rounds are pruned in place; every fourth is rebuilt.
			n := inPlaceMax
			if round%4 == 0 {
				n = len(churn)
			}
			for _, sub := range churn[:n] {
				_ = s.Apply(subject(gen, sub, 1, t0.Add(time.Second)))
				_ = s.Apply(subject(gen, "rising", gen, t0.Add(time.Hour+time.Duration(gen)*time.Second)))
				gen++
			}
			s.Prune(t0.Add(time.Second))
		}
	})
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 9))
			revokedBelow := int64(4) // the highest generation seen revoked
			for !stop.Load() && checkRising(t, s, r, &revokedBelow) {
				sub := stay[r.IntN(len(stay))]
				if kind, ok := s.Revoked("", sub, 4); !ok || kind != KindSubject {
					t.Errorf("Revoked(%q, 4) = %q, %v during writes, want subject, true", sub, kind, ok)
					return
				}
				if _, ok := s.Revoked("", sub, 5); ok {
					t.Errorf("Revoked(%q, 5) = true during writes, want false", sub)
					return
				}
			}
		})
	}
	wg.Wait()
}

// checkRising probes the cutoff of subject "rising" a little above the
// highest generation seen revoked, which must stay revoked.
func checkRising(t *testing.T, s *Set, r *rand.Rand, revokedBelow *int64) bool {
	t.Helper()
	if gen := *revokedBelow + r.Int64N(64); gen > *revokedBelow {
		if _, ok := s.Revoked("", "rising", gen); ok {
			*revokedBelow = gen
		}
	}
	if kind, ok := s.Revoked("", "rising", *revokedBelow); !ok || kind != KindSubject {
		t.Errorf("Revoked(rising, %d) = %q, %v after it was revoked, want subject, true", *revokedBelow, kind, ok)
		return false
	}
	return true
}

// TestSubjectCutoffsWhileShifted: a lookup that runs while entries are
// deleted in place, shifting the entries after them back one slot each
// time (deleteAt), still finds every cutoff that stays: the shard's
// seqlock sends it round again. Each round builds a shard whose staying
// subjects all share one home and sit behind as many that go, so that each
// delete moves every staying one, and readers look them up meanwhile.
func TestSubjectCutoffsWhileShifted(t *testing.T) {
	const (
		shardIdx = 5
		n        = 24 // subjects that go, and as many that stay
	)
	rounds := 10_000 // about 0.4 s
	if testtime.Race {
		rounds = 300 // the race detector slows each round tenfold
	}
	// Keys differing only in their lowest bits share a home: the middle
	// slot of the table.
	key := func(j int) uint64 { return shardIdx<<(64-shardBits) | 1<<(63-shardBits) | uint64(j+1) }
	build := func() *shard {
		sh := new(shard)
		tab := newSubjectTable(4 * n)
		for j := range 2 * n { // those that go first, then those that stay
			tab.insert(key(j), int64(j), math.MaxUint32)
		}
		if got := tab.homeOf(key(0)); got != tab.homeOf(key(2*n-1)) {
			t.Fatalf("homes %d and %d, want the keys to share one", got, tab.homeOf(key(2*n-1)))
		}
		sh.subjects.Store(tab)
		return sh
	}
	var cur atomic.Pointer[shard]
	cur.Store(build())
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				j := n + i%n // a subject that stays
				if gen, found := cur.Load().cutoff(key(j)); !found || gen != int64(j) {
					t.Errorf("cutoff of the subject of generation %d while others are deleted = %d, %v, want %d, true", j, gen, found, j)
					stop.Store(true)
					return
				}
			}
		})
	}
	wg.Go(func() {
		defer stop.Store(true)
		for range rounds {
			sh := build()
			cur.Store(sh)
			for j := 0; j < n && !stop.Load(); j++ {
				sh.mu.Lock()
				sh.beginWrite()
				sh.subjects.Load().remove(key(j))
				sh.endWrite()
				sh.mu.Unlock()
			}
		}
	})
	wg.Wait()
}

// TestSessionsWhileShifted is TestSubjectCutoffsWhileShifted for revoked
// sessions in tegata's format (shard.hasSession).
func TestSessionsWhileShifted(t *testing.T) {
	const (
		n    = 24 // sessions that go, and as many that stay
		size = 128
		seed = 7
	)
	rounds := 10_000
	if testtime.Race {
		rounds = 300 // the race detector slows each round tenfold
	}
	// Keys whose hashes share a home slot.
	r := rand.New(rand.NewPCG(1, 2))
	var keys [][2]uint64
	for len(keys) < 2*n {
		if k := [2]uint64{r.Uint64(), r.Uint64()}; hashKey(k[0], k[1], seed)&(size-1) == size/2 {
			keys = append(keys, k)
		}
	}
	has := func(sh *shard, k [2]uint64) bool { return sh.hasSession(k[0], k[1], hashKey(k[0], k[1], seed)) }
	build := func() *shard {
		sh := new(shard)
		tab := newKeyTable(size, seed)
		for _, k := range keys { // those that go first, then those that stay
			tab.insert(k[0], k[1], hashKey(k[0], k[1], seed), math.MaxUint32)
		}
		sh.sessions.Store(tab)
		return sh
	}
	var cur atomic.Pointer[shard]
	cur.Store(build())
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if k := keys[n+i%n]; !has(cur.Load(), k) { // a session that stays
					t.Errorf("session %x not found while others are deleted, want it found", k)
					stop.Store(true)
					return
				}
			}
		})
	}
	wg.Go(func() {
		defer stop.Store(true)
		for range rounds {
			sh := build()
			cur.Store(sh)
			for _, k := range keys[:n] {
				if stop.Load() {
					return
				}
				sh.mu.Lock()
				sh.beginWrite()
				sh.sessions.Load().remove(k)
				sh.endWrite()
				sh.mu.Unlock()
			}
		}
	})
	wg.Wait()
}

// TestOtherSessionsWhileShifted is TestSubjectCutoffsWhileShifted for
// revoked sessions kept by string (shard.hasOtherSession).
func TestOtherSessionsWhileShifted(t *testing.T) {
	const (
		n    = 24 // sessions that go, and as many that stay
		size = 128
	)
	rounds := 10_000
	if testtime.Race {
		rounds = 300 // the race detector slows each round tenfold
	}
	seed := maphash.MakeSeed()
	hash := func(sid string) uint64 { return maphash.String(seed, sid) }
	// Ids whose hashes share a home slot.
	var sids []string
	for i := 0; len(sids) < 2*n; i++ {
		if sid := fmt.Sprint("other-", i); hash(sid)&(size-1) == size/2 {
			sids = append(sids, sid)
		}
	}
	build := func() *shard {
		sh := new(shard)
		tab := newStrTable(size, seed)
		for _, sid := range sids { // those that go first, then those that stay
			tab.insert(&strRecord{key: sid, expires: math.MaxInt64}, hash(sid))
		}
		sh.otherSessions.Store(tab)
		return sh
	}
	var cur atomic.Pointer[shard]
	cur.Store(build())
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if sid := sids[n+i%n]; !cur.Load().hasOtherSession(sid, hash(sid)) { // one that stays
					t.Errorf("session %q not found while others are deleted, want it found", sid)
					stop.Store(true)
					return
				}
			}
		})
	}
	wg.Go(func() {
		defer stop.Store(true)
		for range rounds {
			sh := build()
			cur.Store(sh)
			for _, sid := range sids[:n] {
				if stop.Load() {
					return
				}
				sh.mu.Lock()
				sh.beginWrite()
				sh.otherSessions.Load().remove(sid)
				sh.endWrite()
				sh.mu.Unlock()
			}
		}
	})
	wg.Wait()
}
