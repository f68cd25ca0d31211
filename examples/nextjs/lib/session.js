// What differs between the two ways the example runs. Behind the gate, the
// gate creates and ends sessions (X-Tegata-Login / -Logout on our answers)
// and checks CSRF. Self-hosted, the app calls the authority itself with a
// gate key, keeps the access token in a cookie, and checks the origin of
// state-changing requests itself (Route Handlers have no CSRF defence).
import { signIn as gateSignIn, signOut as gateSignOut, auth } from '@tegata/node/next'

export const selfHosted = () => process.env.TEGATA_MODE === 'self'
const COOKIE = '__Host-tegata-at'

async function authority(method, path, body) {
  const res = await fetch(process.env.TEGATA_URL + path, {
    method, body: body && JSON.stringify(body),
    headers: { Authorization: `Bearer ${process.env.TEGATA_GATE_KEY}`, 'Content-Type': 'application/json' },
  })
  if (!res.ok) throw new Error(`authority: ${method} ${path}: ${res.status} ${await res.text()}`)
  return res.json()
}

/** sameOrigin refuses a cross-site form post (self-hosted; the gate does it otherwise). */
export function sameOrigin(request) {
  const site = request.headers.get('sec-fetch-site')
  if (site) return site === 'same-origin' || site === 'none'
  const origin = request.headers.get('origin')
  return !origin || new URL(origin).host === request.headers.get('host')
}

export async function signIn(response, login) {
  if (!selfHosted()) return gateSignIn(response, login)
  const s = await authority('POST', '/v1/sessions', login)
  response.headers.append('Set-Cookie', `${COOKIE}=${s.access_token}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${s.expires_in}`)
  return response
}

export async function signOut(request, response, scope) {
  if (!selfHosted()) return gateSignOut(response, scope)
  const me = await auth(request)
  if (me) {
    if (scope === 'everywhere') await authority('POST', `/v1/subjects/${encodeURIComponent(me.subject)}/revoke`, { scope: 'sessions' })
    else await authority('POST', `/v1/sessions/${encodeURIComponent(me.session)}/revoke`)
  }
  response.headers.append('Set-Cookie', `${COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`)
  return response
}

/** role reads the role from the claims, as the gate's header (an array) or the token's claim. */
export function role(me) {
  const r = me?.claims?.roles
  return Array.isArray(r) ? r.join(', ') : String(r ?? 'none')
}
