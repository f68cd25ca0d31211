// Requests to the authorities: bounded in time, failing over between them.
import { hostname } from 'node:os'

export const VERSION = '0.1.0'
export const HOST = hostname()
const REQUEST_TIMEOUT = 10_000

export class HTTPError extends Error {
  constructor(status, body, url) {
    super(`${url}: ${status}: ${body.slice(0, 300)}`)
    this.name = 'HTTPError'
    this.status = status
    this.body = body
  }

  /** code is the "error" of a JSON error body, if any. */
  get code() {
    try {
      return JSON.parse(this.body).error ?? ''
    } catch {
      return ''
    }
  }
}

/** request makes one request of at most 10 s and returns the response and its text; non-2xx throws HTTPError. */
export async function request(url, init = {}, signal) {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT)
  const s = signal ? AbortSignal.any([signal, timeout]) : timeout
  const res = await fetch(url, { ...init, signal: s })
  const body = await res.text()
  if (!res.ok) throw new HTTPError(res.status, body, url)
  return { res, body }
}

/** each tries fn on every authority in turn until one succeeds; it throws the errors of all. */
export async function each(bases, fn) {
  const errs = []
  for (const base of bases) {
    try {
      return await fn(base)
    } catch (err) {
      errs.push(err)
    }
  }
  throw new AggregateError(errs, errs.map((e) => e.message).join('; '))
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false)
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(true) }, ms)
    const onAbort = () => { clearTimeout(t); resolve(false) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** backoff is the jittered wait after failures consecutive failures, in [d/2, d], d doubling from lo up to hi. */
export function backoff(failures, lo, hi) {
  let d = lo
  for (let i = 1; i < failures && d < hi; i++) d *= 2
  d = Math.min(d, hi)
  return d / 2 + Math.random() * (d / 2)
}
