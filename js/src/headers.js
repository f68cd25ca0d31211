// The web gate's headers: X-Tegata-Login (an app signs a browser in) and the
// identity headers the gate adds to every request it forwards.

export const LOGIN = 'X-Tegata-Login'
export const LOGOUT = 'X-Tegata-Logout'
export const SUBJECT = 'x-tegata-subject'
export const SESSION = 'x-tegata-session'
export const CLAIM_PREFIX = 'x-tegata-claim-'

/**
 * asciiJSON is JSON.stringify with every character outside printable ASCII
 * escaped as \uXXXX: the one encoding the gate takes in X-Tegata-Login. Node
 * writes a header's characters as Latin-1 bytes and Web Headers throws on
 * anything above U+00FF, so JSON.stringify alone breaks both ways.
 */
export function asciiJSON(v) {
  return JSON.stringify(v).replace(/[\u0000-\u001f\u007f-\uffff]/g,
    (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

/** loginHeader returns the X-Tegata-Login value for {subject, device, claims}. */
export function loginHeader({ subject, device, claims } = {}) {
  if (typeof subject !== 'string' || subject === '') throw new TypeError('signIn: subject is required')
  const l = { subject }
  if (claims !== undefined && claims !== null) l.claims = claims
  if (device) l.device = device
  return asciiJSON(l)
}

/** decodeString decodes X-Tegata-Subject / X-Tegata-Session: a value beginning with " is a JSON string, any other the string itself. */
export function decodeString(v) {
  if (v === null || v === undefined) return undefined
  if (v.startsWith('"')) return JSON.parse(v)
  return v
}

/** decodeClaim decodes an X-Tegata-Claim-* value: a value that parses as JSON is that JSON, any other the string itself. */
export function decodeClaim(v) {
  if (v === null || v === undefined || v === '') return undefined
  try {
    return JSON.parse(v)
  } catch {
    return v
  }
}

/**
 * identityFromHeaders reads the gate's identity headers from a Web Headers
 * object, a Node IncomingHttpHeaders object or anything with get(). It
 * returns { subject, session, claims } or null when there is no subject.
 * Claim names come back as the gate spells the header (lower case, '-' for
 * runs of other characters): X-Tegata-Claim-Tenant-Id is claims['tenant-id'].
 */
export function identityFromHeaders(h) {
  const entries = typeof h?.entries === 'function' ? [...h.entries()] : Object.entries(h ?? {})
  const get = (name) => {
    for (const [k, v] of entries) if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v
    return undefined
  }
  const subject = decodeString(get(SUBJECT))
  if (!subject) return null
  const claims = {}
  for (const [k, v] of entries) {
    const name = k.toLowerCase()
    if (name.startsWith(CLAIM_PREFIX)) {
      const value = decodeClaim(Array.isArray(v) ? v[0] : v)
      if (value !== undefined) claims[name.slice(CLAIM_PREFIX.length)] = value
    }
  }
  return { subject, session: decodeString(get(SESSION)), claims }
}
