// The in-memory revocation set: revoked sessions and subject cutoffs, each
// kept until its expiry (whole seconds, rounded up) has passed.

export class FullError extends Error {
  constructor(max) {
    super(`revocation set is full (${max} entries)`)
    this.name = 'FullError'
  }
}

export class RevocationSet {
  /** @param {number} maxEntries 0: unlimited */
  constructor(maxEntries = 0) {
    this.max = maxEntries
    this.sessions = new Map() // sid -> expiry (unix s)
    this.subjects = new Map() // sub -> { gen, exp }
  }

  get size() {
    return this.sessions.size + this.subjects.size
  }

  /**
   * apply records an entry. It is idempotent; a subject keeps the highest
   * generation and the latest expiry seen, so a late entry never weakens a
   * cutoff. It throws FullError when the entry would add a key to a full
   * set, and an Error for a malformed entry (the feed then stops advancing,
   * and the verifier goes stale: it fails closed).
   */
  apply(e) {
    const exp = Math.ceil(e.expiresAt / 1e6)
    if (e.kind === 'session') {
      if (!e.sid) throw new Error(`seq ${e.seq}: session entry without sid`)
      const old = this.sessions.get(e.sid)
      if (old === undefined) this.reserve()
      this.sessions.set(e.sid, Math.max(old ?? 0, exp))
      return
    }
    if (e.kind === 'subject') {
      if (!e.sub) throw new Error(`seq ${e.seq}: subject entry without sub`)
      const old = this.subjects.get(e.sub)
      if (old === undefined) {
        this.reserve()
        this.subjects.set(e.sub, { gen: e.sgen, exp })
        return
      }
      old.gen = Math.max(old.gen, e.sgen)
      old.exp = Math.max(old.exp, exp)
      return
    }
    throw new Error(`seq ${e.seq}: unknown kind ${JSON.stringify(e.kind)}`)
  }

  reserve() {
    if (this.max > 0 && this.size >= this.max) throw new FullError(this.max)
  }

  /** revoked returns 'session', 'subject' or '' for a token of sid, sub and generation gen. */
  revoked(sid, sub, gen) {
    if (this.sessions.has(sid)) return 'session'
    const cut = this.subjects.get(sub)
    if (cut !== undefined && (gen ?? 0) < cut.gen) return 'subject'
    return ''
  }

  /** prune forgets entries whose expiry is before before (unix ms); returns how many. */
  prune(before) {
    const s = before / 1000
    let n = 0
    for (const [k, exp] of this.sessions) if (exp < s) { this.sessions.delete(k); n++ }
    for (const [k, v] of this.subjects) if (v.exp < s) { this.subjects.delete(k); n++ }
    return n
  }

  clear() {
    this.sessions.clear()
    this.subjects.clear()
  }
}
