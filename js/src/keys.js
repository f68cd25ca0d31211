// The authority's key set (JWKS) and what it publishes in its
// openid-configuration: fetched at start, every jwksRefresh, and again when
// a token names an unknown kid (at most once per unknownKidInterval).
import { importJWK } from 'jose'
import { EdDSA, ES256 } from './token.js'
import { request, each } from './http.js'

export const EPOCH_HEADER = 'tegata-epoch'

/** discover fetches the openid-configuration of the first authority that answers. */
export async function discover(bases, signal) {
  return each(bases, async (base) => {
    const { body } = await request(`${base}/.well-known/openid-configuration`, {}, signal)
    return JSON.parse(body)
  })
}

/**
 * fetchKeys returns the key set as a Map kid -> { kid, alg, key, x, y } and
 * the epoch the answer named. Keys of other algorithms or uses are skipped.
 */
export async function fetchKeys(bases, signal) {
  return each(bases, async (base) => {
    const { res, body } = await request(`${base}/.well-known/jwks.json`, {}, signal)
    const { keys } = JSON.parse(body)
    if (!Array.isArray(keys)) throw new Error('jwks: no keys array')
    const set = new Map()
    for (const jwk of keys) {
      const k = await importKey(jwk)
      if (k) set.set(k.kid, k)
    }
    return { keys: set, epoch: res.headers.get(EPOCH_HEADER) ?? '' }
  })
}

async function importKey(jwk) {
  if (typeof jwk?.kid !== 'string' || !jwk.kid || (jwk.use && jwk.use !== 'sig')) return undefined
  const ok = (jwk.alg === EdDSA && jwk.kty === 'OKP' && jwk.crv === 'Ed25519') ||
    (jwk.alg === ES256 && jwk.kty === 'EC' && jwk.crv === 'P-256')
  if (!ok) return undefined
  const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, jwk.alg)
  return { kid: jwk.kid, alg: jwk.alg, key, x: jwk.x, y: jwk.y }
}

/** sameKey reports whether two keys of possibly different sets are the same key. */
export function sameKey(a, b) {
  return a === b || (!!a && !!b && a.kid === b.kid && a.alg === b.alg && a.x === b.x && a.y === b.y)
}
