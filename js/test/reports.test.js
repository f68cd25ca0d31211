// The follower's position reports, as a real `tegata serve` receives
// them: the rules docs/feed-protocol.md ("When to report") sets and Go's
// internal/feed tests hold its client to. A proxy in front of the node
// records every report and the node's answer.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { createVerifier } from '../src/index.js'
import { RENEW_SHARE } from '../src/feed.js'
import { startAuthority } from './helpers/authority.js'
import { reportProxy } from './helpers/proxy.js'
import { fakeClock } from './helpers/clock.js'

/** until resolves once cond() holds, checking every 10 ms; it fails after ms. */
async function until(what, cond, ms = 20_000) {
  const end = performance.now() + ms
  while (!cond()) {
    if (performance.now() > end) assert.fail(`waited ${ms} ms for ${what}`)
    await delay(10)
  }
}

/** retryWait is the most a follower waits before its retry after failures failed reports: 100 ms doubling up to 1 s. */
const retryWait = (failures) => Math.min(100 * 2 ** (failures - 1), 1000)

/** retriesWithin is the most retries that fit in ms, each waiting at least half its retryWait. */
function retriesWithin(ms) {
  let n = 0
  for (let t = retryWait(1) / 2; t <= ms; t += retryWait(n + 1) / 2) n++
  return n
}

const bodies = (p) => p.reports.map((r) => `${r.body.position}/${r.body.ready}/${r.status}`)

/** revoke revokes a new session of subject and returns the entry's seq. */
async function revoke(a, subject, confirm) {
  const s = await a.session(subject)
  const r = await a.revokeSession(s.session_id, confirm)
  return r.entry.seq
}

describe('follower reports', () => {
  let a, p, v
  before(async () => { a = await startAuthority() })
  after(async () => { await a?.cleanup() })
  const start = async (opts = {}, proxy = {}) => {
    p = Object.assign(await reportProxy(a.url), proxy)
    v = await createVerifier({ authorities: [p.url], feedKey: a.feedKey, ...opts })
  }
  const stop = async () => {
    await v?.close()
    await p?.close()
    v = p = null
  }

  it('connects with one report, ready once caught up, and then reports only when asked', async () => {
    // The last revocation asks for a confirmation: the node asks every
    // stream that reaches it, a new one as it catches up, for its position.
    let head = 0
    for (let i = 0; i < 3; i++) head = await revoke(a, 'connect', i === 2 ? '1s' : undefined)
    await start({ staleAfterMs: 60_000 }) // no renewal for 30 s
    try {
      await v.ready()
      assert.deepEqual(bodies(p), [`${head}/true/200`], 'one report, after the catch-up, saying ready')
      // Revocations nobody confirms bring no report; a confirmed one brings
      // the report that confirms it, after the ones before it.
      for (let i = 0; i < 3; i++) await v.waitApplied(await revoke(a, 'connect'))
      const seq = await revoke(a, 'connect', '5s')
      assert.deepEqual(bodies(p), [`${head}/true/200`, `${seq}/true/200`], 'the first report, then the confirmation\'s')
      assert.equal(p.streams, 1)
    } finally {
      await stop()
    }
  })

  it('renews its lease every half of it, on its clock', async () => {
    // The lease runs out on the verifier's clock, and is renewed on it: a
    // stopped clock the test moves, to the millisecond. A report's lease
    // counts from when it was sent, its renewal from its answer: on the
    // stopped clock, the same instant.
    const bound = 60_000
    const clock = fakeClock(Date.now())
    await start({ staleAfterMs: bound, clock })
    try {
      await v.ready()
      for (let i = 1; i <= 2; i++) {
        const sent = clock.now()
        const lease = Math.min(bound, p.reports[i - 1].answer.lease_ms)
        assert.equal(v.feed.state().freshUntil, sent + lease, `lease ${i}: from its report's send time`)
        const due = sent + lease / RENEW_SHARE
        await until(`renewal ${i} armed`, () => clock.armedAt(due))
        clock.add(due - 1 - clock.now())
        assert.ok(clock.armedAt(due) && p.reports.length === i, `renewal ${i} went before half the lease had passed`)
        clock.add(1)
        await until(`renewal ${i} answered`, () => p.reports[i]?.answer)
        await until(`renewal ${i}'s lease`, () => v.feed.state().freshUntil === due + Math.min(bound, p.reports[i].answer.lease_ms))
      }
      assert.deepEqual(p.reports.map((x) => `${x.body.ready}/${x.status}`), ['true/200', 'true/200', 'true/200'])
    } finally {
      await stop()
    }
  })

  it('earns its freshness by leases, not heartbeats, on a stream whose answer names no epoch', async () => {
    // A proxy may drop a header; heartbeats name the epoch too. A follower
    // that counted heartbeats as freshness would be current, after a
    // freeze, on heartbeats sent long before.
    const clock = fakeClock(Date.now())
    await start({ staleAfterMs: 60_000, clock }, { stripEpoch: true })
    try {
      await until('a report answered', () => p.reports[0]?.answer)
      await v.ready()
      const lease = Math.min(60_000, p.reports[0].answer.lease_ms)
      assert.equal(v.feed.state().freshUntil, clock.now() + lease, 'fresh until the lease runs out')
      assert.ok(v.feed.state().epoch, 'the epoch taken from the heartbeat')
    } finally {
      await stop()
    }
  })

  it('retries a failed report on a backoff from 100 ms doubling to 1 s, as Go\'s follower does', async () => {
    await start({ staleAfterMs: 60_000 }, { fail: 502, failTimes: 4 })
    try {
      await v.ready()
      const r = p.reports.slice(0, 5)
      assert.deepEqual(r.map((x) => x.status), [502, 502, 502, 502, 200], 'four failed reports, then the lease')
      for (let i = 1; i < r.length; i++) {
        // Retry i waits between half and all of min(100 ms × 2^(i-1), 1 s):
        // never less, whatever the machine's load.
        const gap = r[i].at - r[i - 1].at
        assert.ok(gap >= retryWait(i) / 2 - 2, `retry ${i} came ${gap.toFixed(0)} ms after the failure before it, want at least ${retryWait(i) / 2} ms`)
      }
      // The first retry waits 50-100 ms; a fixed retry a second would wait
      // 1 s. Ten times the backoff's bound keeps a loaded machine's round
      // trip from failing the test, where a sum of all the waits would not.
      const first = r[1].at - r[0].at
      assert.ok(first < 1000, `the first retry came ${first.toFixed(0)} ms after the failed report, want the backoff's 50-100 ms and a round trip, not a second`)
    } finally {
      await stop()
    }
  })

  it('retries a failed first report on the backoff, not at every revocation', async () => {
    await start({ staleAfterMs: 60_000 }, { fail: 502 })
    try {
      await v.feed.wait((st) => st.synced)
      const t0 = performance.now()
      for (let i = 0; i < 30; i++) await v.waitApplied(await revoke(a, 'failing'))
      const elapsed = performance.now() - t0
      const allowed = retriesWithin(elapsed) + 2
      assert.ok(p.reports.length >= 1, 'a first report was tried')
      assert.ok(p.reports.length <= allowed,
        `${p.reports.length} reports over 30 revocations in ${elapsed.toFixed(0)} ms while every report failed, want at most ${allowed} (the retries' backoff)`)
    } finally {
      await stop()
    }
  })

  it('reports, not ready, half its bound into a first catch-up that lasts longer', async () => {
    const head = await revoke(a, 'slow')
    const bound = 1000
    // The stream is held from its first heartbeat on: the follower has the
    // entries and waits to hear it has caught up.
    await start({ staleAfterMs: bound }, { hold: 'heartbeat' })
    try {
      await until('a report while catching up', () => p.reports.length > 0)
      p.release()
      assert.deepEqual({ position: p.reports[0].body.position, ready: p.reports[0].body.ready, stream: p.reports[0].stream, beats: p.reports[0].beats },
        { position: head, ready: false, stream: 1, beats: 0 }, 'the first report says not ready, before the heartbeat')
      await v.ready()
      await until('a report saying ready', () => p.reports.some((r) => r.body.ready && r.status === 200))
      assert.equal(p.streams, 1, 'one stream: the node kept the record')
    } finally {
      await stop()
    }
  })

  it('reports once caught up after a reset on the stream, as on a new one', async () => {
    // Node B runs a copy of node C's database taken before any revocation:
    // the same epoch, an empty log. A follower ahead of B's head is told to
    // reset on its first stream there, and has nothing to catch up with: no
    // entry changes its readiness meanwhile.
    let c = await startAuthority()
    await c.stop()
    const dirB = mkdtempSync(join(tmpdir(), 'tegata-node-'))
    cpSync(join(c.dir, 'data'), join(dirB, 'data'), { recursive: true })
    c = await c.restart()
    let head = 0
    for (let i = 0; i < 3; i++) head = await revoke(c, 'reset')
    const b = await startAuthority({ dir: dirB, adminKey: c.adminKey, feedKey: c.feedKey })
    p = await reportProxy(c.url)
    v = await createVerifier({ authorities: [p.url], feedKey: c.feedKey, staleAfterMs: 60_000 }) // no renewal for 30 s
    try {
      await v.ready()
      await v.waitApplied(head)
      // The stream to B resumes synced: its first report goes at once, and
      // B's answer comes before the reset does.
      const before = p.reports.length
      p.target = b.url
      p.hold = 'stream'
      p.cut()
      await until('the first report to B answered', () => p.reports.slice(before).some((r) => r.status === 200))
      p.release()
      await until('a report of position 0, ready, once the reset stream has caught up', () =>
        p.reports.slice(before).some((r) => r.body.position === 0 && r.body.ready && r.status === 200))
      // It answers the stream's first heartbeat (the one after the reset),
      // as the first report of any stream does, not a later event.
      const r = p.reports.slice(before).find((r) => r.body.position === 0)
      assert.deepEqual({ stream: r.stream, beats: r.beats }, { stream: p.streams, beats: 1 },
        'the report of position 0 came on the stream to B, with its first heartbeat')
      await v.ready()
      assert.equal(v.feed.state().position, 0)
    } finally {
      await stop()
      await b.cleanup()
      await c.cleanup()
    }
  })
})
