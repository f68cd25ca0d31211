package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// WakeTimeout bounds how long tests wait for a Notifier wake-up.
const WakeTimeout = 5 * time.Second

// WaitWake waits for a wake-up on ch and fails the test after WakeTimeout.
func WaitWake(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(WakeTimeout):
		t.Fatalf("no wake-up within %v after %s", WakeTimeout, what)
	}
}

// Drain empties ch, whose buffer holds at most one wake-up.
func Drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func testNotifier(t *testing.T, s store.Store) {
	wake, stop := s.Subscribe()
	other, stopOther := s.Subscribe()
	defer stopOther()
	Drain(wake)
	Drain(other)

	revokeSubject(t, s, "alice", t0)
	WaitWake(t, wake, "RevokeSubject")
	WaitWake(t, other, "RevokeSubject (second subscriber)")

	// Wake-ups coalesce: a subscriber that does not read holds one.
	for range 3 {
		revokeSubject(t, s, "alice", t0)
	}
	if len(wake) != 1 {
		t.Errorf("len(wake) after 3 appends = %d, want 1 (coalesced)", len(wake))
	}

	stop()
	stop() // stop is idempotent
	Drain(wake)
	// Wake-ups reach every subscriber in one pass, so once the second
	// append's has reached the other subscriber, the first append's pass
	// is over: had it still counted the stopped subscriber, its buffer
	// would hold a wake-up now. No waiting for something not to happen.
	for i := range 2 {
		revokeSubject(t, s, "alice", t0)
		WaitWake(t, other, fmt.Sprintf("append %d after the first subscriber stopped", i+1))
	}
	if len(wake) != 0 {
		t.Errorf("stopped subscriber was woken")
	}
}

// testHeard: a store hears its own appends, and those whose caller waits
// for a confirmation as asked, by the time its subscribers wake.
func testHeard(t *testing.T, s store.Store) {
	wake, stop := s.Subscribe()
	defer stop()
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		confirm bool
	}{
		{"plain", false},
		{"confirmed", true},
		{"plain after confirmed", false},
	} {
		_, askedBefore := s.Heard()
		Drain(wake)
		rctx := ctx
		if tt.confirm {
			rctx = store.WithConfirmation(ctx)
		}
		e, err := s.RevokeSubject(rctx, store.SubjectRevocation{Subject: "alice", Now: t0, ExpiresAt: t0.Add(accessLife)})
		if err != nil {
			t.Fatalf("%s: RevokeSubject() = %v", tt.name, err)
		}
		WaitWake(t, wake, tt.name+" RevokeSubject")
		wantAsked := askedBefore
		if tt.confirm {
			wantAsked = e.Seq
		}
		if head, asked := s.Heard(); head != e.Seq || asked != wantAsked {
			t.Errorf("%s: Heard() after an append at %d = %d, %d; want %d, %d", tt.name, e.Seq, head, asked, e.Seq, wantAsked)
		}
	}
}
