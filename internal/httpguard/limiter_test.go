package httpguard

import (
	"testing"
	"time"
)

func TestLimiterRefillsAndForgets(t *testing.T) {
	l := NewLimiter(1, 2)
	now := time.Unix(1000, 0)
	if l.Wait("a", 1, now) != 0 || l.Wait("a", 1, now) != 0 {
		t.Fatal("burst of 2 refused")
	}
	if d := l.Wait("a", 1, now); d <= 0 {
		t.Fatalf("third event at once: wait %v, want > 0", d)
	}
	if l.Wait("b", 1, now) != 0 {
		t.Fatal("another key was limited by the first")
	}
	if d := l.Wait("a", 1, now.Add(time.Second)); d != 0 {
		t.Fatalf("after 1 s: wait %v, want 0 (refilled)", d)
	}
	l.mu.Lock()
	l.sweep(now.Add(time.Hour))
	l.mu.Unlock()
	if n := l.Len(); n != 0 {
		t.Fatalf("idle buckets after sweep = %d, want 0", n)
	}
}

// TestLimiterCharge: a charge puts the bucket into debt, which the key's
// next events pay; a refused Wait takes nothing.
func TestLimiterCharge(t *testing.T) {
	l := NewLimiter(1, 5)
	now := time.Unix(1000, 0)
	if d := l.Wait("a", 1, now); d != 0 {
		t.Fatalf("Wait(a) = %v, want 0", d)
	}
	l.Charge("a", 9, now) // capped at the burst: 1 + 5 taken, 1 s of debt
	if d := l.Wait("a", 1, now); d != 2*time.Second {
		t.Fatalf("Wait(a) after a charge = %v, want 2s (the debt, then one event)", d)
	}
	if d := l.Wait("a", 1, now.Add(2*time.Second)); d != 0 {
		t.Fatalf("Wait(a) 2s later = %v, want 0", d)
	}
	if d := l.Wait("b", 6, now); d <= 0 {
		t.Fatalf("Wait(b, 6) over a burst of 5 = %v, want > 0", d)
	}
	if d := l.Wait("b", 5, now); d != 0 {
		t.Fatalf("Wait(b, 5) after a refused Wait = %v, want 0 (nothing was taken)", d)
	}
	var none *Limiter
	if d := none.Wait("a", 100, now); d != 0 {
		t.Fatalf("nil Limiter Wait = %v, want 0", d)
	}
	none.Charge("a", 1, now)
}
