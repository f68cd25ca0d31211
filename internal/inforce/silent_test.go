package inforce

import (
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

func TestSilent(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	bound := 10 * time.Second
	rec := func(id, name, host string, ago time.Duration) store.VerifierRecord {
		return store.VerifierRecord{ID: id, Name: name, Host: host, StaleAfter: bound, HeardAt: now.Add(-ago)}
	}
	for _, tc := range []struct {
		name string
		vs   []store.VerifierRecord
		want int
	}{
		{"heard within its bound", []store.VerifierRecord{rec("a", "gate", "h1", 9*time.Second)}, 0},
		{"frozen past its bound", []store.VerifierRecord{rec("a", "gate", "h1", 14*time.Second)}, 1},
		{"silent longer than the hold", []store.VerifierRecord{rec("a", "gate", "h1", bound+SilentHold+time.Second)}, 0},
		{"restarted: same name and host heard since", []store.VerifierRecord{rec("a", "gate", "h1", time.Minute), rec("b", "gate", "h1", time.Second)}, 0},
		{"another gate heard since", []store.VerifierRecord{rec("a", "gate", "h1", time.Minute), rec("b", "gate", "h2", time.Second)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := map[string]store.VerifierRecord{}
			for _, v := range tc.vs {
				vs[v.ID] = v
			}
			if got := silent(vs, now); got != tc.want {
				t.Errorf("silent(%s) = %d, want %d", tc.name, got, tc.want)
			}
		})
	}
}
