import { fail } from './errors.js'

const b64token = /^[A-Za-z0-9\-._~+/]+=*$/

/**
 * tokenFromHeader returns the token of an "Authorization: Bearer <token>"
 * header value (scheme case-insensitive), as Go's TokenFromRequest: it
 * throws a VerifyError no_token for none, malformed for anything else.
 */
export function tokenFromHeader(value) {
  if (Array.isArray(value)) {
    if (value.length > 1) throw fail('malformed', 'several Authorization headers')
    value = value[0]
  }
  if (value === undefined || value === null || value === '') throw fail('no_token', 'no token')
  if (value.length <= 7 || value.slice(0, 7).toLowerCase() !== 'bearer ') {
    throw fail('malformed', 'Authorization header is not "Bearer <token>"')
  }
  const raw = value.slice(7).replace(/^ +/, '')
  if (!b64token.test(raw)) throw fail('malformed', 'bearer token has characters outside b64token')
  return raw
}
