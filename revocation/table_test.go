package revocation

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
		old := m.subjects[e.Subject]
		m.subjects[e.Subject] = cutoff{max(old.generation, e.Generation), max(old.expires, exp)}
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

// TestSetMatchesModel runs random operations on a small universe of keys,
// so that tables grow, shrink, wrap around and shift entries on deletion,
// and checks every answer against the model.
func TestSetMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	sids := make([]string, 0, 2100)
	for i := range uint64(2000) {
		sids = append(sids, sidN(i))
	}
	for i := range 100 {
		sids = append(sids, fmt.Sprint("legacy-", i))
	}
	sids = append(sids, "AAAAAAAAAAAAAAAAAAAAAA") // the all-zero key: kept as a string
	subs := make([]string, 300)
	for i := range subs {
		subs[i] = fmt.Sprint("user-", i)
	}
	s, m := NewSet(0), newModel()
	clock := t0
	for op := range 30000 {
		switch x := r.IntN(100); {
		case x < 60:
			e := session(int64(op), sids[r.IntN(len(sids))], clock.Add(time.Duration(r.IntN(100))*time.Second))
			mustApply(t, s, e)
			m.apply(e)
		case x < 90:
			e := subject(int64(op), subs[r.IntN(len(subs))], r.Int64N(20), clock.Add(time.Duration(r.IntN(100))*time.Second))
			mustApply(t, s, e)
			m.apply(e)
		case x < 99:
			clock = clock.Add(time.Duration(r.IntN(30)) * time.Second)
			if got, want := s.Prune(clock), m.prune(clock); got != want {
				t.Fatalf("op %d: Prune(%v) = %d, want %d", op, clock, got, want)
			}
		default:
			s.Reset()
			m = newModel()
		}
		if got, want := s.Len(), len(m.sessions)+len(m.subjects); got != want {
			t.Fatalf("op %d: Len() = %d, want %d", op, got, want)
		}
		if op%97 == 0 {
			checkModel(t, s, m, sids, subs)
		}
	}
	checkModel(t, s, m, sids, subs)
}

func checkModel(t *testing.T, s *Set, m *model, sids, subs []string) {
	t.Helper()
	for _, sid := range sids {
		for _, gen := range []int64{0, 10} {
			sub := subs[len(sid)%len(subs)]
			gotK, gotOK := s.Revoked(sid, sub, gen)
			wantK, wantOK := m.revoked(sid, sub, gen)
			if gotK != wantK || gotOK != wantOK {
				t.Fatalf("Revoked(%q, %q, %d) = %q, %v, want %q, %v", sid, sub, gen, gotK, gotOK, wantK, wantOK)
			}
		}
	}
	for _, sub := range subs {
		for gen := range int64(21) {
			gotK, gotOK := s.Revoked("", sub, gen)
			wantK, wantOK := m.revoked("", sub, gen)
			if gotK != wantK || gotOK != wantOK {
				t.Fatalf("Revoked(\"\", %q, %d) = %q, %v, want %q, %v", sub, gen, gotK, gotOK, wantK, wantOK)
			}
		}
	}
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
		// Small rounds are pruned in place, large ones by rebuilding.
		for round, next := uint64(1), uint64(stay); !stop.Load(); round++ {
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
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
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
