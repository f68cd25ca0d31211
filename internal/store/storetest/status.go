package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

const slotGrace = 30 * time.Second

// slotReq asks for the given positions of list 1, in order.
func slotReq(idx ...int64) *store.SlotRequest {
	r := &store.SlotRequest{Grace: slotGrace}
	for _, i := range idx {
		r.Candidates = append(r.Candidates, store.SlotPos{List: 1, Index: i})
	}
	return r
}

func pos(idx int64) store.SlotPos { return store.SlotPos{List: 1, Index: idx} }

// createWithSlot creates session id of subject with a slot from req.
func createWithSlot(t *testing.T, s store.Store, id, subject string, req *store.SlotRequest) store.Created {
	t.Helper()
	ns := newSession(id, subject, t0)
	ns.Slot = req
	c, err := s.CreateSession(context.Background(), ns)
	if err != nil {
		t.Fatalf("CreateSession(%q) with a slot = %v", id, err)
	}
	return c
}

func detailedEntries(t *testing.T, s store.Store) []store.DetailedEntry {
	t.Helper()
	es, err := s.DetailedEntriesAfter(context.Background(), 0, 1000)
	if err != nil {
		t.Fatalf("DetailedEntriesAfter(0) = %v", err)
	}
	return es
}

func testStatusLists(t *testing.T, s store.Store) {
	ctx := context.Background()
	if ls, err := s.StatusLists(ctx); err != nil || len(ls) != 0 {
		t.Fatalf("StatusLists() on a new store = %v, %v, want none", ls, err)
	}
	for _, id := range []int64{2, 1} {
		if err := s.AddStatusList(ctx, store.StatusList{ID: id, Size: 1 << 20, CreatedAt: t0}); err != nil {
			t.Fatalf("AddStatusList(%d) = %v", id, err)
		}
	}
	err := s.AddStatusList(ctx, store.StatusList{ID: 1, Size: 8, CreatedAt: t0})
	wantErr(t, "AddStatusList(existing id)", err, store.ErrConflict)
	ls, err := s.StatusLists(ctx)
	want := []store.StatusList{{ID: 1, Size: 1 << 20, CreatedAt: t0}, {ID: 2, Size: 1 << 20, CreatedAt: t0}}
	if err != nil || len(ls) != 2 || ls[0].ID != 1 || ls[1].ID != 2 || ls[0].Size != want[0].Size || !ls[0].CreatedAt.Equal(t0) {
		t.Errorf("StatusLists() = %+v, %v, want %+v", ls, err, want)
	}
}

func testSlotAllocation(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createWithSlot(t, s, "a", "alice", slotReq(5, 6))
	if want := (store.StatusSlot{SlotPos: pos(5)}); a.Status != want {
		t.Errorf("CreateSession(a).Status = %+v, want %+v", a.Status, want)
	}
	// A held position is skipped, not shared.
	b := createWithSlot(t, s, "b", "bob", slotReq(5, 6))
	if b.Status.SlotPos != pos(6) {
		t.Errorf("CreateSession(b).Status = %+v, want position 6 (5 is held)", b.Status)
	}
	if got, _ := session(t, s, "b"); got.Status != b.Status {
		t.Errorf("Session(b).Status = %+v, want %+v", got.Status, b.Status)
	}
	ns := newSession("c", "carol", t0)
	ns.Slot = slotReq(5, 6)
	_, err := s.CreateSession(ctx, ns)
	wantErr(t, "CreateSession(every candidate held)", err, store.ErrNoSlot)
	_, _, err = s.Session(ctx, "c")
	wantErr(t, "Session(c) after ErrNoSlot", err, store.ErrNotFound)
	if n, err := s.HeldSlots(ctx); err != nil || n != 2 {
		t.Errorf("HeldSlots() = %d, %v, want 2", n, err)
	}
	// A session without a slot has a zero Status.
	create(t, s, newSession("d", "dave", t0))
	if got, _ := session(t, s, "d"); got.Status != (store.StatusSlot{}) {
		t.Errorf("Session(d).Status = %+v, want none", got.Status)
	}
	// A live session's slot is held until its end plus the grace.
	end := t0.Add(sessionLife + slotGrace)
	if n, err := s.FreeSlots(ctx, end); err != nil || n != 0 {
		t.Errorf("FreeSlots(session end + grace) = %d, %v, want 0", n, err)
	}
	if n, err := s.FreeSlots(ctx, end.Add(time.Microsecond)); err != nil || n != 2 {
		t.Errorf("FreeSlots(after the end) = %d, %v, want 2", n, err)
	}
	if c := createWithSlot(t, s, "e", "erin", slotReq(5)); c.Status.SlotPos != pos(5) {
		t.Errorf("CreateSession(e) after the free = %+v, want position 5 again", c.Status)
	}
}

func testSlotRevokeSession(t *testing.T, s store.Store) {
	ctx := context.Background()
	createWithSlot(t, s, "a", "alice", slotReq(1))
	createWithSlot(t, s, "b", "alice", slotReq(2))
	now := t0.Add(time.Hour)
	until := now.Add(accessLife)
	actor := store.Actor{By: "api-key:ops", Reason: "lost laptop", Entity: "admin"}
	if _, err := s.RevokeSession(ctx, "a", now, until, actor); err != nil {
		t.Fatalf("RevokeSession(a) = %v", err)
	}
	es := detailedEntries(t, s)
	want := store.EntryDetail{Cause: store.CauseSessionRevoke, By: actor.By, Reason: actor.Reason,
		Entity: "admin", Subject: "alice", Slots: []store.SlotPos{pos(1)}}
	if len(es) != 1 || !detailEqual(es[0].Detail, want) || es[0].Session != "a" {
		t.Fatalf("DetailedEntriesAfter(0) = %+v, want one entry for a with %+v", es, want)
	}
	// The revoked slot is held exactly until the entry expires, then freed;
	// b's is untouched.
	if n, _ := s.FreeSlots(ctx, until); n != 0 {
		t.Errorf("FreeSlots(entry expiry) = %d, want 0", n)
	}
	if n, _ := s.FreeSlots(ctx, until.Add(time.Microsecond)); n != 1 {
		t.Errorf("FreeSlots(after entry expiry) = %d, want 1", n)
	}
	if c := createWithSlot(t, s, "c", "carol", slotReq(2, 1)); c.Status.SlotPos != pos(1) {
		t.Errorf("CreateSession(c) = %+v, want the freed position 1 (2 is b's)", c.Status)
	}
}

func testSlotAccessCutoff(t *testing.T, s store.Store) {
	ctx := context.Background()
	createWithSlot(t, s, "a", "alice", slotReq(1))
	createWithSlot(t, s, "x", "xavier", slotReq(9))
	// Without a cutoff a refresh keeps the slot.
	r := rotation("rt-a", "rt-a-2", t0.Add(time.Minute))
	r.Slot = slotReq(2)
	if res := rotate(t, s, r); res.Session.Status != (store.StatusSlot{SlotPos: pos(1)}) {
		t.Errorf("RotateRefresh() = %+v, want the session's slot 1 kept", res.Session.Status)
	}
	now := t0.Add(time.Hour)
	claims := json.RawMessage(`{"role":"viewer"}`)
	_, err := s.RevokeSubject(ctx, store.SubjectRevocation{Subject: "alice", Claims: claims, Now: now,
		ExpiresAt: now.Add(accessLife), Actor: store.Actor{By: "api-key:hr", Reason: "demoted", Entity: "admin"}})
	if err != nil {
		t.Fatal(err)
	}
	es := detailedEntries(t, s)
	want := store.EntryDetail{Cause: store.CauseSubjectRevoke, By: "api-key:hr", Reason: "demoted", Entity: "admin",
		Claims: claims, Slots: []store.SlotPos{pos(1)}}
	if len(es) != 1 || !detailEqual(es[0].Detail, want) {
		t.Fatalf("DetailedEntriesAfter(0) = %+v, want detail %+v (xavier's slot untouched)", es, want)
	}
	// The next refresh gets a fresh slot for the new generation.
	r = rotation("rt-a-2", "rt-a-3", now.Add(time.Minute))
	r.Slot = slotReq(1, 2)
	res := rotate(t, s, r)
	if wantSlot := (store.StatusSlot{SlotPos: pos(2), Generation: 1}); res.Outcome != store.Rotated || res.Session.Status != wantSlot {
		t.Fatalf("RotateRefresh() after the cutoff = %v %+v, want Rotated with %+v", res.Outcome, res.Session.Status, wantSlot)
	}
	if got, _ := session(t, s, "a"); got.Status != res.Session.Status {
		t.Errorf("Session(a).Status = %+v, want %+v", got.Status, res.Session.Status)
	}
	// Signing out everywhere covers both the old slot (still held for
	// its tokens) and the new one.
	later := now.Add(2 * time.Minute)
	if _, err := s.RevokeSubject(ctx, store.SubjectRevocation{Subject: "alice", EndSessions: true, Now: later,
		ExpiresAt: later.Add(accessLife), Actor: store.Actor{By: "api-key:hr"}}); err != nil {
		t.Fatal(err)
	}
	es = detailedEntries(t, s)
	got := slices.Clone(es[1].Detail.Slots)
	slices.SortFunc(got, func(a, b store.SlotPos) int { return int(a.Index - b.Index) })
	if !es[1].Detail.EndSessions || !slices.Equal(got, []store.SlotPos{pos(1), pos(2)}) {
		t.Errorf("sign-out detail = %+v, want EndSessions and slots 1 and 2", es[1].Detail)
	}
}

func testSlotReuse(t *testing.T, s store.Store) {
	createWithSlot(t, s, "a", "alice", slotReq(3))
	rotate(t, s, rotation("rt-a", "rt-a-2", t0.Add(time.Hour)))
	res := rotate(t, s, rotation("rt-a", "rt-a-x", t0.Add(2*time.Hour)))
	if res.Outcome != store.Reused {
		t.Fatalf("RotateRefresh(stolen) = %v", res.Outcome)
	}
	es := detailedEntries(t, s)
	want := store.EntryDetail{Cause: store.CauseSessionReuse, By: "system", Reason: "refresh token reuse",
		Entity: "system", Subject: "alice", Slots: []store.SlotPos{pos(3)}}
	if len(es) != 1 || !detailEqual(es[0].Detail, want) {
		t.Errorf("DetailedEntriesAfter(0) = %+v, want detail %+v", es, want)
	}
}

// testSlotCutoffRace refreshes sessions that need a new slot while their
// subject is cut off: whatever the order, a slot that stands for an older
// generation than the cutoff's is one the cutoff made INVALID.
func testSlotCutoffRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	for round := range 10 {
		subject := fmt.Sprint("race-", round)
		const n = 6
		for i := range n {
			create(t, s, newSession(fmt.Sprintf("%s-%d", subject, i), subject, t0)) // no slot yet
		}
		now := t0.Add(time.Hour)
		results := make([]store.RotateResult, n)
		errs := make([]error, n+1)
		var cut store.DetailedEntry
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				id := fmt.Sprintf("%s-%d", subject, i)
				r := rotation("rt-"+id, "rt-"+id+"-2", now)
				r.Slot = slotReq(int64(round*100+i*2), int64(round*100+i*2+1))
				results[i], errs[i] = s.RotateRefresh(ctx, r)
			})
		}
		wg.Go(func() {
			_, errs[n] = s.RevokeSubject(ctx, store.SubjectRevocation{Subject: subject, Now: now,
				ExpiresAt: now.Add(accessLife), Actor: store.Actor{By: "test"}})
		})
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		es := detailedEntries(t, s)
		cut = es[len(es)-1]
		for i, res := range results {
			if res.Session.Status.Generation < cut.Generation && !slices.Contains(cut.Detail.Slots, res.Session.Status.SlotPos) {
				t.Errorf("round %d: session %d got slot %+v of generation %d < cutoff %d, but the cutoff covers only %v",
					round, i, res.Session.Status.SlotPos, res.Session.Status.Generation, cut.Generation, cut.Detail.Slots)
			}
		}
	}
}

// testSlotAllocationConcurrent: sessions created at once from overlapping
// candidates never share a slot.
func testSlotAllocationConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 24
	got := make([]store.Created, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ns := newSession(fmt.Sprint("c", i), fmt.Sprint("user", i%5), t0)
			ns.Slot = &store.SlotRequest{Grace: slotGrace}
			for k := range int64(n) {
				ns.Slot.Candidates = append(ns.Slot.Candidates, pos((int64(i)+k)%n))
			}
			got[i], errs[i] = s.CreateSession(ctx, ns)
		})
	}
	wg.Wait()
	seen := map[store.SlotPos]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("CreateSession(c%d) = %v", i, errs[i])
		}
		if j, dup := seen[got[i].Status.SlotPos]; dup {
			t.Errorf("sessions c%d and c%d share slot %+v", j, i, got[i].Status.SlotPos)
		}
		seen[got[i].Status.SlotPos] = i
	}
}

func detailEqual(a, b store.EntryDetail) bool {
	return a.Cause == b.Cause && a.By == b.By && a.Reason == b.Reason && a.Entity == b.Entity &&
		a.Subject == b.Subject && a.EndSessions == b.EndSessions && string(a.Claims) == string(b.Claims) &&
		slices.Equal(a.Slots, b.Slots)
}

// testSlotBulkRevoke: one Revoke whose items cover the same slot holds it
// until the later entry expires, and each entry lists what it covers.
func testSlotBulkRevoke(t *testing.T, s store.Store) {
	ctx := context.Background()
	createWithSlot(t, s, "a", "alice", slotReq(1))
	createWithSlot(t, s, "b", "alice", slotReq(2))
	now := t0.Add(time.Hour)
	early, late := now.Add(accessLife), now.Add(2*accessLife)
	_, err := s.Revoke(ctx, []store.Revocation{
		{SessionID: "a", Now: now, ExpiresAt: late, Actor: store.Actor{By: "ops"}},
		{Subject: "alice", EndSessions: true, Now: now, ExpiresAt: early, Actor: store.Actor{By: "ops"}},
	})
	if err != nil {
		t.Fatalf("Revoke() = %v", err)
	}
	es := detailedEntries(t, s)
	sorted := func(p []store.SlotPos) []store.SlotPos {
		p = slices.Clone(p)
		slices.SortFunc(p, func(a, b store.SlotPos) int { return int(a.Index - b.Index) })
		return p
	}
	if len(es) != 2 || !slices.Equal(es[0].Detail.Slots, []store.SlotPos{pos(1)}) ||
		!slices.Equal(sorted(es[1].Detail.Slots), []store.SlotPos{pos(1), pos(2)}) {
		t.Fatalf("entries = %+v, want the session's slot 1, then the subject's 1 and 2", es)
	}
	if n, _ := s.FreeSlots(ctx, early.Add(time.Microsecond)); n != 1 {
		t.Errorf("FreeSlots(after the early entry) = %d, want 1 (slot 2; slot 1 is held by the late one)", n)
	}
	if n, _ := s.FreeSlots(ctx, late.Add(time.Microsecond)); n != 1 {
		t.Errorf("FreeSlots(after the late entry) = %d, want 1", n)
	}
}
