// Next.js (App Router): auth() for Route Handlers and Server Components,
// signIn / signOut for Route Handlers behind `tegata gate --web`, and one
// Verifier per process for apps that verify the cookie themselves.
import { createVerifier } from './verifier.js'
import { identityFromHeaders, loginHeader, LOGIN, LOGOUT } from './headers.js'
import { tokenOf } from './express.js'

const ACCESS_COOKIE = '__Host-tegata-at'
const SLOT = Symbol.for('@tegata/node/next')

function slot() {
  globalThis[SLOT] ??= { mode: 'gate', verifier: null, cookie: ACCESS_COOKIE }
  return globalThis[SLOT]
}

/**
 * configure says how auth() finds the identity: mode 'gate' (default) reads
 * the headers `tegata gate --web` adds (only safe behind the gate, which
 * removes client-sent X-Tegata-* headers); mode 'verify' verifies the
 * access token (Authorization header, else the cookie) with the process's
 * Verifier (startVerifier).
 */
export function configure({ mode = 'gate', cookie = ACCESS_COOKIE } = {}) {
  if (mode !== 'gate' && mode !== 'verify') throw new TypeError(`configure: mode ${JSON.stringify(mode)}: 'gate' or 'verify'`)
  Object.assign(slot(), { mode, cookie })
}

/**
 * startVerifier starts the process's one Verifier (kept on globalThis, so
 * that Next.js's module copies and hot reloads share it) and turns on mode
 * 'verify'. Call it from instrumentation.js's register(); later calls return
 * the same instance.
 */
export function startVerifier(options) {
  const s = slot()
  s.mode = 'verify'
  s.verifier ??= createVerifier(options).then(async (v) => {
    await v.ready()
    return v
  })
  return s.verifier
}

async function requestHeaders(source) {
  if (source?.headers) return source.headers
  if (source) return source
  const { headers } = await import('next/headers')
  return headers()
}

/**
 * auth returns { subject, session, claims } of the signed-in user, or null.
 * source is a Request (Route Handlers, middleware) or Headers; without it
 * auth reads next/headers (Server Components). In mode 'verify' a token that
 * fails verification (revoked, expired, stale) is null, like no token.
 */
export async function auth(source) {
  const s = slot()
  const h = await requestHeaders(source)
  if (s.mode === 'gate') return identityFromHeaders(h)
  const v = await (s.verifier ?? Promise.reject(new Error('auth(): mode verify needs startVerifier() first')))
  const raw = tokenOf({ authorization: get(h, 'authorization'), cookie: get(h, 'cookie') }, s.cookie)
  if (!raw) return null
  try {
    const claims = await v.verify(raw)
    return { subject: claims.sub, session: claims.sid, claims }
  } catch (err) {
    if (err?.code) return null
    throw err
  }
}

function get(h, name) {
  return typeof h.get === 'function' ? h.get(name) ?? undefined : h[name]
}

function setHeader(response, name, value) {
  if (typeof response?.headers?.set === 'function') response.headers.set(name, value)
  else if (typeof response?.setHeader === 'function') response.setHeader(name, value)
  else throw new TypeError('signIn/signOut: pass a Response (NextResponse) or a Node ServerResponse')
  return response
}

/**
 * signIn asks the web gate to sign this browser in: it sets X-Tegata-Login
 * on response (a Route Handler's Response: Server Actions cannot set
 * response headers), ASCII JSON that carries any Unicode subject.
 */
export function signIn(response, login) {
  return setHeader(response, LOGIN, loginHeader(login))
}

/** signOut asks the web gate to end this browser's session ('session') or every session of the user ('everywhere'). */
export function signOut(response, scope = 'session') {
  if (scope !== 'session' && scope !== 'everywhere') throw new TypeError(`signOut: scope ${JSON.stringify(scope)}: 'session' or 'everywhere'`)
  return setHeader(response, LOGOUT, scope)
}
