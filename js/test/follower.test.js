// The follower's decisions on its own, with a moved clock and no
// authority: what the feed protocol leaves to the follower's judgement.
import { describe, it, after } from 'node:test'
import http from 'node:http'
import assert from 'node:assert/strict'
import { Follower, RENEW_SHARE, MAX_RETRY_AFTER, retryAfter } from '../src/feed.js'
import { fakeClock } from './helpers/clock.js'
import { SSEDecoder } from '../src/sse.js'

const quiet = { debug() {}, info() {}, warn() {}, error() {} }

/** follower returns a Follower on a clock at now, and the causes of the reconnects it asks for. */
function follower(now, staleAfter) {
  const f = new Follower({ urls: ['http://127.0.0.1:1'], apiKey: 'k', clock: fakeClock(now), logger: quiet, staleAfter,
    apply() {}, reset() {}, ready: () => true })
  const reconnects = []
  f.reconnect = () => reconnects.push(f.st.id)
  return { f, reconnects }
}

describe('follower refusals', () => {
  const bound = 30_000
  const answered = 1_800_000_000_000
  const renewal = bound / RENEW_SHARE
  const cases = [
    { name: 'unknown within a renewal\'s interval', code: 'unknown_verifier', since: renewal - 1, reconnect: false, renamed: false },
    { name: 'unknown a renewal\'s interval on', code: 'unknown_verifier', since: renewal, reconnect: true, renamed: false },
    { name: 'id taken at once', code: 'verifier_id_taken', since: 0, reconnect: true, renamed: true },
    { name: 'another epoch within a renewal\'s interval', code: 'conflict', since: renewal - 1, reconnect: false, renamed: false },
    { name: 'another epoch a renewal\'s interval on', code: 'conflict', since: renewal, reconnect: true, renamed: false },
    { name: 'another code', code: 'some_other_code', since: bound, reconnect: false, renamed: false },
  ]
  for (const c of cases) {
    it(`${c.name}: reconnect ${c.reconnect}`, () => {
      const { f, reconnects } = follower(answered + c.since, bound)
      const id = f.st.id
      f.refused(409, JSON.stringify({ error: c.code }), answered)
      assert.equal(reconnects.length > 0, c.reconnect, `refused(409 ${c.code}) ${c.since} ms after the last report taken: reconnects ${reconnects.length}`)
      assert.equal(f.st.id !== id, c.renamed, `refused(409 ${c.code}): renamed`)
    })
  }
})

describe('follower position answers', () => {
  let srv
  after(() => srv?.close())

  it('takes an answer that grants no lease, or names no head, for a failed report', async () => {
    const answers = ['{"head":3,"lease_ms":0,"epoch":"e"}', '{"lease_ms":10000,"epoch":"e"}', '{"head":3,"epoch":"e"}',
      '{"head":3,"lease_ms":10000,"epoch":"e"}']
    srv = http.createServer((req, res) => {
      req.resume()
      req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end(answers.shift()))
    })
    await new Promise((r) => srv.listen(0, '127.0.0.1', r))
    const base = `http://127.0.0.1:${srv.address().port}`
    const { f } = follower(1_800_000_000_000, 10_000)
    f.st.epoch = 'e'
    const signal = new AbortController().signal
    for (const what of ['lease_ms 0', 'no head', 'no lease_ms']) {
      await assert.rejects(f.report(base, signal, 0, 3, true), /grants no lease/, what)
    }
    assert.equal(await f.report(base, signal, 0, 3, true), 10_000, 'a lease')
    assert.deepEqual(f.leases, [{ head: 3, until: 1_800_000_010_000 }])
  })
})

describe('follower events', () => {
  const noReports = { kick() {}, ask() {}, moved() {}, restart() {} }
  /** handle gives the follower one event of the given type and data, as the stream loop does. */
  const handle = (f, type, data) => {
    const [ev] = new SSEDecoder().push(Buffer.from(`event: ${type}\ndata: ${data}\n\n`))
    return f.handle(ev, noReports)
  }

  it('reads positions as integers: absent is 0, anything else ends the stream without moving', () => {
    const { f } = follower(1_800_000_000_000, 10_000)
    handle(f, 'heartbeat', '{"head":7,"time":1,"epoch":"e"}')
    assert.equal(f.st.position, 7)
    for (const [type, data] of [['heartbeat', '{"head":7.5,"epoch":"e"}'], ['heartbeat', '{"head":"9","epoch":"e"}'],
      ['ask', '{"position":1e30}'], ['reset', '{"head":-0.5}']]) {
      assert.throws(() => handle(f, type, data), /malformed/, `${type} ${data}`)
      assert.equal(f.st.position, 7, `${type} ${data} moved the position`)
    }
    handle(f, 'heartbeat', '{"time":1,"epoch":"e"}')
    assert.equal(f.st.position, 7, 'a heartbeat without head keeps the position')
    handle(f, 'reset', '{}')
    assert.deepEqual([f.st.position, f.st.head], [0, 0], 'a reset without head')
  })

  it('counts an ask as hearing from the node', () => {
    const clock = fakeClock(1_800_000_000_000)
    const f = new Follower({ urls: ['http://127.0.0.1:1'], apiKey: 'k', clock, logger: quiet, staleAfter: 10_000,
      apply() {}, reset() {}, ready: () => true })
    handle(f, 'heartbeat', '{"head":3,"epoch":"e"}')
    clock.add(4000)
    handle(f, 'ask', '{"position":3}')
    assert.equal(f.st.lastHeard, clock.now())
  })
})

describe('follower retry after a 429', () => {
  const cases = [
    { name: 'none', header: null, want: 0 },
    { name: 'seconds', header: '5', want: 5000 },
    { name: 'at the cap', header: '30', want: MAX_RETRY_AFTER },
    { name: 'past the cap', header: '31', want: MAX_RETRY_AFTER },
    { name: 'a proxy\'s hour', header: '3600', want: MAX_RETRY_AFTER },
    { name: 'more seconds than a timer holds', header: '99999999999999999999', want: MAX_RETRY_AFTER },
    { name: 'zero', header: '0', want: 0 },
    { name: 'negative', header: '-5', want: 0 },
    { name: 'a fraction', header: '1.5', want: 0 },
    { name: 'hexadecimal', header: '0x10', want: 0 },
    { name: 'a date', header: 'Wed, 21 Oct 2026 07:28:00 GMT', want: 0 },
  ]
  for (const c of cases) {
    it(`${c.name} (Retry-After ${c.header}): waits ${c.want ? `${c.want} ms and up to half again` : 'the backoff'}`, async () => {
      const srv = http.createServer((req, res) => {
        res.writeHead(429, { 'Content-Type': 'application/json', ...(c.header === null ? {} : { 'Retry-After': c.header }) })
          .end('{"error":"too_many_streams"}')
      })
      await new Promise((r) => srv.listen(0, '127.0.0.1', r))
      try {
        const { f } = follower(1_800_000_000_000, 10_000)
        const err = await f.open(`http://127.0.0.1:${srv.address().port}`, new AbortController().signal).then(() => null, (e) => e)
        assert.match(String(err?.message), /429/, 'open() on a 429')
        assert.equal(retryAfter(c.header), c.want, `retryAfter(${JSON.stringify(c.header)})`)
        // The backoff after one failure is 50 to 100 ms.
        const [lo, hi] = c.want ? [c.want, c.want * 1.5] : [50, 100]
        for (let i = 0; i < 100; i++) {
          const got = f.retryWait(1, err)
          assert.ok(got >= lo && got <= hi, `retryWait(1) after a 429 with Retry-After ${c.header} = ${got} ms, want ${lo} to ${hi}`)
        }
      } finally {
        srv.close()
      }
    })
  }
})
