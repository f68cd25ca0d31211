// Strict parsing and checking of tegata access tokens (RFC 9068), the rules
// of Go's package token: the caller names the algorithms, the key comes from
// the authority's key set by kid alone, and every refusal carries the code
// of the check that failed. jose verifies the signature.
import { compactVerify } from 'jose'
import { fail } from './errors.js'

export const EdDSA = 'EdDSA'
export const ES256 = 'ES256'
export const DEFAULT_MAX_SIZE = 8192
const MAX_NUMERIC_DATE = 253402300799

// Header parameters that name key material or a key URL, critical
// extensions (none is understood), or belong to JWE / unencoded payloads.
const refusedParams = {
  jwk: 'embeds key material', jku: 'names a key URL', x5u: 'names a certificate URL',
  x5c: 'embeds a certificate chain', x5t: 'names a certificate', 'x5t#S256': 'names a certificate',
  crit: 'lists critical extensions, and none is understood', b64: 'changes the payload encoding',
  enc: 'belongs to JWE', zip: 'belongs to JWE',
}
const registered = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'sid', 'sgen', 'status'])
const utf8 = new TextDecoder('utf-8', { fatal: true })
const b64url = /^[A-Za-z0-9_-]+$/

/** decodeSegment decodes canonical base64url (no padding, no stray bits). */
function decodeSegment(seg, name) {
  const buf = Buffer.from(seg, 'base64url')
  if (seg.length % 4 === 1 || buf.toString('base64url') !== seg) {
    throw fail('malformed', `${name} segment is not canonical base64url`)
  }
  return buf
}

function parseJSON(bytes, part) {
  let v
  try {
    v = JSON.parse(utf8.decode(bytes))
  } catch (e) {
    throw fail('malformed', `${part} is not valid JSON in UTF-8`, e)
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw fail('malformed', `${part} is not a JSON object`)
  }
  return v
}

/** split returns the compact form's segments, refusing anything else. */
export function split(raw, maxSize = DEFAULT_MAX_SIZE) {
  if (typeof raw !== 'string') throw fail('malformed', 'token is not a string')
  if (raw.length > maxSize) throw fail('too_large', `${raw.length} bytes, limit ${maxSize}`)
  const parts = raw.split('.')
  if (parts.length !== 3) {
    throw fail('malformed', parts.length === 5 ? '5 segments: JWE is not accepted' : `want 3 segments, got ${parts.length}`)
  }
  if (!parts[0] || !parts[1]) throw fail('malformed', 'empty header or payload segment')
  for (const p of parts) {
    if (p && !b64url.test(p)) throw fail('malformed', 'a segment is not base64url')
  }
  return parts
}

/**
 * checkHeader applies the allowed algorithms and the header rules, then
 * looks the key up by kid in keys (a Map kid -> {alg, key}); the key's alg
 * must be the header's.
 */
export function checkHeader(h, algorithms, keys) {
  const alg = h.alg
  if (typeof alg !== 'string') throw fail('algorithm', 'header has no alg string')
  if (alg !== EdDSA && alg !== ES256) {
    if (alg.toLowerCase() === 'none') throw fail('algorithm', 'alg "none": unsigned tokens are never accepted')
    throw fail('algorithm', `alg ${JSON.stringify(alg)} is not supported`)
  }
  if (!algorithms.includes(alg)) throw fail('algorithm', `alg ${alg} is not allowed`)
  for (const name of Object.keys(h)) {
    if (Object.hasOwn(refusedParams, name)) throw fail('header', `parameter "${name}" ${refusedParams[name]}`)
  }
  const typ = typeof h.typ === 'string' ? h.typ.toLowerCase() : undefined
  if (typ !== 'at+jwt' && typ !== 'application/at+jwt') throw fail('type', `typ ${JSON.stringify(h.typ)}, want "at+jwt"`)
  if (typeof h.kid !== 'string' || h.kid === '') throw fail('header', 'header has no kid string')
  const key = keys?.get(h.kid)
  if (!key) throw fail('unknown_key', `kid ${JSON.stringify(h.kid)}`)
  if (key.alg !== alg) throw fail('algorithm', `header alg ${alg} does not match alg "${key.alg}" of key "${h.kid}"`)
  return key
}

function numericDate(c, name, required) {
  const v = c[name]
  if (v === undefined) {
    if (required) throw fail('claims', `${name} is missing`)
    return undefined
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_NUMERIC_DATE) {
    throw fail('claims', `${name} is not a number in range`)
  }
  return v * 1000
}

function nonEmpty(c, name, code = 'claims') {
  const v = c[name]
  if (v !== undefined && typeof v !== 'string') throw fail('claims', `${name} is not a string`)
  if (!v) throw fail(code, `${name} is missing or empty`)
  return v
}

/**
 * readClaims checks the types of the registered claims and returns the
 * token's instants in milliseconds.
 */
export function readClaims(c) {
  if (Object.hasOwn(c, 'cnf')) throw fail('claims', 'cnf (proof of possession) is not supported')
  const aud = c.aud
  if (aud !== undefined && typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) {
    throw fail('claims', 'aud is neither a string nor an array of strings')
  }
  if (c.sgen !== undefined && !(Number.isSafeInteger(c.sgen) && c.sgen >= 0)) {
    throw fail('claims', 'sgen is not a non-negative integer')
  }
  const t = { exp: numericDate(c, 'exp', true), iat: numericDate(c, 'iat', true), nbf: numericDate(c, 'nbf', false) }
  nonEmpty(c, 'iss', 'issuer')
  nonEmpty(c, 'sub')
  nonEmpty(c, 'sid')
  nonEmpty(c, 'jti')
  return t
}

/**
 * Expect is what a token must satisfy besides its signature; times in ms.
 * window returns the instants [from, until] at which checkTimes accepts t.
 */
export function window(t, e) {
  let from = t.iat
  if (t.nbf !== undefined && t.nbf > from) from = t.nbf
  if (e.maxLifetime > 0 && t.exp - e.maxLifetime > from) from = t.exp - e.maxLifetime
  return [from - e.leeway, t.exp + e.leeway]
}

export function checkTimes(t, e, now) {
  if (now > t.exp + e.leeway) throw fail('expired', `exp ${iso(t.exp)} is before ${iso(now)}`)
  const late = now + e.leeway
  if (t.nbf !== undefined && t.nbf > late) throw fail('not_yet_valid', `nbf ${iso(t.nbf)} is after ${iso(now)}`)
  if (t.iat > late) throw fail('not_yet_valid', `iat ${iso(t.iat)} is after ${iso(now)}`)
  if (e.maxLifetime > 0 && t.exp > late + e.maxLifetime) {
    throw fail('claims', `exp ${iso(t.exp)} is more than ${e.maxLifetime / 1000}s after ${iso(now)}`)
  }
}

function iso(ms) {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}

/** checkClaims applies issuer, audience and time rules. */
export function checkClaims(c, t, e, now) {
  if (c.iss !== e.issuer) throw fail('issuer', `iss ${JSON.stringify(c.iss)}, want ${JSON.stringify(e.issuer)}`)
  if (e.audience) {
    const aud = typeof c.aud === 'string' ? [c.aud] : (c.aud ?? [])
    if (!aud.includes(e.audience)) throw fail('audience', `aud does not contain ${JSON.stringify(e.audience)}`)
  }
  checkTimes(t, e, now)
}

/**
 * verifyToken checks raw completely: size, compact form, header, signature
 * (jose), claims. It returns { claims, key, times }: claims deep-frozen, so
 * that a cache can hand the same object to every caller.
 */
export async function verifyToken(raw, keys, e, now) {
  const parts = split(raw, e.maxSize)
  const header = parseJSON(decodeSegment(parts[0], 'header'), 'header')
  const key = checkHeader(header, e.algorithms, keys)
  decodeSegment(parts[1], 'payload')
  if (!parts[2]) throw fail('malformed', 'signature segment is empty')
  decodeSegment(parts[2], 'signature')
  let payload
  try {
    ;({ payload } = await compactVerify(raw, key.key, { algorithms: [key.alg] }))
  } catch (err) {
    throw fail('signature', `${key.alg} signature does not verify`, err)
  }
  const claims = parseJSON(payload, 'payload')
  const times = readClaims(claims)
  checkClaims(claims, times, e, now)
  return { claims: deepFreeze(claims), key, times }
}

export function deepFreeze(v) {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const k of Object.keys(v)) deepFreeze(v[k])
  }
  return v
}

export { registered }
