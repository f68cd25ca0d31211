// The adapters: Express, Hono, the Next.js helpers and the serverless
// verifiers, against a real `tegata serve`.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import express from 'express'
import { Hono } from 'hono'
import { createVerifier } from '../src/index.js'
import { tegata as expressTegata, requireClaim } from '../src/express.js'
import { tegata as honoTegata } from '../src/hono.js'
import { auth, signIn, signOut, configure } from '../src/next.js'
import { loginHeader, identityFromHeaders, asciiJSON } from '../src/headers.js'
import { createStatelessVerifier } from '../src/serverless.js'
import { startAuthority } from './helpers/authority.js'

describe('adapters', () => {
  let a, v, server, base
  before(async () => {
    a = await startAuthority()
    v = await createVerifier({ authorities: [a.url], feedKey: a.feedKey, name: 'adapters' })
    await v.ready()
    const app = express()
    app.get('/me', expressTegata({ verifier: v, cookie: '__Host-tegata-at' }), (req, res) => res.json({ sub: req.auth.sub }))
    app.get('/admin', expressTegata({ verifier: v }), requireClaim('roles', 'admin'), (req, res) => res.json({ ok: true }))
    await new Promise((r) => { server = app.listen(0, '127.0.0.1', r) })
    base = `http://127.0.0.1:${server.address().port}`
  })
  after(async () => {
    server?.close()
    await v?.close()
    await a?.cleanup()
  })

  it('Express: req.auth, 401 with a challenge, 403 for a missing role, revocation', async () => {
    const s = await a.session('山田', { roles: ['viewer'] })
    const bearer = { Authorization: `Bearer ${s.access_token}` }
    let res = await fetch(`${base}/me`, { headers: bearer })
    assert.deepEqual(await res.json(), { sub: '山田' })
    res = await fetch(`${base}/me`, { headers: { Cookie: `a=b; __Host-tegata-at=${s.access_token}` } })
    assert.equal(res.status, 200, 'the token cookie is read')
    res = await fetch(`${base}/me`)
    assert.equal(res.status, 401)
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="tegata"')
    res = await fetch(`${base}/admin`, { headers: bearer })
    assert.equal(res.status, 403)
    assert.equal((await res.json()).error, 'insufficient_scope')
    await a.revokeSession(s.session_id, '5s')
    res = await fetch(`${base}/me`, { headers: bearer })
    assert.equal(res.status, 401)
    assert.deepEqual(await res.json(), { error: 'invalid_token', error_description: 'token revoked' })
  })

  it('Hono: c.get(auth) and refusals', async () => {
    const app = new Hono()
    app.use('/x', honoTegata({ verifier: v }))
    app.get('/x', (c) => c.json({ sub: c.get('auth').sub }))
    const s = await a.session('hono')
    let res = await app.request('/x', { headers: { Authorization: `Bearer ${s.access_token}` } })
    assert.deepEqual(await res.json(), { sub: 'hono' })
    res = await app.request('/x', { headers: { Authorization: 'Basic abc' } })
    assert.equal(res.status, 401)
  })

  it('Next.js: signIn carries any Unicode in ASCII, signOut, auth() reads the gate headers one way', () => {
    for (const subject of ['zoé', 'zoë', '山田', '🦊', 'a"b\\c', 'line\nbreak']) {
      const res = signIn(new Response(null), { subject, device: 'phone', claims: { role: 'ädmin' } })
      const h = res.headers.get('x-tegata-login')
      assert.match(h, /^[\x20-\x7e]*$/, `signIn(${subject}) header is printable ASCII`)
      assert.equal(JSON.parse(h).subject, subject)
    }
    const res = signOut(new Response(null), 'everywhere')
    assert.equal(res.headers.get('x-tegata-logout'), 'everywhere')
    assert.throws(() => signOut(new Response(null), 'all'), TypeError)
    assert.throws(() => loginHeader({}), TypeError)
    // As the gate sends them (docs/gate.md): bare ASCII, JSON otherwise.
    const id = identityFromHeaders(new Headers({
      'X-Tegata-Subject': asciiJSON('zoé'), 'X-Tegata-Session': 's1', 'X-Tegata-Claim-Roles': '["editor"]',
      'X-Tegata-Claim-Level': '7', 'X-Tegata-Claim-Code': '"7"', 'X-Tegata-Claim-Team': 'red team',
    }))
    assert.deepEqual(id, { subject: 'zoé', session: 's1', claims: { roles: ['editor'], level: 7, code: '7', team: 'red team' } })
    assert.equal(identityFromHeaders(new Headers({ 'X-Tegata-Subject': '12345' })).subject, '12345')
    assert.equal(identityFromHeaders(new Headers()), null)
  })

  it('Next.js: auth() in gate mode and in verify mode', async () => {
    configure({ mode: 'gate' })
    const req = new Request('http://x/', { headers: { 'X-Tegata-Subject': 'alice', 'X-Tegata-Session': 's' } })
    assert.equal((await auth(req)).subject, 'alice')
    const s = await a.session('bea')
    globalThis[Symbol.for('@tegata/node/next')].verifier = Promise.resolve(v)
    configure({ mode: 'verify' })
    try {
      const got = await auth(new Request('http://x/', { headers: { Cookie: `__Host-tegata-at=${s.access_token}` } }))
      assert.equal(got.subject, 'bea')
      assert.equal(await auth(new Request('http://x/', { headers: { 'X-Tegata-Subject': 'forged' } })), null,
        'verify mode never trusts identity headers')
    } finally {
      configure({ mode: 'gate' })
    }
  })

  it('serverless: introspection rejects at once; the status list when its ttl has passed', async () => {
    const intro = createStatelessVerifier({ authority: a.url, revocation: 'introspect', feedKey: a.feedKey })
    const list = createStatelessVerifier({ authority: a.url })
    const s = await a.session('sam')
    assert.equal((await intro.verify(s.access_token)).sub, 'sam')
    assert.equal((await list.verify(s.access_token)).sub, 'sam')
    await a.revokeSession(s.session_id)
    await assert.rejects(intro.verify(s.access_token), { code: 'inactive' })
    const fresh = createStatelessVerifier({ authority: a.url }) // no cached list: as a cold start
    await assert.rejects(fresh.verify(s.access_token), { code: 'revoked' })
  })
})
