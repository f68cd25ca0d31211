// The verifier against a real `tegata serve` built from this checkout.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { SignJWT, generateKeyPair, decodeProtectedHeader } from 'jose'
import { createVerifier, VerifyError, reason } from '../src/index.js'
import { startAuthority } from './helpers/authority.js'

async function rejects(p, code) {
  await assert.rejects(p, (err) => {
    assert.ok(err instanceof VerifyError, `got ${err}`)
    assert.equal(err.code, code, `verify rejected with ${err.code} (${err.message}), want ${code}`)
    return true
  })
}

describe('verifier', () => {
  let a, v
  let offset = 0
  before(async () => {
    a = await startAuthority()
    // The wall clock moved by offset: its timers are the wall's.
    const clock = { now: () => Date.now() + offset, setTimeout, clearTimeout }
    v = await createVerifier({ authorities: [a.url], feedKey: a.feedKey, name: 'node-test', clock })
    await v.ready()
  })
  after(async () => {
    await v?.close()
    await a?.cleanup()
  })

  it('accepts a live token and returns its claims', async () => {
    const s = await a.session('zoé 山田', { roles: ['editor'] })
    const c = await v.verify(s.access_token)
    assert.equal(c.sub, 'zoé 山田')
    assert.equal(c.sid, s.session_id)
    assert.deepEqual(c.roles, ['editor'])
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.roles), 'claims are shared, so frozen')
    assert.equal(await v.verify(s.access_token), c, 'a second verify is a cache hit')
  })

  it('is listed by the authority, and a confirmed revocation is in force on it when the call returns', async () => {
    const s = await a.session('alice')
    await v.verify(s.access_token)
    const { verifiers } = await a.verifiers()
    const me = verifiers.find((x) => x.id === v.state().id)
    assert.ok(me, `tegata verifiers lists ${v.state().id}: ${JSON.stringify(verifiers)}`)
    assert.equal(me.name, 'node-test')
    const r = await a.revokeSession(s.session_id, '5s')
    assert.equal(r.status, 200, JSON.stringify(r))
    assert.equal(r.confirmation.in_force, true)
    assert.ok(r.confirmation.confirmed >= 1)
    await rejects(v.verify(s.access_token), 'revoked')
  })

  it('rejects every revocation kind', async () => {
    const one = await a.session('bob')
    const other = await a.session('bob')
    const r1 = await a.revokeSession(one.session_id)
    await v.waitApplied(r1.entry.seq)
    await rejects(v.verify(one.access_token), 'revoked')
    await v.verify(other.access_token)

    const r2 = await a.revokeSubject('bob', { scope: 'sessions' })
    await v.waitApplied(r2.entry.seq)
    await rejects(v.verify(other.access_token), 'revoked')
    const after = await a.session('bob')
    assert.equal((await v.verify(after.access_token)).sub, 'bob', 'a token issued after the cutoff is accepted')
  })

  it('cuts off access tokens on a role change and accepts the refreshed claims', async () => {
    const s = await a.session('carol', { roles: ['admin'] })
    await v.verify(s.access_token)
    const r = await a.revokeSubject('carol', { scope: 'access', claims: { roles: ['viewer'] } }, '5s')
    assert.equal(r.confirmation.in_force, true)
    await rejects(v.verify(s.access_token), 'revoked')
    const res = await fetch(`${a.url}/v1/token/refresh`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ refresh_token: s.refresh_token }),
    })
    assert.equal(res.status, 200)
    const fresh = await res.json()
    assert.deepEqual((await v.verify(fresh.access_token)).roles, ['viewer'])
  })

  it('rejects a token whose session a client revoked (RFC 7009)', async () => {
    const s = await a.session('dave')
    await v.verify(s.access_token)
    const res = await fetch(`${a.url}/v1/token/revoke?confirm=5s`, {
      method: 'POST', headers: { Authorization: `Bearer ${a.adminKey}` }, body: new URLSearchParams({ token: s.refresh_token }),
    })
    assert.equal(res.status, 200, await res.clone().text())
    await rejects(v.verify(s.access_token), 'revoked')
  })

  it('refuses forged and malformed tokens with the check that failed', async () => {
    const s = await a.session('eve')
    const [h, p, sig] = s.access_token.split('.')
    const kid = decodeProtectedHeader(s.access_token).kid
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
    const payload = JSON.parse(Buffer.from(p, 'base64url'))
    const sign = (header, key = other.privateKey) => new SignJWT(payload).setProtectedHeader(header).sign(key)
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid })).toString('base64url')}.${p}.`
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: 'mallory' })).toString('base64url')}.${sig}`
    const cases = [
      { name: 'not a JWT', token: 'abc', code: 'malformed' },
      { name: 'alg none', token: none, code: 'algorithm' },
      { name: 'another key under the real kid', token: await sign({ alg: 'EdDSA', typ: 'at+jwt', kid }), code: 'signature' },
      { name: 'an unknown kid', token: await sign({ alg: 'EdDSA', typ: 'at+jwt', kid: 'nope' }), code: 'unknown_key' },
      { name: 'a key in the header', token: await sign({ alg: 'EdDSA', typ: 'at+jwt', kid, jwk: { kty: 'OKP' } }), code: 'header' },
      { name: 'an id token type', token: await sign({ alg: 'EdDSA', typ: 'JWT', kid }), code: 'type' },
      { name: 'a changed payload', token: tampered, code: 'signature' },
      { name: 'too large', token: 'a'.repeat(9000), code: 'too_large' },
    ]
    for (const c of cases) {
      await rejects(v.verify(c.token), c.code).catch((err) => { err.message = `${c.name}: ${err.message}`; throw err })
    }
    assert.equal(reason(new VerifyError('signature', 'x')), 'token invalid')
  })

  it('fails closed when its lease runs out, and tells why in state()', async () => {
    const s = await a.session('frank')
    await v.verify(s.access_token)
    offset = 11_000
    try {
      await rejects(v.verify(s.access_token), 'stale')
      const st = v.state()
      assert.equal(st.ready, false)
      assert.match(st.reason, /acknowledged|heard/)
    } finally {
      offset = 0
    }
    await v.ready()
    await v.verify(s.access_token)
  })
})

describe('verifier pinning', () => {
  let es
  before(async () => { es = await startAuthority({ args: ['--alg', 'ES256'] }) })
  after(async () => { await es?.cleanup() })

  it('accepts ES256 when allowed and refuses it when the verifier pins EdDSA', async () => {
    const s = await es.session('gina')
    const both = await createVerifier({ authorities: [es.url], feedKey: es.feedKey })
    const ed = await createVerifier({ authorities: [es.url], feedKey: es.feedKey, algorithms: ['EdDSA'] })
    try {
      await both.ready()
      await ed.ready()
      assert.equal((await both.verify(s.access_token)).sub, 'gina')
      await rejects(ed.verify(s.access_token), 'algorithm')
    } finally {
      await both.close()
      await ed.close()
    }
  })

  it('refuses to start with a key the authority refuses', async () => {
    await assert.rejects(createVerifier({ authorities: [es.url], feedKey: 'not-a-key' }), /refused the feed key/)
  })

  it('introspects while stale, when told to, and fails unavailable without an authority', async () => {
    // A 1 ms bound: no lease ever outlives the report that earned it, so
    // every verify finds the state stale and asks the authority.
    const v = await createVerifier({ authorities: [es.url], feedKey: es.feedKey, introspect: true, staleAfterMs: 1 })
    try {
      await v.feed.wait((st) => st.synced)
      const s = await es.session('hana')
      assert.equal((await v.verify(s.access_token)).sub, 'hana', 'the authority vouches for a live token')
      assert.equal(v.state().ready, false)
      await es.api('POST', `/v1/sessions/${s.session_id}/revoke`)
      await rejects(v.verify(s.access_token), 'inactive').catch(async () => rejects(v.verify(s.access_token), 'revoked'))
      const t = await es.session('hana')
      await es.stop()
      await rejects(v.verify(t.access_token), 'unavailable')
    } finally {
      await v.close()
    }
  })
})

/** cutter is a TCP proxy whose connections can all be cut at once. */
async function cutter(target) {
  const t = new URL(target)
  const socks = new Set()
  let accepted = 0
  const server = net.createServer((c) => {
    accepted++
    const up = net.connect(Number(t.port), t.hostname)
    c.pipe(up).pipe(c)
    for (const s of [c, up]) { socks.add(s); s.on('close', () => socks.delete(s)); s.on('error', () => {}) }
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    accepted: () => accepted,
    cut: () => { for (const s of socks) s.destroy() },
    close: () => new Promise((r) => { for (const s of socks) s.destroy(); server.close(r) }),
  }
}

describe('verifier resuming', () => {
  let a
  before(async () => { a = await startAuthority() })
  after(async () => { await a?.cleanup() })

  it('resumes after a cut stream and after an authority restart, and starts over on a new epoch', async () => {
    const proxy = await cutter(a.url)
    const v = await createVerifier({ authorities: [proxy.url], feedKey: a.feedKey })
    try {
      await v.ready()
      const s1 = await a.session('ivan')
      const s2 = await a.session('ivan')
      const s3 = await a.session('jon')
      const before = proxy.accepted()
      proxy.cut()
      const r1 = await a.revokeSession(s1.session_id)
      await v.waitApplied(r1.entry.seq)
      assert.ok(proxy.accepted() > before, 'the stream was really cut and opened again')
      await rejects(v.verify(s1.access_token), 'revoked')

      a = await a.restart()
      const r2 = await a.revokeSession(s2.session_id)
      await v.waitApplied(r2.entry.seq)
      await rejects(v.verify(s2.access_token), 'revoked')
      await rejects(v.verify(s1.access_token), 'revoked')

      // Another database behind the same address: another log, epoch and key set.
      const epoch = v.state().epoch
      const { feedKey } = a
      const addr = new URL(a.url).host
      await a.cleanup()
      a = await startAuthority({ addr, feedKey })
      // A node confirms for the verifiers it knows: wait until this one is back.
      await v.feed.wait((st) => st.epoch !== epoch && st.synced)
      const s4 = await a.session('ivan')
      const r4 = await a.revokeSession(s4.session_id, '5s')
      assert.equal(r4.confirmation.in_force, true, JSON.stringify(r4))
      assert.equal(r4.confirmation.confirmed, 1, JSON.stringify(r4))
      await rejects(v.verify(s4.access_token), 'revoked')
      const s5 = await a.session('ivan')
      assert.equal((await v.verify(s5.access_token)).sid, s5.session_id)
      await rejects(v.verify(s3.access_token), 'unknown_key')
    } finally {
      await v.close()
      await proxy.close()
    }
  })
})
