package token

import (
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/validity"
)

// TestWindowMatchesCheckTimes: Verify's time rules (checkTimes) accept
// exactly the instants of validity.Window, which the verifier's cache
// relies on, at and around both ends, whichever rule sets them.
func TestWindowMatchesCheckTimes(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		c    Claims
		e    Expect
	}{
		{"iat and exp", Claims{IssuedAt: t0, Expiry: t0.Add(15 * time.Minute)}, Expect{Leeway: 30 * time.Second}},
		{"nbf after iat", Claims{IssuedAt: t0, NotBefore: t0.Add(time.Minute), Expiry: t0.Add(15 * time.Minute)}, Expect{Leeway: time.Second}},
		{"nbf before iat", Claims{IssuedAt: t0, NotBefore: t0.Add(-time.Minute), Expiry: t0.Add(15 * time.Minute)}, Expect{}},
		{"max lifetime binds", Claims{IssuedAt: t0, Expiry: t0.Add(2 * time.Hour)}, Expect{Leeway: 30 * time.Second, MaxLifetime: time.Hour}},
		{"max lifetime loose", Claims{IssuedAt: t0, Expiry: t0.Add(time.Minute)}, Expect{MaxLifetime: time.Hour}},
		{"no leeway", Claims{IssuedAt: t0, Expiry: t0.Add(time.Minute)}, Expect{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, until := validity.Window(tt.c.IssuedAt, tt.c.NotBefore, tt.c.Expiry, tt.e.Leeway, tt.e.MaxLifetime)
			for _, at := range []struct {
				now  time.Time
				want bool
			}{
				{from.Add(-time.Nanosecond), false}, {from, true}, {from.Add(time.Nanosecond), true},
				{until.Add(-time.Nanosecond), true}, {until, true}, {until.Add(time.Nanosecond), false},
			} {
				if got := tt.e.checkTimes(&tt.c, at.now) == nil; got != at.want {
					t.Errorf("checkTimes(at %v, window [%v, %v]) accepts = %v, want %v", at.now, from, until, got, at.want)
				}
			}
		})
	}
}
