package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// signs is a Rotation.Check whose request's proof signs a challenge
// issued at.
func signs(at time.Time) func(store.Session, int64) (time.Time, error) {
	return func(store.Session, int64) (time.Time, error) { return at, nil }
}

// testRotateChallenge: a challenge accepted with a token is never accepted
// with it again, nor an older one, in the grace window or out of it; a
// newer one is, and gets the same successor; every refusal changes
// nothing; a Check that names no challenge is never refused for one.
func testRotateChallenge(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	now := t0.Add(time.Hour)
	issued := now.Add(-10 * time.Second)
	r := rotation("rt-s1", "rt-s1-2", now)
	r.Check = signs(issued)
	if res := rotate(t, s, r); res.Outcome != store.Rotated {
		t.Fatalf("RotateRefresh(first proof) = %v (%s), want Rotated", res.Outcome, res.Reason)
	}
	replay := func(challenge time.Time, after time.Duration) (store.RotateResult, error) {
		r := rotation("rt-s1", "rt-s1-other", now.Add(after))
		r.Check = signs(challenge)
		return s.RotateRefresh(ctx, r)
	}
	for _, tt := range []struct {
		name      string
		challenge time.Time
	}{
		{"the rotation's challenge (a captured proof)", issued},
		{"an older challenge", issued.Add(-time.Millisecond)},
	} {
		if res, err := replay(tt.challenge, time.Second); !errors.Is(err, store.ErrChallengeUsed) {
			t.Errorf("RotateRefresh(replay, %s) = %v, %v; want ErrChallengeUsed", tt.name, res.Outcome, err)
		}
	}
	fresh := now.Add(500 * time.Millisecond)
	res, err := replay(fresh, time.Second)
	if err != nil || res.Outcome != store.Replayed || string(res.Sealed) != "sealed rt-s1-2" {
		t.Fatalf("RotateRefresh(replay, a newer challenge) = %v %q, %v; want Replayed with the successor", res.Outcome, res.Sealed, err)
	}
	if _, err := replay(fresh, 2*time.Second); !errors.Is(err, store.ErrChallengeUsed) {
		t.Errorf("RotateRefresh(replay, the challenge a replay used) = %v, want ErrChallengeUsed", err)
	}
	none := rotation("rt-s1", "rt-s1-other", now.Add(3*time.Second))
	none.Check = signs(time.Time{})
	if res := rotate(t, s, none); res.Outcome != store.Replayed {
		t.Errorf("RotateRefresh(replay, Check names no challenge) = %v (%s), want Replayed", res.Outcome, res.Reason)
	}
	if h := head(t, s); h != 0 {
		t.Errorf("Head() = %d after refused replays, want 0: a used challenge is no theft", h)
	}
	// Challenges are the token's: the successor accepts one older than
	// those its predecessor used.
	next := rotation("rt-s1-2", "rt-s1-3", now.Add(time.Minute))
	next.Check = signs(issued)
	if res := rotate(t, s, next); res.Outcome != store.Rotated {
		t.Errorf("RotateRefresh(successor) = %v (%s), want Rotated", res.Outcome, res.Reason)
	}
}

// testRotateChallengeRefusedFirst: a rotation refused for its challenge
// leaves the token current, and a Check error on a grace replay aborts it.
func testRotateChallengeRefusedFirst(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newSession("s1", "alice", t0))
	now := t0.Add(time.Hour)
	issued := now.Add(-time.Second)
	r := rotation("rt-s1", "rt-s1-2", now)
	r.Check = signs(issued)
	rotate(t, s, r)
	refuse := errors.New("proof by another key")
	var saw string
	replay := rotation("rt-s1", "rt-s1-x", now.Add(time.Second))
	replay.Check = func(ss store.Session, _ int64) (time.Time, error) { saw = ss.ID; return time.Time{}, refuse }
	if _, err := s.RotateRefresh(ctx, replay); !errors.Is(err, refuse) || saw != "s1" {
		t.Errorf("RotateRefresh(replay, Check fails) = %v, Check saw %q; want %v, s1", err, saw, refuse)
	}
	// The successor, presented with a challenge, then the same again.
	for i, want := range []error{nil, store.ErrChallengeUsed} {
		r := rotation("rt-s1-2", fmt.Sprintf("rt-s1-3-%d", i), now.Add(time.Minute))
		r.Check = signs(now.Add(50 * time.Second))
		res, err := s.RotateRefresh(ctx, r)
		if !errors.Is(err, want) || (want == nil && res.Outcome != store.Rotated) {
			t.Errorf("RotateRefresh(successor, #%d) = %v, %v; want %v", i, res.Outcome, err, want)
		}
	}
	if _, err := s.SessionByRefresh(ctx, hash("rt-s1-3-1")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SessionByRefresh(successor of a refused presentation) = %v, want ErrNotFound", err)
	}
}

// testRotateChallengeConcurrent presents one token many times at once,
// spread over the nodes: the same proof (captured, or sent twice) is
// accepted exactly once, and proofs over distinct challenges (a browser
// that retried) never look like theft.
func testRotateChallengeConcurrent(t *testing.T, nodes []store.Store) {
	for _, n := range nodes {
		warm(t, n, 20)
	}
	now := t0.Add(time.Hour)
	for round := range 3 {
		for _, distinct := range []bool{false, true} {
			id := fmt.Sprintf("c%d-%v", round, distinct)
			create(t, nodes[0], newSession(id, "alice", t0))
			results, errs := presentConcurrently(nodes, id, 16, now, func(i int) time.Time {
				if distinct {
					return now.Add(-time.Duration(i+1) * time.Millisecond)
				}
				return now.Add(-time.Second)
			})
			ok := 0
			for i := range results {
				switch {
				case errs[i] == nil && (results[i].Outcome == store.Rotated || results[i].Outcome == store.Replayed):
					ok++
				case errors.Is(errs[i], store.ErrChallengeUsed):
				default:
					t.Errorf("%s: RotateRefresh() #%d = %v, %v; want an answer or ErrChallengeUsed", id, i, results[i].Outcome, errs[i])
				}
			}
			if !distinct && ok != 1 {
				t.Errorf("%s: one proof presented 16 times was accepted %d times, want once", id, ok)
			}
			if ok < 1 {
				t.Errorf("%s: no presentation was accepted", id)
			}
		}
	}
	if h := head(t, nodes[0]); h != 0 {
		t.Errorf("Head() = %d, want 0 (no reuse detected)", h)
	}
}

func presentConcurrently(nodes []store.Store, id string, n int, now time.Time, challenge func(int) time.Time) ([]store.RotateResult, []error) {
	results := make([]store.RotateResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			r := rotation("rt-"+id, fmt.Sprintf("%s-next-%d", id, i), now)
			r.Check = signs(challenge(i))
			<-start
			results[i], errs[i] = nodes[i%len(nodes)].RotateRefresh(context.Background(), r)
		})
	}
	close(start)
	wg.Wait()
	return results, errs
}
