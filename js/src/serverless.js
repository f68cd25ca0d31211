// Verification where no process lives long enough to follow the feed
// (serverless functions): signature and claims locally, revocation by the
// Token Status List (cached for its ttl: revocation waits up to that long)
// or by introspection (a request per token: revocation at once).
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { fail, VerifyError } from './errors.js'
import { split } from './token.js'

/**
 * createStatelessVerifier returns { verify(token) } that checks the
 * signature with the authority's JWKS (jose, cached) and then revocation by
 * revocation: 'statuslist' (default) or 'introspect' (needs feedKey).
 */
export function createStatelessVerifier({ authority, issuer, audience, revocation = 'statuslist', feedKey, algorithms = ['EdDSA', 'ES256'] }) {
  const base = String(authority).replace(/\/+$/, '')
  const jwks = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`))
  const lists = new Map() // uri -> { bits, until }
  return {
    async verify(raw) {
      split(raw)
      let payload
      try {
        ;({ payload } = await jwtVerify(raw, jwks, { issuer: issuer ?? base, audience: audience ?? 'tegata', algorithms, typ: 'at+jwt' }))
      } catch (err) {
        throw fail(err.code === 'ERR_JWT_EXPIRED' ? 'expired' : 'signature', err.message, err)
      }
      if (revocation === 'introspect') await introspect(base, feedKey, raw)
      else await checkStatus(lists, payload, jwks)
      return payload
    },
  }
}

async function introspect(base, key, raw) {
  let res
  try {
    res = await fetch(`${base}/v1/introspect`, { method: 'POST', body: new URLSearchParams({ token: raw }), headers: { Authorization: `Bearer ${key}` } })
  } catch (err) {
    throw fail('unavailable', `introspection: ${err.message}`, err)
  }
  if (!res.ok) throw fail('unavailable', `introspection answered ${res.status}`)
  if ((await res.json()).active !== true) throw fail('inactive', 'the authority says the token is not active')
}

/** checkStatus reads the token's status list entry (draft-ietf-oauth-status-list): 0 valid, anything else revoked. */
async function checkStatus(lists, payload, jwks) {
  const ref = payload.status?.status_list
  if (!ref || typeof ref.uri !== 'string' || !Number.isInteger(ref.idx)) throw fail('claims', 'token has no status list entry')
  let l = lists.get(ref.uri)
  if (!l || Date.now() > l.until) {
    const res = await fetch(ref.uri, { headers: { Accept: 'application/statuslist+jwt' } }).catch((err) => { throw fail('unavailable', err.message, err) })
    if (!res.ok) throw fail('unavailable', `status list answered ${res.status}`)
    let body
    try {
      ;({ payload: body } = await jwtVerify(await res.text(), jwks, { typ: 'statuslist+jwt' }))
    } catch (err) {
      throw fail('unavailable', `status list: ${err.message}`, err)
    }
    const { inflateSync } = await import('node:zlib')
    l = { bits: body.status_list.bits, lst: inflateSync(Buffer.from(body.status_list.lst, 'base64url')), until: Date.now() + (body.ttl ?? 60) * 1000 }
    lists.set(ref.uri, l)
  }
  const per = 8 / l.bits
  const byte = l.lst[Math.floor(ref.idx / per)]
  const status = (byte >> ((ref.idx % per) * l.bits)) & ((1 << l.bits) - 1)
  if (status !== 0) throw fail('revoked', `status list says ${status}`)
}

export { VerifyError }
