// Express middleware: verifies the request's bearer token (or a cookie)
// with a Verifier and puts the claims on req.auth.
import { tokenFromHeader } from './bearer.js'
import { reason, statusOf, fail } from './errors.js'

/**
 * tegata returns Express middleware. Options: verifier (required); cookie,
 * a cookie name to read the token from when there is no Authorization
 * header (the web gate's is __Host-tegata-at); optional, to let requests
 * without a token through with req.auth undefined.
 */
export function tegata({ verifier, cookie, optional = false } = {}) {
  if (!verifier) throw new TypeError('tegata(): verifier is required')
  return async function tegataAuth(req, res, next) {
    try {
      const raw = tokenOf(req.headers, cookie)
      if (raw === undefined && optional) return next()
      req.auth = await verifier.verify(raw ?? tokenFromHeader(undefined))
      next()
    } catch (err) {
      if (!err?.code) return next(err)
      refuse(res, err)
    }
  }
}

/** tokenOf returns the token of an Authorization header or the named cookie, or undefined. */
export function tokenOf(headers, cookie) {
  const h = headers.authorization
  if (h) return tokenFromHeader(h)
  if (cookie && headers.cookie) {
    for (const part of String(headers.cookie).split(';')) {
      const i = part.indexOf('=')
      if (i > 0 && part.slice(0, i).trim() === cookie) return part.slice(i + 1).trim() || undefined
    }
  }
  return undefined
}

/** refuse answers as Go's verifier.WriteError: 401 (403 for forbidden), an RFC 6750 challenge and a JSON error, never cached. */
export function refuse(res, err) {
  const status = statusOf(err)
  const code = status === 403 ? 'insufficient_scope' : 'invalid_token'
  const desc = reason(err)
  res.setHeader('Cache-Control', 'no-store')
  res.setHeader('WWW-Authenticate', err.code === 'no_token' ? 'Bearer realm="tegata"'
    : `Bearer realm="tegata", error="${code}", error_description="${desc}"`)
  res.status(status).json({ error: code, error_description: desc })
}

/** requireClaim returns middleware refusing (403) a request whose req.auth[name] does not hold value. */
export function requireClaim(name, value) {
  return (req, res, next) => {
    const v = req.auth?.[name]
    if (v === value || (Array.isArray(v) && v.includes(value))) return next()
    refuse(res, fail('forbidden', `claim ${name} lacks ${value}`))
  }
}
