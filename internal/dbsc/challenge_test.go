package dbsc

import (
	"errors"
	"testing"
	"time"
)

const testRT = "rt_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"

func TestChallengeBoundaries(t *testing.T) {
	issued := time.Unix(1_800_000_000, 123_000_000)
	c := Challenge(testRT, issued)
	tests := []struct {
		name     string
		c        string
		rt       string
		now      time.Time
		accepted bool
	}{
		{"at once", c, testRT, issued, true},
		{"at the max age", c, testRT, issued.Add(ChallengeMaxAge), true},
		{"a second past the max age", c, testRT, issued.Add(ChallengeMaxAge + time.Second), false},
		{"a minute ahead (clock skew)", c, testRT, issued.Add(-challengeSkew), true},
		{"more than a minute ahead", c, testRT, issued.Add(-challengeSkew - time.Second), false},
		{"another refresh token", c, testRT + "x", issued, false},
		{"empty", "", testRT, issued, false},
		{"not base64url", "!!!!", testRT, issued, false},
		{"truncated", c[:len(c)-2], testRT, issued, false},
		{"one bit of the MAC flipped", flip(c), testRT, issued, false},
	}
	for _, tt := range tests {
		at, err := CheckChallenge(tt.c, tt.rt, tt.now)
		if (err == nil) != tt.accepted {
			t.Errorf("%s: CheckChallenge = %v, want accepted %v", tt.name, err, tt.accepted)
		}
		if err == nil && !at.Equal(issued) {
			t.Errorf("%s: CheckChallenge = %v, want the issue time %v", tt.name, at, issued)
		}
		if err != nil && !errors.Is(err, ErrChallenge) {
			t.Errorf("%s: CheckChallenge = %v, want ErrChallenge", tt.name, err)
		}
	}
}

// flip changes the last character of a base64url string to another valid
// one, changing the MAC's last bits.
func flip(s string) string {
	last := s[len(s)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'Q'
	}
	return s[:len(s)-1] + string(repl)
}

func TestChallengeChangesWithTime(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	if Challenge(testRT, t0) == Challenge(testRT, t0.Add(time.Millisecond)) {
		t.Error("Challenge is the same one millisecond later, want a new one: each is accepted once")
	}
	if Challenge(testRT, t0) != Challenge(testRT, t0.Add(999*time.Microsecond)) {
		t.Error("Challenge differs within one millisecond, want whole milliseconds")
	}
}
