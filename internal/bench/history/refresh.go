package history

import "sort"

// refreshes checks every refresh token's uses: at most one successor; a
// second success only within the grace window of the first and before the
// successor was used; and no success in a session after a definitive
// refusal there (a refused reuse revokes the session).
func (c *checker) refreshes() {
	byRT := map[string][]line{}
	refusedAt := map[string]line{} // session → its earliest definitive refusal
	for i := range c.evs {
		l := line{i + 1, &c.evs[i]}
		if l.e.Kind != KindRefresh {
			continue
		}
		switch {
		case l.e.OK:
			byRT[l.e.RT] = append(byRT[l.e.RT], l)
		case l.e.Verdict == InvalidGrant:
			if r, ok := refusedAt[l.e.SID]; !ok || l.e.T < r.e.T {
				refusedAt[l.e.SID] = l
			}
		}
	}
	for _, uses := range byRT {
		sort.SliceStable(uses, func(i, j int) bool { return uses[i].e.T < uses[j].e.T })
		first := uses[0]
		for _, u := range uses {
			c.res.Checks[RuleRefresh]++
			c.refreshUse(u, first, byRT[first.e.NewRT])
			if r, ok := refusedAt[u.e.SID]; ok && u.e.Start > r.e.T {
				c.flag(RuleRefresh, u, r.n, "refresh of session %s accepted after a reuse was refused there at %s, which revokes the session", u.e.SID, at(r.e.T))
			}
		}
	}
}

// refreshUse checks one successful use u of a refresh token whose first
// successful use was first; successorUses are the uses of first's answer.
func (c *checker) refreshUse(u, first line, successorUses []line) {
	if u.n == first.n {
		return
	}
	if u.e.NewRT != first.e.NewRT {
		c.flag(RuleRefresh, u, first.n, "refresh token %s answered with successor %s, though it was already rotated to %s: the chain forked", u.e.RT, u.e.NewRT, first.e.NewRT)
	}
	if u.e.Start > first.e.T+int64(c.p.Grace) {
		c.flag(RuleRefresh, u, first.n, "refresh token %s accepted again %s after its first use was answered, outside the %s grace window", u.e.RT, at(u.e.Start-first.e.T), at(int64(c.p.Grace)))
	}
	for _, s := range successorUses {
		if s.e.T < u.e.Start {
			c.flag(RuleRefresh, u, s.n, "refresh token %s accepted again after its successor %s had been used", u.e.RT, first.e.NewRT)
			return
		}
	}
}

// lost checks, when the history holds the store's contents at the end,
// that every acknowledged revocation is in the log and every created
// session in the store.
func (c *checker) lost() {
	logged := map[int64]line{}
	stored := map[string]bool{}
	audited := false
	for i := range c.evs {
		e := &c.evs[i]
		switch e.Kind {
		case KindLogged:
			logged[e.Seq] = line{i + 1, e}
		case KindStored:
			stored[e.SID] = true
		case KindAudited:
			audited = true
		}
	}
	if !audited {
		return
	}
	for _, r := range c.revokes {
		c.res.Checks[RuleLost]++
		g, ok := logged[r.e.Seq]
		switch {
		case !ok:
			c.flag(RuleLost, r, 0, "acknowledged revocation seq %d is not in the log", r.e.Seq)
		case g.e.SID != r.e.SID || g.e.Sub != r.e.Sub || g.e.SGen != r.e.SGen:
			c.flag(RuleLost, r, g.n, "the log's seq %d is another entry (session %q subject %q sgen %d)", r.e.Seq, g.e.SID, g.e.Sub, g.e.SGen)
		}
	}
	for i := range c.evs {
		e := &c.evs[i]
		if e.Kind == KindSession && e.OK {
			c.res.Checks[RuleLost]++
			if !stored[e.SID] {
				c.flag(RuleLost, line{i + 1, e}, 0, "acknowledged session %s is not in the store", e.SID)
			}
		}
	}
}
