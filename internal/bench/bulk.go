package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// bulkCanaries is how many of the bulk revocation's subjects get a session
// whose token every gate is asked about.
const bulkCanaries = 20

// bulkRun is the end-to-end bulk revocation measured before the flood: one
// call cutting off Bulk subjects, from the call until every gate rejects
// the tokens of the canaries among them.
type bulkRun struct {
	subjects int
	canaries []client.Tokens
	answered time.Duration // call → answer
	rejected time.Duration // call → every gate rejects every canary
}

func bulkSubject(i int) string { return fmt.Sprintf("bulk-%d", i) }

// prepareBulk signs in the canaries and makes sure every gate accepts them.
func (f *floodRun) prepareBulk(ctx context.Context) error {
	if f.cfg.Bulk == 0 {
		return nil
	}
	f.bulk = &bulkRun{subjects: f.cfg.Bulk}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for _, i := range rng.Perm(f.cfg.Bulk)[:min(bulkCanaries, f.cfg.Bulk)] {
		t, err := f.c.clients[i%len(f.c.clients)].CreateSession(ctx, client.SessionRequest{Subject: bulkSubject(i), Device: "bulk canary"})
		if err != nil {
			return fmt.Errorf("bench: bulk canary session: %w", err)
		}
		f.bulk.canaries = append(f.bulk.canaries, t)
	}
	return checkAccepted(ctx, f.c.hc, f.c.gateURL, f.bulk.canaries, 16)
}

// runBulk revokes the bulk subjects in one call to the first node and
// polls every gate with every canary token, every millisecond, until all
// are rejected as revoked.
func (f *floodRun) runBulk(ctx context.Context) error {
	b := f.bulk
	if b == nil {
		return nil
	}
	items := make([]client.RevokeItem, b.subjects)
	for i := range items {
		items[i] = client.RevokeItem{Subject: bulkSubject(i), Scope: client.ScopeSessions}
	}
	f.cfg.logf("flood: bulk revocation of %d subjects, end to end", b.subjects)
	start := time.Now()
	if _, err := f.c.clients[0].RevokeMany(ctx, client.BulkRevocation{Items: items, Reason: "bench bulk"}); err != nil {
		return fmt.Errorf("bench: bulk revocation: %w", err)
	}
	b.answered = time.Since(start)
	pending := make(map[[2]int]bool)
	for i := range b.canaries {
		for g := range f.c.gateURL {
			pending[[2]int{i, g}] = true
		}
	}
	deadline := start.Add(f.cfg.Timeout)
	for len(pending) > 0 {
		for k := range pending {
			revoked, err := revokedAt(ctx, f.c.hc, f.c.gateURL[k[1]], b.canaries[k[0]].AccessToken)
			if err != nil {
				return fmt.Errorf("bench: bulk canary at gate %s: %w", f.c.gateURL[k[1]], err)
			}
			if revoked {
				delete(pending, k)
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			f.r.fail("bulk revocation: %d canary tokens still accepted %s after the call", len(pending), f.cfg.Timeout)
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.rejected = time.Since(start)
	return nil
}

func (b *bulkRun) report(r *Report, gates int) {
	if b == nil {
		return
	}
	r.result(fmt.Sprintf("bulk revocation of %d subjects: call answered", b.subjects), b.answered.Seconds(), "s")
	r.result(fmt.Sprintf("bulk revocation of %d subjects: call → every gate rejects", b.subjects), b.rejected.Seconds(), "s")
	r.note("bulk revocation: one POST /v1/revocations of %d subject cutoffs to one node, before the flood; the tokens of %d canaries among them are asked about at all %d gates every 1 ms from the call on, until every gate rejects every one as revoked", b.subjects, len(b.canaries), gates)
}
