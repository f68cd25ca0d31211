package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

func newStream(id string) store.Stream {
	return store.Stream{
		ID: id, Audience: "aud-" + id, Method: "urn:ietf:rfc:8935", EndpointURL: "https://rx.example/" + id,
		AuthHeader: []byte("sealed"), Events: []string{"e1", "e2"}, Description: "d", Status: "enabled",
		CreatedAt: t0, UpdatedAt: t0,
	}
}

func addStream(t *testing.T, s store.Store, st store.Stream) {
	t.Helper()
	if err := s.AddStream(context.Background(), st); err != nil {
		t.Fatalf("AddStream(%q) = %v", st.ID, err)
	}
}

func getStream(t *testing.T, s store.Store, id string) store.Stream {
	t.Helper()
	st, err := s.Stream(context.Background(), id)
	if err != nil {
		t.Fatalf("Stream(%q) = %v", id, err)
	}
	return st
}

func testStreams(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newStream("a")
	addStream(t, s, a)
	b := newStream("b")
	b.Events, b.AuthHeader, b.Method, b.EndpointURL, b.PollKey = nil, nil, "urn:ietf:rfc:8936", "", "key-1"
	b.CreatedAt = t0.Add(time.Second)
	addStream(t, s, b)
	wantErr(t, "AddStream(duplicate)", s.AddStream(ctx, newStream("a")), store.ErrConflict)

	got := getStream(t, s, "a")
	if got.Audience != a.Audience || string(got.AuthHeader) != "sealed" || !slices.Equal(got.Events, a.Events) ||
		!got.CreatedAt.Equal(t0) || got.Status != "enabled" || got.Cursor != 0 || got.VerifyPending() {
		t.Errorf("Stream(a) = %+v, want %+v", got, a)
	}
	if got := getStream(t, s, "b"); got.Events != nil || got.AuthHeader != nil || got.PollKey != "key-1" {
		t.Errorf("Stream(b) = events %v, auth %v, poll key %q; want none given, key-1", got.Events, got.AuthHeader, got.PollKey)
	}
	if list, err := s.ListStreams(ctx); err != nil || len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" {
		t.Errorf("ListStreams() = %+v, %v, want a, b", list, err)
	}

	a.Events, a.Description, a.Status, a.Reason, a.Cursor, a.PollKey = []string{}, "new", "paused", "maintenance", 99, "key-2"
	a.UpdatedAt = t0.Add(time.Hour)
	if err := s.UpdateStream(ctx, a, false); err != nil {
		t.Fatal(err)
	}
	got = getStream(t, s, "a")
	if got.Description != "new" || got.Status != "paused" || got.Reason != "maintenance" || got.Events == nil || got.PollKey != "key-2" ||
		len(got.Events) != 0 || got.Cursor != 0 || !got.UpdatedAt.Equal(a.UpdatedAt) {
		t.Errorf("Stream(a) after UpdateStream = %+v, want the new configuration, cursor kept at 0", got)
	}
	if err := s.UpdateStream(ctx, a, true); err != nil || getStream(t, s, "a").Cursor != 99 {
		t.Errorf("UpdateStream(moveCursor) = %v, cursor %d, want 99", err, getStream(t, s, "a").Cursor)
	}
	wantErr(t, "UpdateStream(unknown)", s.UpdateStream(ctx, newStream("zz"), false), store.ErrNotFound)

	if err := s.DeleteStream(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Stream(ctx, "a")
	wantErr(t, "Stream(deleted)", err, store.ErrNotFound)
	wantErr(t, "DeleteStream(deleted)", s.DeleteStream(ctx, "a"), store.ErrNotFound)
}

func testStreamVerification(t *testing.T, s store.Store) {
	ctx := context.Background()
	addStream(t, s, newStream("a"))
	if err := s.RequestVerification(ctx, "a", "st1", t0, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	err := s.RequestVerification(ctx, "a", "st2", t0.Add(time.Second), 5*time.Second)
	wantErr(t, "RequestVerification(too soon)", err, store.ErrTooSoon)
	if st := getStream(t, s, "a"); !st.VerifyPending() || st.VerifySeq != 1 || st.VerifyState != "st1" {
		t.Errorf("after a request: %+v, want pending 1 with state st1", st)
	}
	if err := s.RequestVerification(ctx, "a", "st3", t0.Add(5*time.Second), 5*time.Second); err != nil {
		t.Fatalf("RequestVerification(after the interval) = %v", err)
	}
	wantErr(t, "RequestVerification(unknown)", s.RequestVerification(ctx, "zz", "", t0, 0), store.ErrNotFound)
	// A poll acknowledgement of request 2 marks 1 and 2 sent.
	st, _, err := s.Acknowledge(ctx, "a", nil, 2)
	if err != nil || st.VerifyPending() || st.VerifySent != 2 {
		t.Errorf("Acknowledge(verification 2) = %+v, %v, want nothing pending", st, err)
	}
}

func testStreamLease(t *testing.T, s store.Store) {
	ctx := context.Background()
	addStream(t, s, newStream("a"))
	until := t0.Add(30 * time.Second)
	if _, err := s.LeaseStream(ctx, "a", "node1", t0, until); err != nil {
		t.Fatalf("LeaseStream(node1) = %v", err)
	}
	_, err := s.LeaseStream(ctx, "a", "node2", t0.Add(time.Second), t0.Add(time.Minute))
	wantErr(t, "LeaseStream(node2, while node1 holds it)", err, store.ErrLeaseLost)
	p := store.Progress{Cursor: 7, VerifySent: 0, Attempts: 0, Delivered: 3, LeaseUntil: until.Add(time.Minute)}
	if err := s.SaveProgress(ctx, "a", "node1", p); err != nil {
		t.Fatalf("SaveProgress(node1) = %v", err)
	}
	wantErr(t, "SaveProgress(node2)", s.SaveProgress(ctx, "a", "node2", p), store.ErrLeaseLost)
	// A failure, recorded with a release of the lease.
	next := t0.Add(2 * time.Second)
	if err := s.SaveProgress(ctx, "a", "node1", store.Progress{Cursor: 7, Attempts: 1, NextAttempt: next,
		LastError: "503", Lost: 2}); err != nil {
		t.Fatal(err)
	}
	st := getStream(t, s, "a")
	if st.Cursor != 7 || st.Delivered != 3 || st.Attempts != 1 || !st.NextAttempt.Equal(next) ||
		st.LastError != "503" || st.Lost != 2 || st.LeaseOwner != "" {
		t.Errorf("after progress: %+v", st)
	}
	// Released: another node takes it at once; an expired lease also goes.
	if _, err := s.LeaseStream(ctx, "a", "node2", t0, t0.Add(time.Second)); err != nil {
		t.Fatalf("LeaseStream(node2, after release) = %v", err)
	}
	if _, err := s.LeaseStream(ctx, "a", "node3", t0.Add(time.Second), t0.Add(time.Minute)); err != nil {
		t.Fatalf("LeaseStream(node3, after expiry) = %v", err)
	}
	// A configuration change ends the lease: the holder saves nothing more,
	// and the cursor the change moved stays where it was moved.
	st = getStream(t, s, "a")
	st.Status, st.Cursor = "enabled", 42
	if err := s.UpdateStream(ctx, st, true); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "SaveProgress(node3, after UpdateStream)", s.SaveProgress(ctx, "a", "node3",
		store.Progress{Cursor: 8, LeaseUntil: t0.Add(time.Minute)}), store.ErrLeaseLost)
	if st := getStream(t, s, "a"); st.Cursor != 42 || st.LeaseOwner != "" {
		t.Errorf("after UpdateStream under node3's lease: cursor %d, lease owner %q, want 42 and none", st.Cursor, st.LeaseOwner)
	}
	if _, err := s.LeaseStream(ctx, "a", "node4", t0.Add(2*time.Second), t0.Add(time.Minute)); err != nil {
		t.Fatalf("LeaseStream(node4, after UpdateStream) = %v", err)
	}
}

func testStreamAcks(t *testing.T, s store.Store) {
	ctx := context.Background()
	st := newStream("p")
	st.Method, st.EndpointURL = "urn:ietf:rfc:8936", ""
	addStream(t, s, st)
	// Acknowledgements of events not yet recorded are not kept: they would
	// skip those events once recorded (RFC 8936 keeps every
	// unacknowledged one) and pile up.
	_, held, err := s.Acknowledge(ctx, "p", []int64{5, 3, 3}, 0)
	if err != nil || len(held) != 0 {
		t.Fatalf("Acknowledge(5, 3, 3) on an empty log = %v, %v, want none kept", held, err)
	}
	for i := range 6 {
		revokeSubject(t, s, fmt.Sprintf("acked%d", i), t0)
	}
	_, held, err = s.Acknowledge(ctx, "p", []int64{5, 3, 3}, 0)
	if err != nil || !slices.Equal(held, []int64{3, 5}) {
		t.Fatalf("Acknowledge(5, 3, 3) = %v, %v, want [3 5]", held, err)
	}
	if err := s.MoveCursor(ctx, "p", 0, 3, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveCursor(ctx, "p", 0, 9, 4); err != nil { // someone moved it first: no-op
		t.Fatal(err)
	}
	got, held, err := s.Acknowledge(ctx, "p", []int64{2, 6}, 0)
	if err != nil || got.Cursor != 3 || !slices.Equal(held, []int64{5, 6}) {
		t.Errorf("Acknowledge(2, 6) = cursor %d, %v, %v, want cursor 3, [5 6] (2 is behind the cursor)", got.Cursor, held, err)
	}
	if got.Delivered != 1 {
		t.Errorf("Delivered after moving the cursor over 1 event (and a no-op move) = %d, want 1", got.Delivered)
	}
	if _, held, err := s.Acknowledge(ctx, "p", []int64{7, 1000000}, 0); err != nil || !slices.Equal(held, []int64{5, 6}) {
		t.Errorf("Acknowledge(7, 1000000) with the log at 6 = %v, %v, want [5 6]: nothing beyond the head", held, err)
	}
	_, _, err = s.Acknowledge(ctx, "zz", nil, 0)
	wantErr(t, "Acknowledge(unknown)", err, store.ErrNotFound)
	if err := s.DeleteStream(ctx, "p"); err != nil {
		t.Fatal(err)
	}
}

// testPruneLogKeepsStreams: expired entries a stream has not consumed stay
// until the retention bound; a disabled stream holds nothing.
func testPruneLogKeepsStreams(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range 4 {
		revokeSubject(t, s, fmt.Sprint("u", i), t0.Add(time.Duration(i)*time.Second))
	}
	st := newStream("a")
	st.Cursor = 1
	addStream(t, s, st)
	late := t0.Add(time.Hour) // every entry expired
	if n, err := s.PruneLog(ctx, late, t0.Add(-time.Hour)); err != nil || n != 1 {
		t.Errorf("PruneLog(cursor at 1) = %d, %v, want 1 (entries 2, 3 held; 4 is the head)", n, err)
	}
	if n, err := s.PruneLog(ctx, late, t0.Add(2*time.Second)); err != nil || n != 2 {
		t.Errorf("PruneLog(retention ends after entry 3) = %d, %v, want 2", n, err)
	}
	st.Status = "disabled"
	if err := s.UpdateStream(ctx, st, false); err != nil {
		t.Fatal(err)
	}
	revokeSubject(t, s, "u5", t0.Add(5*time.Second))
	if n, err := s.PruneLog(ctx, late, t0.Add(-time.Hour)); err != nil || n != 1 {
		t.Errorf("PruneLog(stream disabled) = %d, %v, want 1", n, err)
	}
}
