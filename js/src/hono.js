// Hono middleware: verifies the request's bearer token (or a cookie) and
// sets c.get('auth') to the claims.
import { tokenFromHeader } from './bearer.js'
import { reason, statusOf } from './errors.js'
import { tokenOf } from './express.js'

/** tegata returns Hono middleware; the options are those of the Express one. */
export function tegata({ verifier, cookie, optional = false } = {}) {
  if (!verifier) throw new TypeError('tegata(): verifier is required')
  return async (c, next) => {
    let claims
    try {
      const raw = tokenOf({ authorization: c.req.header('authorization'), cookie: c.req.header('cookie') }, cookie)
      if (raw === undefined && optional) return next()
      claims = await verifier.verify(raw ?? tokenFromHeader(undefined))
    } catch (err) {
      if (!err?.code) throw err
      const status = statusOf(err)
      const code = status === 403 ? 'insufficient_scope' : 'invalid_token'
      c.header('Cache-Control', 'no-store')
      c.header('WWW-Authenticate', err.code === 'no_token' ? 'Bearer realm="tegata"'
        : `Bearer realm="tegata", error="${code}", error_description="${reason(err)}"`)
      return c.json({ error: code, error_description: reason(err) }, status)
    }
    c.set('auth', claims)
    await next()
  }
}
