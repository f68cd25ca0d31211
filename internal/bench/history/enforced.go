package history

import "time"

// enforced works out, for each acknowledged revocation and each process
// that followed a token it covers for it (verdicts marked Follow, with the
// revocation's Op), the time from the answer to that process's first
// refusal.
func (c *checker) enforced() {
	type key struct {
		rev int
		p   string
	}
	first := map[key]int64{}
	for i := range c.evs {
		e := &c.evs[i]
		if e.Kind != KindVerify || e.Detail != Follow || e.Verdict == Accept || e.Verdict == Indefinite {
			continue
		}
		for _, r := range c.covering(e) {
			if e.T < r.e.T || e.Op != r.e.Op {
				continue
			}
			k := key{r.n, e.P}
			if t, ok := first[k]; !ok || e.T < t {
				first[k] = e.T
			}
		}
	}
	for k, t := range first {
		c.res.Enforced = append(c.res.Enforced, time.Duration(t-c.evs[k.rev-1].T))
	}
}
