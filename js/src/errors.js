// VerifyError and the codes it carries: the same identifiers as Go's
// verifier.Code, so that logs and metrics of Go and Node services line up.

/** Codes a VerifyError carries, most specific first (as verifier.Code). */
export const codes = Object.freeze([
  'no_token', 'revoked', 'inactive', 'stale', 'unavailable', 'too_large', 'malformed',
  'header', 'algorithm', 'unknown_key', 'signature', 'type', 'expired', 'not_yet_valid',
  'issuer', 'audience', 'claims', 'forbidden',
])

const known = new Set(codes)

/**
 * The error verify() rejects with. code says which check failed (for logs
 * and metrics, never for clients: use reason()); message says why, and may
 * name keys or values of the token.
 */
export class VerifyError extends Error {
  constructor(code, message, options) {
    super(message, options)
    this.name = 'VerifyError'
    this.code = known.has(code) ? code : 'other'
  }
}

/**
 * reason maps an error to a short reason that is safe to show a client, as
 * Go's verifier.Reason: "no token", "token expired", "token revoked",
 * "verifier not in sync with authority", "insufficient claims" or "token
 * invalid"; "" for none.
 */
export function reason(err) {
  if (!err) return ''
  switch (err.code) {
    case 'no_token': return 'no token'
    case 'expired': return 'token expired'
    case 'revoked': case 'inactive': return 'token revoked'
    case 'stale': case 'unavailable': return 'verifier not in sync with authority'
    case 'forbidden': return 'insufficient claims'
    default: return 'token invalid'
  }
}

/** The HTTP status a middleware answers for err, as Go's WriteError: 403 for forbidden, else 401. */
export function statusOf(err) {
  return err?.code === 'forbidden' ? 403 : 401
}

export function fail(code, message, cause) {
  return new VerifyError(code, message, cause ? { cause } : undefined)
}
