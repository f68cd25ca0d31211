// A real `tegata serve`, built from this checkout, for the tests: no mock
// authority. The binary is built once per run (TEGATA_BIN names a built
// one) into js/.cache/.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'

const js = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const repo = join(js, '..')

export function binary() {
  if (process.env.TEGATA_BIN) return process.env.TEGATA_BIN
  const bin = join(js, '.cache', 'tegata')
  if (process.env.TEGATA_BUILT && existsSync(bin)) return bin
  mkdirSync(dirname(bin), { recursive: true })
  execFileSync('go', ['build', '-o', bin, './cmd/tegata'], { cwd: repo, stdio: 'inherit' })
  process.env.TEGATA_BIN = bin
  return bin
}

/**
 * startAuthority runs `tegata serve` on a fresh data directory (or dir) and
 * resolves once it listens. addr defaults to a free loopback port.
 */
export async function startAuthority({ addr = '127.0.0.1:0', dir, args = [], adminKey, feedKey } = {}) {
  dir ??= mkdtempSync(join(tmpdir(), 'tegata-node-'))
  adminKey ??= 'adm-' + randomBytes(24).toString('base64url')
  feedKey ??= 'feed-' + randomBytes(24).toString('base64url')
  const proc = spawn(binary(), ['serve', '--data', join(dir, 'data'), '--addr', addr, '--rate-limits', 'off', ...args], {
    env: { ...process.env, TEGATA_API_KEY: adminKey, TEGATA_FEED_KEY: feedKey },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let log = ''
  const url = await new Promise((resolve, reject) => {
    proc.stderr.setEncoding('utf8')
    proc.stderr.on('data', (s) => {
      log += s
      const m = /msg=listening url=(\S+)/.exec(log)
      if (m) resolve(m[1])
    })
    proc.on('exit', (code) => reject(new Error(`tegata serve exited ${code}:\n${log}`)))
  })
  const a = {
    url, dir, adminKey, feedKey, proc, log: () => log,
    async stop() {
      if (proc.exitCode !== null) return
      const exited = new Promise((r) => proc.once('exit', r))
      proc.kill('SIGTERM')
      await exited
    },
    /** restart stops the authority and starts it again on the same address and data. */
    async restart(extra = []) {
      await a.stop()
      return startAuthority({ addr: new URL(url).host, dir, args: [...args, ...extra], adminKey, feedKey })
    },
    async cleanup() {
      await a.stop()
      rmSync(dir, { recursive: true, force: true })
    },
    api: (method, path, body) => api(url, adminKey, method, path, body),
    session: (subject, claims, device) => api(url, adminKey, 'POST', '/v1/sessions', { subject, claims, device }),
    revokeSession: (sid, confirm) => api(url, adminKey, 'POST', `/v1/sessions/${encodeURIComponent(sid)}/revoke${confirm ? `?confirm=${confirm}` : ''}`),
    revokeSubject: (sub, body = {}, confirm) =>
      api(url, adminKey, 'POST', `/v1/subjects/${encodeURIComponent(sub)}/revoke${confirm ? `?confirm=${confirm}` : ''}`, body),
    verifiers: () => api(url, adminKey, 'GET', '/v1/verifiers'),
  }
  return a
}

async function api(base, key, method, path, body) {
  const res = await fetch(base + path, {
    method, headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  const json = text ? JSON.parse(text) : null
  if (res.status >= 300) {
    const err = new Error(`${method} ${path}: ${res.status} ${text}`)
    err.status = res.status
    err.body = json
    throw err
  }
  return { status: res.status, ...json }
}

