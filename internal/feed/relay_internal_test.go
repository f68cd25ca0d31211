package feed

import (
	"testing"
	"time"
)

// TestRelayLicences: a relay's hub licenses a lease naming head only
// with the relay's lease end as it stood at a position at or below head;
// states of another epoch, or unsynced, license nothing.
func TestRelayLicences(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	rh := &relayHub{epoch: "e"}
	for _, st := range []State{
		{Epoch: "e", Synced: true, Position: 10, FreshUntil: at(5)},
		{Epoch: "other", Synced: true, Position: 15, FreshUntil: at(50)},
		{Epoch: "e", Synced: false, Position: 16, FreshUntil: at(60)},
		{Epoch: "e", Synced: true, Position: 20, FreshUntil: at(8)},
		{Epoch: "e", Synced: true, Position: 25, FreshUntil: at(8)}, // adds nothing
		{Epoch: "e", Synced: true, Position: 30, FreshUntil: at(9)},
		{Epoch: "e", Synced: true, Position: 30, FreshUntil: at(10)},
	} {
		rh.note(st)
	}
	for _, tc := range []struct {
		head int64
		want time.Time
	}{
		{9, time.Time{}}, {10, at(5)}, {19, at(5)}, {20, at(8)}, {29, at(8)}, {30, at(10)}, {1000, at(10)},
	} {
		if got := rh.licenceLocked(tc.head); !got.Equal(tc.want) {
			t.Errorf("licence(%d) = %v, want %v", tc.head, got, tc.want)
		}
	}
	if len(rh.lic) != 3 {
		t.Errorf("licences kept = %+v, want 3 (10, 20, 30)", rh.lic)
	}
}
