// The Verifier: the authority's keys, its revocation feed and a token
// cache, with the semantics of Go's verifier package.
import { fail, VerifyError } from './errors.js'
import { verifyToken, window, checkTimes, EdDSA, ES256, DEFAULT_MAX_SIZE } from './token.js'
import { discover, fetchKeys, sameKey } from './keys.js'
import { RevocationSet, FullError } from './set.js'
import { Follower } from './feed.js'
import { request, each, sleep, backoff } from './http.js'
import { checkClock } from './clock.js'

export const defaults = Object.freeze({
  leewayMs: 30_000, maxLifetimeMs: 3_600_000, staleAfterMs: 10_000, maxEntries: 2_000_000,
  cacheSize: 10_000, jwksRefreshMs: 300_000,
})
const PRUNE_EVERY = 5000
const UNKNOWN_KID_INTERVAL = 10_000
const MAX_NAME = 200

const consoleLogger = {
  debug() {}, info() {},
  warn: (msg, attrs) => console.warn(msg, attrs ?? ''),
  error: (msg, attrs) => console.error(msg, attrs ?? ''),
}

/** checkOptions validates the options and fills the defaults; it throws a TypeError naming the field. */
function checkOptions(o) {
  if (!o || typeof o !== 'object') throw new TypeError('createVerifier: options object required')
  const authorities = (o.authorities ?? []).map((a) => {
    let u
    try { u = new URL(a) } catch { u = null }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !u.host) {
      throw new TypeError(`createVerifier: authority ${JSON.stringify(a)} is not an http(s) base URL`)
    }
    return String(a).replace(/\/+$/, '')
  })
  if (authorities.length === 0) throw new TypeError('createVerifier: no authority configured (authorities)')
  const feedKey = String(o.feedKey ?? o.apiKey ?? '').trim()
  if (!feedKey) throw new TypeError('createVerifier: feedKey is required (a key with the feed role, TEGATA_FEED_KEY)')
  if (/^bearer /i.test(feedKey)) throw new TypeError('createVerifier: feedKey must be the key alone, without "Bearer "')
  const algorithms = o.algorithms ?? [EdDSA, ES256]
  for (const a of algorithms) {
    if (a !== EdDSA && a !== ES256) throw new TypeError(`createVerifier: algorithm ${JSON.stringify(a)}: only EdDSA and ES256`)
  }
  const staleAfterMs = o.staleAfterMs > 0 ? o.staleAfterMs : defaults.staleAfterMs
  if (staleAfterMs < 1 || staleAfterMs > 86_400_000) throw new TypeError('createVerifier: staleAfterMs must be 1 ms to 24 h')
  const name = o.name ?? ''
  if (Buffer.byteLength(name) > MAX_NAME || /[\p{Cc}]/u.test(name)) {
    throw new TypeError(`createVerifier: name must be at most ${MAX_NAME} bytes of printable UTF-8`)
  }
  return {
    authorities, feedKey, algorithms, staleAfterMs, name,
    issuer: o.issuer ?? '', audience: o.audience ?? '',
    leewayMs: o.leewayMs ?? 0, maxLifetimeMs: o.maxLifetimeMs ?? 0,
    introspect: !!o.introspect,
    maxEntries: o.maxEntries > 0 ? o.maxEntries : defaults.maxEntries,
    cacheSize: o.cacheSize === undefined || o.cacheSize === 0 ? defaults.cacheSize : o.cacheSize,
    jwksRefreshMs: o.jwksRefreshMs > 0 ? o.jwksRefreshMs : defaults.jwksRefreshMs,
    clock: checkClock(o.clock, 'createVerifier'),
    logger: { ...consoleLogger, ...(o.logger ?? {}) },
  }
}

export class Verifier {
  constructor(opts) {
    this.cfg = checkOptions(opts)
    this.clock = this.cfg.clock
    this.log = this.cfg.logger
    this.set = new RevocationSet(this.cfg.maxEntries)
    this.cache = this.cfg.cacheSize > 0 ? new Map() : null
    this.keys = new Map()
    this.overflow = false
    this.closed = new AbortController()
    this.timers = []
    this.lastKidFetch = 0
    this.kidFetch = null
  }

  /** start discovers the authority, fetches its keys and opens the feed; it returns once a stream was accepted. */
  async start(signal) {
    const d = await this.retry(() => discover(this.cfg.authorities, this.closed.signal), signal)
    this.adopt(d)
    const ks = await this.retry(() => fetchKeys(this.cfg.authorities, this.closed.signal), signal)
    this.keys = ks.keys
    this.feed = new Follower({
      urls: this.cfg.authorities, apiKey: this.cfg.feedKey, clock: this.clock, logger: this.log,
      staleAfter: this.cfg.staleAfterMs, name: this.cfg.name, idle: Math.max(this.cfg.staleAfterMs / 2, 2000),
      apply: (e) => this.apply(e), reset: () => this.reset(), ready: () => this.complete(),
    })
    this.feed.start()
    this.every(PRUNE_EVERY, () => this.prune(this.now()))
    this.every(this.cfg.jwksRefreshMs, () => this.refreshKeys().catch((err) =>
      this.log.warn('tegata: key set fetch failed', { err: err.message })))
    const st = await this.feed.wait((st) => st.opened || (st.refusals >= this.cfg.authorities.length && st.refusedErr),
      anySignal(signal, this.closed.signal))
    if (!st.opened) {
      await this.close()
      throw new Error(`tegata: every authority refused the feed key: ${st.refusedErr.message}`, { cause: st.refusedErr })
    }
  }

  async retry(fn, signal) {
    for (let failures = 1; ; failures++) {
      try {
        return await fn()
      } catch (err) {
        if (signal?.aborted || this.closed.signal.aborted) throw err
        this.log.warn('tegata: authority not reachable yet; retrying', { err: err.message })
        await sleep(backoff(failures, 100, 5000), anySignal(signal, this.closed.signal))
      }
    }
  }

  /** now is the clock's time, Unix ms. */
  now() {
    return this.clock.now()
  }

  /** every calls fn every ms on the verifier's clock until close. */
  every(ms, fn) {
    const t = { handle: null }
    const arm = () => {
      t.handle = this.clock.setTimeout(() => { arm(); fn() }, ms)
      t.handle?.unref?.()
    }
    arm()
    this.timers.push(t)
  }

  /** adopt takes the issuer, audience, lifetime and leeway the authority publishes (where the options leave them). */
  adopt(d) {
    const c = this.cfg
    if (c.issuer && d.issuer && c.issuer !== d.issuer) this.log.warn('tegata: issuer option differs from the published one', { option: c.issuer, published: d.issuer })
    if (c.audience && d.tegata_access_token_audience && c.audience !== d.tegata_access_token_audience) {
      this.log.warn('tegata: audience option differs from the published one; every token will be refused', { option: c.audience })
    }
    const published = (d.tegata_leeway ?? 0) * 1000
    if (c.leewayMs > 0 && published > 0 && c.leewayMs > published) {
      throw new TypeError(`createVerifier: leewayMs ${c.leewayMs} is larger than the authority's leeway (${published} ms): revocations stop coming that long after they expire`)
    }
    let leeway = c.leewayMs > 0 ? c.leewayMs : c.leewayMs < 0 ? 0 : (published || defaults.leewayMs)
    this.expect = {
      issuer: c.issuer || d.issuer || '',
      audience: c.audience || d.tegata_access_token_audience || '',
      algorithms: c.algorithms,
      leeway,
      maxLifetime: c.maxLifetimeMs > 0 ? c.maxLifetimeMs : ((d.tegata_access_token_max_lifetime ?? 0) * 1000 || defaults.maxLifetimeMs),
      maxSize: DEFAULT_MAX_SIZE,
    }
  }

  /** follow adopts a later discovery: a new lifetime or a lowered leeway. */
  follow(d) {
    const e = { ...this.expect }
    const c = this.cfg
    if (!(c.maxLifetimeMs > 0) && d.tegata_access_token_max_lifetime > 0) e.maxLifetime = d.tegata_access_token_max_lifetime * 1000
    const published = (d.tegata_leeway ?? 0) * 1000
    if (published > 0 && (c.leewayMs === 0 || e.leeway > published)) e.leeway = published
    if (e.maxLifetime !== this.expect.maxLifetime || e.leeway !== this.expect.leeway) this.expect = e
  }

  async refreshKeys() {
    const d = await discover(this.cfg.authorities, this.closed.signal)
    this.follow(d)
    const ks = await fetchKeys(this.cfg.authorities, this.closed.signal)
    const fe = this.feed?.st.epoch ?? ''
    if (ks.epoch && fe && ks.epoch !== fe) {
      this.log.warn('tegata: the key set comes from another log than the feed\'s; reconnecting the feed', { keys_epoch: ks.epoch, feed_epoch: fe })
      this.feed.reconnect()
      return
    }
    this.keys = ks.keys
  }

  /** refetch fetches the keys again for an unknown kid, at most once per UNKNOWN_KID_INTERVAL; true if it did. */
  async refetch() {
    if (this.kidFetch) return this.kidFetch
    if (this.now() - this.lastKidFetch < UNKNOWN_KID_INTERVAL) return false
    this.lastKidFetch = this.now()
    this.kidFetch = this.refreshKeys().then(() => true, () => false).finally(() => { this.kidFetch = null })
    return this.kidFetch
  }

  apply(e) {
    try {
      this.set.apply(e)
      if (this.overflow) {
        this.overflow = false
        this.log.info('tegata: revocation set has room again', { seq: e.seq })
      }
    } catch (err) {
      if (err instanceof FullError && !this.overflow) {
        this.overflow = true
        this.log.warn('tegata: revocation set full; feed paused until pruning makes room', { max_entries: this.cfg.maxEntries, seq: e.seq })
      }
      throw err
    }
  }

  reset() {
    this.set.clear()
    this.overflow = false
    this.cache?.clear()
    this.refreshKeys().catch(() => {})
  }

  prune(now) {
    this.set.prune(now - this.expect.leeway)
    if (this.cache) for (const [raw, e] of this.cache) if (now > e.until) this.cache.delete(raw)
  }

  /**
   * complete is the readiness reported to the authority: the feed has caught up and the set refused no
   * entry for want of room. The lease is left out: the authority knows which leases it granted, and a
   * lease counted here would make the answer granting a stream's first lease a second report.
   */
  complete() {
    return this.feed.st.synced && !this.overflow
  }

  /** staleness returns null when the revocation set can be trusted at now, else a VerifyError saying why. */
  staleness(now) {
    const st = this.feed.st
    const fresh = st.synced && now <= st.freshUntil
    if (fresh && !this.overflow) return null
    if (!st.synced) return fail('stale', 'not caught up with the authority\'s feed')
    if (!fresh && now - st.lastHeard > this.cfg.staleAfterMs) return fail('stale', `nothing heard from the authority for ${now - st.lastHeard} ms`)
    if (st.freshUntil === 0) return fail('stale', 'the authority has not yet acknowledged this verifier\'s position')
    if (!fresh) return fail('stale', `the authority has not acknowledged this verifier's position for over ${this.cfg.staleAfterMs} ms`)
    return fail('stale', `revocation set full (${this.cfg.maxEntries} entries); feed paused`)
  }

  /** verify resolves to the token's claims (deep-frozen, shared) or rejects with a VerifyError. */
  verify(raw) {
    const now = this.now()
    let e
    try {
      e = this.cached(raw, now)
    } catch (err) {
      return Promise.reject(err)
    }
    if (e) return this.checkRevocation(raw, e, now)
    return this.verifyFresh(raw, now)
  }

  cached(raw, now) {
    const e = this.cache?.get(raw)
    if (!e) return null
    const k = this.keys.get(e.key.kid)
    if (!sameKey(k, e.key)) {
      this.cache.delete(raw)
      return null
    }
    if (e.expect === this.expect && now >= e.from && now <= e.until) return e
    try {
      checkTimes(e.times, this.expect, now)
      return e
    } catch (err) {
      if (err.code === 'expired') this.cache.delete(raw)
      throw err
    }
  }

  async verifyFresh(raw, now) {
    let v
    try {
      v = await verifyToken(raw, this.keys, this.expect, now)
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err
      if ((err.code !== 'unknown_key' && err.code !== 'claims') || !(await this.refetch())) throw err
      v = await verifyToken(raw, this.keys, this.expect, now)
    }
    const [from, until] = window(v.times, this.expect)
    const e = { claims: v.claims, key: v.key, times: v.times, expect: this.expect, from, until }
    if (this.cache) {
      if (this.cache.size >= this.cfg.cacheSize) this.cache.delete(this.cache.keys().next().value)
      this.cache.set(raw, e)
    }
    return this.checkRevocation(raw, e, now)
  }

  /** checkRevocation rejects a revoked token, then fails closed (or introspects) if the set cannot be trusted. */
  checkRevocation(raw, e, now) {
    const c = e.claims
    const kind = this.set.revoked(c.sid, c.sub, c.sgen ?? 0)
    if (kind) return Promise.reject(fail('revoked', `token revoked: ${kind}`))
    const stale = this.staleness(now)
    if (!stale) return Promise.resolve(c)
    if (!this.cfg.introspect) return Promise.reject(stale)
    return this.introspect(raw).then(() => c)
  }

  async introspect(raw) {
    let active
    try {
      active = await each(this.cfg.authorities, async (base) => {
        const { body } = await request(`${base}/v1/introspect`, {
          method: 'POST', body: new URLSearchParams({ token: raw }),
          headers: { Authorization: `Bearer ${this.cfg.feedKey}`, Accept: 'application/json' },
        }, this.closed.signal)
        const a = JSON.parse(body).active
        if (typeof a !== 'boolean') throw new Error('introspection answer without "active"')
        return a
      })
    } catch (err) {
      throw fail('unavailable', `introspection: ${err.message}`, err)
    }
    if (!active) throw fail('inactive', 'the authority says the token is not active')
  }

  state() {
    const now = this.now()
    const fs = this.feed.st
    const stale = this.staleness(now)
    return {
      ready: stale === null, stale: stale !== null, reason: stale ? stale.message : '',
      position: fs.position, head: fs.head, lastHeard: fs.lastHeard,
      lagMs: fs.lastHeard ? now - fs.lastHeard : null,
      entries: this.set.size, overflow: this.overflow, source: fs.source, connected: fs.connected,
      keys: this.keys.size, err: fs.err, id: fs.id, epoch: fs.epoch, freshUntil: fs.freshUntil,
    }
  }

  /** ready resolves once the verifier answers from local state alone (caught up, lease held). */
  async ready({ signal } = {}) {
    const s = anySignal(signal, this.closed.signal)
    await this.feed.wait((st) => st.synced, s)
    while (this.staleness(this.now()) !== null) {
      // A lease arrives as a state change; time passing does not make it come sooner.
      await Promise.race([this.feed.wait((st) => st.freshUntil >= this.now() && st.synced, s), sleep(20, s)])
      if (s.aborted) throw s.reason ?? new Error('aborted')
    }
  }

  /** waitApplied resolves once every revocation up to log position seq is applied. */
  async waitApplied(seq, { signal } = {}) {
    await this.feed.wait((st) => st.position >= seq, anySignal(signal, this.closed.signal))
  }

  async close() {
    this.closed.abort(new Error('tegata: verifier closed'))
    for (const t of this.timers) this.clock.clearTimeout(t.handle)
    await this.feed?.close()
  }
}

function anySignal(...signals) {
  return AbortSignal.any(signals.filter(Boolean))
}

/** createVerifier builds a Verifier, discovers the authority, fetches its keys and opens the feed. */
export async function createVerifier(opts) {
  const v = new Verifier(opts)
  await v.start(opts?.signal)
  return v
}
