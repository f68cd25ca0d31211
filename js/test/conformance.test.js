// The conformance vectors of testdata/conformance, which Go's verifier
// tests run too (verifier/conformance_test.go): the same tokens, feed events,
// clock steps and verdicts.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Verifier } from '../src/verifier.js'
import { Follower } from '../src/feed.js'
import { SSEDecoder } from '../src/sse.js'
import { importJWK } from 'jose'
import { fakeClock } from './helpers/clock.js'

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'testdata', 'conformance')
const quiet = { debug() {}, info() {}, warn() {}, error() {} }

/** local returns a Verifier over the vector's keys, never stale and never fetching (as Go's local verifier), and its follower. */
async function local(vec, clock) {
  const v = new Verifier({ authorities: ['http://127.0.0.1:1'], feedKey: 'k', clock, logger: quiet })
  v.adopt({ issuer: vec.issuer, tegata_access_token_audience: vec.audience, tegata_leeway: vec.leeway_s,
    tegata_access_token_max_lifetime: vec.max_lifetime_s })
  for (const jwk of vec.jwks.keys) v.keys.set(jwk.kid, { kid: jwk.kid, alg: jwk.alg, x: jwk.x, y: jwk.y, key: await importJWK(jwk, jwk.alg) })
  v.staleness = () => null
  v.refetch = async () => false
  v.feed = new Follower({ urls: ['http://127.0.0.1:1'], apiKey: 'k', clock, logger: quiet, staleAfter: 10_000,
    apply: (e) => v.apply(e), reset: () => v.reset(), ready: () => true })
  v.reset = () => { v.set.clear(); v.cache?.clear() }
  return v
}

/** feed hands one stream's text to the follower as the stream loop does: an error ends the stream. */
function feed(f, text) {
  const reporter = { kick() {}, ask() {}, moved() {}, restart() {} }
  try {
    for (const ev of new SSEDecoder().push(Buffer.from(text))) f.handle(ev, reporter)
  } catch {
    // The stream ends; the next step is a new one.
  }
}

for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const vec = JSON.parse(readFileSync(join(dir, file), 'utf8'))
  describe(`conformance ${file}`, () => {
    it(vec.description, async () => {
      const clock = fakeClock(vec.start_unix * 1000)
      const v = await local(vec, clock)
      for (const [i, s] of vec.steps.entries()) {
        const name = `step ${i} (${s.note ?? ''})`
        if (s.verify) {
          let got = 'ok'
          let msg = ''
          try {
            await v.verify(vec.tokens[s.verify])
          } catch (err) {
            got = err.code ?? String(err)
            msg = err.message
          }
          assert.equal(got, s.want, `${name}: verify(${s.verify}) = ${got} (${msg}), want ${s.want}`)
        } else if (s.feed) feed(v.feed, s.feed)
        else if (s.advance_s) clock.add(s.advance_s * 1000)
        else if (s.prune) v.prune(clock.now())
        else if (s.entries !== undefined) assert.equal(v.set.size, s.entries, `${name}: entries`)
        else if (s.position !== undefined) assert.equal(v.feed.st.position, s.position, `${name}: position`)
        else assert.fail(`${name}: empty step`)
      }
    })
  })
}
