// The example in Chromium, both ways it runs: behind `tegata gate --web`,
// and self-hosted (`next start` verifying with @tegata/node). Real
// processes throughout: tegata serve and tegata gate built from this
// checkout, the Next.js production server, headless Chromium. Without
// Chromium the test skips, and fails under CI=true.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startAuthority, binary } from '../../../js/test/helpers/authority.js'

const app = join(dirname(fileURLToPath(import.meta.url)), '..')
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const haveChromium = existsSync(CHROMIUM)
if (!haveChromium && process.env.CI === 'true') throw new Error(`Chromium not found at ${CHROMIUM}: CI=true needs it`)

/** run starts a process and resolves with it once its output matches ready (the match's first group). */
function run(cmd, args, env, ready) {
  const p = spawn(cmd, args, { cwd: app, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  const found = new Promise((resolve, reject) => {
    const on = (s) => {
      log += s
      const m = ready.exec(log)
      if (m) resolve(m[1])
    }
    p.stdout.setEncoding('utf8').on('data', on)
    p.stderr.setEncoding('utf8').on('data', on)
    p.on('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${log}`)))
  })
  return { p, found, log: () => log, stop: () => new Promise((r) => { if (p.exitCode !== null) return r(); p.once('exit', r); p.kill('SIGTERM') }) }
}

/** freePort returns a loopback port nobody listens on now. */
async function freePort() {
  const s = createServer()
  await new Promise((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address()
  await new Promise((r) => s.close(r))
  return port
}

async function startNext(env) {
  const port = await freePort()
  const n = run(join(app, 'node_modules', '.bin', 'next'), ['start', '-H', '127.0.0.1', '-p', String(port)], env, /(Ready|ready)/)
  await n.found
  return { ...n, url: `http://127.0.0.1:${port}` }
}

describe('examples/nextjs in Chromium', { skip: !haveChromium && `no Chromium at ${CHROMIUM}` }, () => {
  let a, gateKey, browser, chromium, evil, evilURL
  const procs = []
  before(async () => {
    binary()
    // TEGATA_NEXT_BUILT=1 reuses a build made by hand (iterating on the test).
    if (process.env.TEGATA_NEXT_BUILT !== '1') execFileSync(join(app, 'node_modules', '.bin', 'next'), ['build'], { cwd: app, stdio: 'inherit' })
    a = await startAuthority()
    gateKey = (await a.api('POST', '/v1/apikeys', { name: 'web', role: 'gate' })).key
    ;({ chromium } = await import('playwright-core'))
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    })
    // Another origin, whose page posts a sign-out form to the app: CSRF.
    evil = createServer((req, res) => {
      const target = new URL(req.url, 'http://x').searchParams.get('target')
      res.setHeader('Content-Type', 'text/html')
      res.end(`<form id="f" method="post" action="${target}/api/logout"><input name="scope" value="everywhere"></form>
        <script>document.getElementById('f').submit()</script>`)
    })
    await new Promise((r) => evil.listen(0, '127.0.0.1', r))
    evilURL = `http://localhost:${evil.address().port}`
  })
  after(async () => {
    await browser?.close()
    evil?.close()
    for (const p of procs) await p.stop()
    await a?.cleanup()
  })

  async function signIn(base, user, role = 'editor') {
    const ctx = await browser.newContext()
    const page = await ctx.newPage()
    await page.goto(base + '/')
    await page.waitForSelector('#signed-out')
    await page.fill('#user', user)
    await page.selectOption('#role-select', role)
    await Promise.all([page.waitForSelector('#who'), page.click('#signin')])
    return { ctx, page }
  }

  const text = (page, sel) => page.textContent(sel)
  const step = (s) => process.env.TEGATA_TEST_TRACE && process.stderr.write(`# ${s}\n`)

  for (const mode of ['gate', 'self']) {
    it(`${mode}: sign-in with a non-ASCII subject, role from claims, remote sign-out, role change, CSRF, revocation on an open page`, async () => {
      step('const next = await startNext(')
      const next = await startNext({ TEGATA_MODE: mode, TEGATA_URL: a.url, TEGATA_FEED_KEY: a.feedKey, TEGATA_GATE_KEY: gateKey })
      procs.push(next)
      let base = next.url
      if (mode === 'gate') {
        const dir = mkdtempSync(join(tmpdir(), 'tegata-gate-'))
        const g = run(binary(), ['gate', '--authority', a.url, '--listen', '127.0.0.1:0', '--upstream', next.url, '--web',
          '--public', '/login,/api/login,/_next/,/favicon.ico', '--login-handoff-paths', '/api/login'],
        { TEGATA_GATE_KEY: gateKey }, /tegata gate listening" addr=(\S+)/)
        procs.push(g)
        base = `http://${await g.found}`
        rmSync(dir, { recursive: true, force: true })
      }
      const subject = mode === 'gate' ? '山田 zoé' : 'zoë 🦊'
      step('const one = await signIn(base')
      const one = await signIn(base, subject, 'admin')
      assert.equal(await text(one.page, '#who'), `Signed in as ${subject}`)
      assert.equal(await text(one.page, '#role'), 'admin')
      const two = await signIn(base, subject)
      const sid2 = await text(two.page, '#session')
      const sid1 = await text(one.page, '#session')
      assert.notEqual(sid1, sid2)

      step('// Remote sign-out')
      // Remote sign-out of the other device: as the devices page does.
      await a.revokeSession(sid2, '5s')
      await two.page.reload()
      await two.page.waitForSelector('#signed-out')

      step('// Role change')
      // Role change: old tokens cut off, the next one carries the new claims.
      await a.revokeSubject(subject, { scope: 'access', claims: { roles: ['viewer'] } }, '5s')
      if (mode === 'gate') {
        await one.page.reload()
        assert.equal(await text(one.page, '#role'), 'viewer', 'the gate refreshed the session with the new claims')
      } else {
        await one.page.reload()
        await one.page.waitForSelector('#signed-out') // self-hosted keeps no refresh token: sign in again
        await one.page.fill('#user', subject)
        await Promise.all([one.page.waitForSelector('#who'), one.page.click('#signin')])
      }

      step('// CSRF')
      // CSRF: a page of another origin posts "sign out everywhere".
      const evilPage = await one.ctx.newPage()
      const answer = evilPage.waitForResponse((r) => r.url().endsWith('/api/logout'))
      await evilPage.goto(`${evilURL}/?target=${encodeURIComponent(base)}`)
      assert.equal((await answer).status(), 403, 'the cross-origin form post is refused')
      await one.page.reload()
      assert.match(await text(one.page, '#who'), /Signed in as/)

      step('// A page opened before')
      // A page opened before the revocation: its next navigation shows it.
      const sid = await text(one.page, '#session')
      await a.revokeSession(sid, '5s')
      await one.page.click('#account')
      await one.page.waitForSelector('#signed-out')

      await one.ctx.close()
      await two.ctx.close()
    })
  }
})
