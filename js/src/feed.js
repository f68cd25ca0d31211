// The feed follower: one Server-Sent Events stream at a time to one of the
// authorities (round robin on any error), resuming after the last position
// applied, with position reports that earn leases on the follower's
// freshness. The wire format is docs/feed-protocol.md's; see docs/node.md
// for why fetch streaming rather than an EventSource client.
import { randomBytes } from 'node:crypto'
import { SSEDecoder, parseLines } from './sse.js'
import { sleep, backoff, HOST, VERSION } from './http.js'
import { wallClock } from './clock.js'

const REPORT_SPACING = 5 // ms between the starts of two reports of a stream
const REPORT_TIMEOUT = 5000
const MAX_LEASES = 16
// A failed report is retried after a jittered backoff from REPORT_RETRY_MIN
// doubling up to REPORT_RETRY_MAX ms, as Go's follower does (reportRetryMin
// and reportRetryMax in internal/feed).
const REPORT_RETRY_MIN = 100
const REPORT_RETRY_MAX = 1000
/**
 * A follower renews its lease once 1/RENEW_SHARE of it has passed since the
 * report that earned it was sent, as Go's feed.RenewShare: the first report
 * of a stream still catching up, and the belief in a node's
 * unknown_verifier, wait as long.
 */
export const RENEW_SHARE = 2
/**
 * A 429's Retry-After holds the next stream back at most MAX_RETRY_AFTER
 * ms, as Go's maxRetryAfter: a node asks for a few seconds (5 past its
 * stream caps), while a proxy in front of it may ask for an hour (a
 * maintenance page), which would keep the verifier stale that long though
 * another node, or the same one a minute later, would take its stream.
 */
export const MAX_RETRY_AFTER = 30_000

export function newFollowerID() {
  return randomBytes(12).toString('base64url')
}

class StreamEnd extends Error {}

/** The errors that retrying does not fix: the API key refused (401/403) or the request refused as invalid (400). */
export class RefusedError extends Error {
  constructor(status, body) {
    super(status === 400
      ? `feed: the authority refused the feed request as invalid (${status}): ${body}`
      : `feed: the authority refused the API key (${status}); it needs a live key with the feed role: ${body}`)
    this.name = 'RefusedError'
    this.status = status
  }
}

export class Follower {
  /**
   * @param {object} o
   * @param {string[]} o.urls authorities' base URLs
   * @param {string} o.apiKey
   * @param {(e: object) => void} o.apply records an entry; a throw pauses the feed
   * @param {() => void} o.reset clears everything applied
   * @param {{now: () => number, setTimeout: Function, clearTimeout: Function}} [o.clock] the verifier's clock
   *   (default the wall clock): leases are counted and renewed on it; waits on an authority stay on the wall clock
   * @param {object} o.logger
   * @param {number} o.staleAfter ms
   * @param {string} o.name
   * @param {() => boolean} o.ready the verifier's own view of whether its state is complete, its lease aside
   * @param {number} o.idle ms without any event before a stream is dropped
   */
  constructor(o) {
    Object.assign(this, o)
    this.clock ??= wallClock
    this.retryMin ??= 100
    this.retryMax ??= 5000
    this.st = {
      position: 0, head: 0, lastHeard: 0, synced: false, source: '', connected: false, err: '',
      epoch: '', id: newFollowerID(), freshUntil: 0, keyRole: '', opened: false, refusals: 0, refusedErr: null,
    }
    this.leases = []
    this.tokens = new Map()
    this.waiters = new Set()
    this.stop = new AbortController()
    this.streamAbort = null
    this.done = null
  }

  state() {
    return { ...this.st }
  }

  /** now is the clock's time, Unix ms. */
  now() {
    return this.clock.now()
  }

  /** update changes the state, turns applied leases into freshness and wakes waiters. */
  update(f) {
    f(this.st)
    const kept = []
    for (const l of this.leases) {
      if (this.st.position >= l.head) this.st.freshUntil = Math.max(this.st.freshUntil, l.until)
      else kept.push(l)
    }
    this.leases = kept
    for (const w of this.waiters) w()
  }

  /** wait resolves with the state once ok(state) holds, or rejects when signal aborts. */
  wait(ok, signal) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (ok(this.st)) { cleanup(); resolve(this.state()); return true }
        return false
      }
      const onAbort = () => { cleanup(); reject(signal.reason ?? new Error('aborted')) }
      const cleanup = () => { this.waiters.delete(check); signal?.removeEventListener('abort', onAbort) }
      if (check()) return
      if (signal?.aborted) return onAbort()
      this.waiters.add(check)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  start() {
    this.done = this.run()
  }

  async close() {
    this.stop.abort()
    this.streamAbort?.abort(new StreamEnd('closed'))
    await this.done
    for (const w of this.waiters) w()
  }

  /** reconnect ends the current stream; the run loop opens another. */
  reconnect() {
    this.streamAbort?.abort(new StreamEnd('reconnect requested'))
  }

  async run() {
    let failures = 0
    for (let i = 0; !this.stop.signal.aborted; i++) {
      const base = this.urls[i % this.urls.length]
      let healthy = false
      let err = null
      try {
        healthy = await this.stream(base)
      } catch (e) {
        healthy = e.healthy ?? false
        err = e
      }
      const refused = err instanceof RefusedError
      this.update((st) => {
        st.connected = false
        if (err && !this.stop.signal.aborted) st.err = String(err.message ?? err)
        if (refused) { st.refusals++; st.refusedErr = err }
      })
      if (this.stop.signal.aborted) return
      failures = healthy ? 0 : failures + 1
      if (refused) {
        this.logger.error(err.message, { url: base })
        if (this.st.refusals >= this.urls.length) failures = Math.max(failures, 64)
      } else if (!(err instanceof StreamEnd)) {
        this.logger.warn('tegata: feed stream ended', { url: base, err: err?.message, failures })
      }
      if (!(await sleep(this.retryWait(failures, err), this.stop.signal))) return
    }
  }

  /**
   * retryWait is how long to wait before the next stream after failures
   * consecutive failures, the last ending with err: the backoff, or longer
   * when the node said when to come back (Retry-After on a 429), jittered
   * up to half again so that the followers turned away in one storm do not
   * come back together; as Go's follower.
   */
  retryWait(failures, err) {
    const wait = backoff(failures, this.retryMin, this.retryMax)
    const later = err?.retryAfter ?? 0
    return later > 0 ? Math.max(wait, later + Math.random() * (later / 2)) : wait
  }

  /** stream runs one connection; it returns or throws when the stream ends, err.healthy saying whether a heartbeat came. */
  async stream(base) {
    const ctl = new AbortController()
    this.streamAbort = ctl
    let idle = setTimeout(() => ctl.abort(new Error('feed: stream idle')), this.idle)
    const resetIdle = () => { clearTimeout(idle); idle = setTimeout(() => ctl.abort(new Error('feed: stream idle')), this.idle) }
    let reporter = { kick() {}, ask() {}, moved() {}, restart() {} }
    let healthy = false
    try {
      const res = await this.open(base, ctl.signal)
      this.update((st) => {
        Object.assign(st, { connected: true, source: base, opened: true, refusals: 0, refusedErr: null,
          keyRole: res.headers.get('tegata-key-role') ?? '' })
      })
      const role = res.headers.get('tegata-key-role')
      if (role && role !== 'feed' && !this.warnedRole) {
        this.warnedRole = true
        this.logger.warn(`tegata: the feed key has the ${role} role; a verifier needs only feed, and any key it holds can be read where it runs`)
      }
      const tok = res.headers.get('tegata-report-token')
      if (tok) this.tokens.set(base, tok)
      // Freshness rests on leases whatever the answer says of its epoch
      // (a heartbeat names it too): heartbeats cannot vouch for a follower
      // that was frozen.
      this.checkEpoch(res.headers.get('tegata-epoch') ?? '')
      reporter = this.reporter(base, ctl.signal)
      // The first report waits until the follower has caught up (its first heartbeat, see heartbeat),
      // so that it says ready and the lease its answer grants needs no second report.
      if (this.st.synced) reporter.kick()
      const dec = new SSEDecoder()
      for await (const chunk of res.body) {
        for (const ev of dec.push(chunk)) {
          resetIdle()
          if (this.handle(ev, reporter)) healthy = true
        }
      }
      throw new Error('feed: stream ended by the authority')
    } catch (e) {
      const cause = ctl.signal.aborted ? ctl.signal.reason : e
      const err = cause instanceof Error ? cause : new Error(String(cause))
      err.healthy = healthy
      throw err
    } finally {
      clearTimeout(idle)
      ctl.abort(new StreamEnd('stream over'))
      if (this.streamAbort === ctl) this.streamAbort = null
    }
  }

  async open(base, signal) {
    const pos = String(this.st.position)
    const headers = {
      Accept: 'text/event-stream', 'Last-Event-ID': pos, Authorization: `Bearer ${this.apiKey}`,
      'Tegata-Verifier': this.followerHeader(),
    }
    const tok = this.tokens.get(base)
    if (tok) headers['Tegata-Report-Token'] = tok
    const res = await fetch(`${base}/v1/feed?after=${pos}&v=2`, { headers, signal })
    if (res.status !== 200) {
      const body = (await res.text()).slice(0, 512).trim()
      if (res.status === 401 || res.status === 403 || res.status === 400) throw new RefusedError(res.status, body)
      if (res.status === 409 && errorCode(body) === 'verifier_id_taken') this.renewID()
      const err = new Error(`feed: unexpected response ${res.status}: ${body}`)
      if (res.status === 429) err.retryAfter = retryAfter(res.headers.get('retry-after'))
      throw err
    }
    const ct = (res.headers.get('content-type') ?? '').split(';')[0].trim()
    if (ct !== 'text/event-stream') {
      await res.body?.cancel()
      throw new Error(`feed: unexpected content type ${JSON.stringify(ct)}`)
    }
    return res
  }

  followerHeader() {
    const q = new URLSearchParams({ id: this.st.id, stale_after_ms: String(Math.ceil(this.staleAfter)) })
    for (const [k, v] of [['name', this.name], ['host', HOST], ['version', VERSION], ['epoch', this.st.epoch]]) {
      if (v) q.set(k, v)
    }
    return q.toString()
  }

  renewID() {
    const was = this.st.id
    this.st.id = newFollowerID()
    this.tokens.clear()
    this.logger.warn('tegata: another verifier holds this verifier\'s id; naming this one anew', { was, now: this.st.id })
  }

  /** handle acts on one event; it returns true for a heartbeat. */
  handle(ev, reporter) {
    const now = this.now()
    switch (ev.type) {
      case 'revocations':
        this.applyAll(parseLines(ev.data), now, reporter)
        return false
      case 'heartbeat': {
        const hb = JSON.parse(ev.data)
        this.heartbeat({ ...hb, head: seqField(hb, 'head', 'heartbeat') }, now, reporter)
        return true
      }
      case 'reset':
        this.resetTo(seqField(JSON.parse(ev.data), 'head', 'reset'), now)
        // The leases are gone, and the readiness last reported may be what
        // the stream reports again once caught up: that report is the
        // stream's first again, which earns a lease at once.
        reporter.restart()
        return false
      case 'ask':
        this.update((st) => { st.lastHeard = now })
        reporter.ask(seqField(JSON.parse(ev.data), 'position', 'ask'))
        return false
    }
    this.update((st) => { st.lastHeard = now })
    return false
  }

  applyAll(entries, now, reporter) {
    const from = this.st.position
    let applied = from
    let err = null
    for (const e of entries) {
      if (e.seq <= applied) continue // a resumed stream may repeat
      try {
        this.apply(e)
      } catch (cause) {
        err = new Error(`feed: apply seq ${e.seq}: ${cause.message}`, { cause })
        break
      }
      applied = e.seq
    }
    this.update((st) => {
      st.position = applied
      st.lastHeard = now
      st.head = Math.max(st.head, applied)
    })
    if (applied > from) reporter.moved()
    if (err) throw err
  }

  heartbeat(hb, now, reporter) {
    this.checkEpoch(hb.epoch ?? '')
    this.update((st) => {
      st.position = Math.max(st.position, hb.head)
      Object.assign(st, { head: hb.head, lastHeard: now, synced: true, err: '' })
    })
    reporter.moved()
  }

  resetTo(head, now) {
    this.logger.warn('tegata: the authority follows another log; starting over', { head, position: this.st.position })
    this.update((st) => {
      Object.assign(st, { position: 0, head, lastHeard: now, synced: false, freshUntil: 0 })
      this.leases = []
    })
    this.reset()
  }

  /** checkEpoch starts over (and ends the stream) when the authority names another epoch than the one followed. */
  checkEpoch(epoch) {
    if (epoch === '' || epoch === this.st.epoch) return
    if (this.st.epoch === '') {
      this.update((st) => { st.epoch = epoch })
      return
    }
    this.logger.warn('tegata: the authority follows a log with another epoch; starting over', { was: this.st.epoch, now: epoch })
    this.update((st) => {
      Object.assign(st, { position: 0, head: 0, synced: false, epoch, freshUntil: 0 })
      this.leases = []
    })
    this.reset()
    throw new StreamEnd('feed: the authority\'s log has another epoch; starting over')
  }

  /**
   * reporter returns the stream's reporter. It reports, as the feed
   * protocol says: once the stream has caught up (to earn a first lease;
   * not ready, half the bound after it opened, if it is still catching up
   * then), when the node asks for a position the follower has applied,
   * when half of the last lease has passed, and when the follower's
   * readiness changes; never
   * merely because entries or heartbeats came. Reports go at most one per
   * 5 ms, coalesced, each a POST /v1/feed/position on a kept-alive
   * connection (see docs/node.md for why not the report stream).
   */
  reporter(base, signal) {
    let pending = false
    let running = false
    let answered = this.now()
    let failing = false
    // A lease runs out on the follower's clock, so it is renewed on that
    // clock; a failed report is retried on the wall clock, as every wait on
    // an authority is.
    const clock = this.clock
    let renew = null
    let retry = null
    let failures = 0
    // gen counts restarts: an answer to a report sent before the last
    // restart says nothing of the stream since. tried: the stream's first
    // report (the first since a restart) has been sent; a failed one is
    // retried on the timer, not at every event.
    const r = { reported: -1, asked: 0, ready: undefined, gen: 0, tried: false }
    const loop = async () => {
      running = true
      while (pending && !signal.aborted) {
        pending = false
        const start = performance.now()
        const gen = r.gen
        r.tried = true
        // What the report says counts as said from now on: an ask it
        // answers, or a readiness it carries, arriving while it is on its
        // way calls for no second report. A failed report takes it back.
        const was = { reported: r.reported, ready: r.ready }
        const ready = this.ready()
        const position = this.st.position
        r.reported = Math.max(r.reported, position)
        r.ready = ready
        try {
          const lease = await this.report(base, signal, answered, position, ready)
          answered = this.now()
          failures = 0
          clearTimeout(retry)
          clock.clearTimeout(renew)
          renew = clock.setTimeout(kick, Math.max(lease / RENEW_SHARE, REPORT_SPACING))
          if (ready !== this.ready()) pending = true // its readiness changed meanwhile: say so now
          if (failing) this.logger.info('tegata: position reports accepted again', { url: base })
          failing = false
        } catch (err) {
          if (gen === r.gen) Object.assign(r, was)
          if (!signal.aborted && !failing) {
            this.logger.warn('tegata: position report failed; the authority grants no lease meanwhile', { url: base, err: err.message })
            failing = true
          }
          // A retry is a renewal: it must earn a lease.
          failures++
          clock.clearTimeout(renew)
          clearTimeout(retry)
          if (!signal.aborted) retry = setTimeout(kick, backoff(failures, REPORT_RETRY_MIN, REPORT_RETRY_MAX))
        }
        const wait = REPORT_SPACING - (performance.now() - start)
        if (wait > 0 && !(await sleep(wait, signal))) break
      }
      running = false
    }
    const kick = () => {
      if (signal.aborted) return
      pending = true
      if (!running) loop()
    }
    // The renewal's timer fires first when a renewal would be due had the
    // stream's opening earned a lease: a stream still catching up then (a
    // large log, a slow link) reports, not ready; the node drops the record
    // of a follower silent for its bound, and would refuse the first report
    // once caught up as unknown_verifier, ending the stream. Renewals follow
    // on the answer's lease, caught up or not.
    renew = clock.setTimeout(() => {
      if (!this.st.synced && !r.tried) kick()
    }, this.staleAfter / RENEW_SHARE)
    signal.addEventListener('abort', () => { clock.clearTimeout(renew); clearTimeout(retry) }, { once: true })
    r.kick = kick
    /** restart makes the next report, once the stream has caught up, the stream's first again. */
    r.restart = () => {
      r.gen++
      r.reported = -1
      r.ready = undefined
      r.tried = false
    }
    /** ask records a node's ask for position s. */
    r.ask = (s) => {
      if (r.reported >= s) return
      r.asked = Math.max(r.asked, s)
      r.moved()
    }
    /** moved reports what the node waits for once the position reaches it, a change of readiness, and first of all the position caught up. */
    r.moved = () => {
      if (r.asked > 0 && this.st.position >= r.asked) {
        r.asked = 0
        kick()
      } else if (r.ready === undefined ? this.st.synced && !r.tried : r.ready !== this.ready()) kick()
    }
    return r
  }

  /** report sends position and readiness and returns the lease granted, in ms. */
  async report(base, signal, answered, position, ready) {
    const st = this.st
    const body = JSON.stringify({ id: st.id, name: this.name || undefined, host: HOST, version: VERSION,
      stale_after_ms: Math.ceil(this.staleAfter), position, ready, epoch: st.epoch,
      token: this.tokens.get(base) })
    const sent = this.now()
    const res = await fetch(`${base}/v1/feed/position`, {
      method: 'POST', body, signal: AbortSignal.any([signal, AbortSignal.timeout(REPORT_TIMEOUT)]),
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.apiKey}` },
    })
    const text = await res.text()
    if (res.status !== 200) {
      this.refused(res.status, text, answered)
      throw new Error(`feed: position report answered ${res.status}: ${text.trim()}`)
    }
    const ack = JSON.parse(text)
    if (!(Number.isSafeInteger(ack.lease_ms) && ack.lease_ms > 0 && Number.isSafeInteger(ack.head))) {
      // A lease under a millisecond comes as none: nothing to renew on; retried on the backoff.
      throw new Error(`feed: position answer grants no lease: ${text.trim()}`)
    }
    if (ack.token) this.tokens.set(base, ack.token)
    const lease = Math.min(this.staleAfter, ack.lease_ms)
    this.update((s) => {
      if (s.epoch !== ack.epoch) return
      if (this.leases.length === MAX_LEASES) this.leases.shift()
      this.leases.push({ head: ack.head, until: sent + lease })
    })
    return lease
  }

  /**
   * refused acts on a refusal that a new stream fixes (see Go's
   * internal/feed): another verifier holds its id (take a new one), the
   * node has no record of it (a stream makes one), or the node follows
   * another epoch (a new stream names it, and the follower starts over).
   * The last two are believed only once no report has been taken for the
   * renewals' interval (answered is when one last was), by when a renewal
   * has gone unanswered; behind a balancer the other nodes answer them
   * while the stream's node takes the reports.
   */
  refused(status, body, answered) {
    if (status !== 409) return
    const code = errorCode(body)
    if (code === 'verifier_id_taken') this.renewID()
    else if (code !== 'unknown_verifier' && code !== 'conflict') return
    else if (this.now() - answered < this.staleAfter / RENEW_SHARE) return
    this.reconnect()
  }
}

/** seqField reads a position field of an event's JSON as Go's follower does: absent is 0, anything but an integer ends the stream. */
function seqField(o, name, event) {
  const v = o?.[name] ?? 0
  if (!Number.isSafeInteger(v)) throw new Error(`feed: malformed ${event}: ${name} ${JSON.stringify(v)}`)
  return v
}

/**
 * retryAfter reads a Retry-After header as Go's follower does: whole
 * seconds (the form a node sends), in ms, at most MAX_RETRY_AFTER; 0 for
 * none or another form.
 */
export function retryAfter(value) {
  if (!/^\+?[0-9]+$/.test(value ?? '')) return 0
  return Math.min(Number(value) * 1000, MAX_RETRY_AFTER)
}

function errorCode(body) {
  try {
    return JSON.parse(body).error ?? ''
  } catch {
    return ''
  }
}
