/** Codes of VerifyError, the same identifiers as Go's verifier.Code. */
export type VerifyCode =
  | 'no_token' | 'revoked' | 'inactive' | 'stale' | 'unavailable' | 'too_large' | 'malformed'
  | 'header' | 'algorithm' | 'unknown_key' | 'signature' | 'type' | 'expired' | 'not_yet_valid'
  | 'issuer' | 'audience' | 'claims' | 'forbidden' | 'other'

export const codes: readonly VerifyCode[]

/** The error verify() rejects with; code says which check failed (logs, metrics), never send it to clients. */
export class VerifyError extends Error {
  constructor(code: VerifyCode, message: string, options?: { cause?: unknown })
  readonly code: VerifyCode
}

/** A reason safe to show a client, as Go's verifier.Reason. */
export function reason(err: unknown): string
/** 403 for forbidden, else 401, as Go's verifier.WriteError. */
export function statusOf(err: unknown): 401 | 403
/** The token of an "Authorization: Bearer <token>" value; throws VerifyError no_token / malformed. */
export function tokenFromHeader(value: string | string[] | undefined | null): string

/** Claims of a verified access token: registered claims plus the app's, deep-frozen and shared. */
export interface Claims {
  readonly iss: string
  readonly sub: string
  readonly aud?: string | readonly string[]
  readonly exp: number
  readonly iat: number
  readonly nbf?: number
  readonly jti: string
  readonly sid: string
  readonly sgen?: number
  readonly status?: unknown
  readonly [claim: string]: unknown
}

export interface Logger {
  debug?(msg: string, attrs?: object): void
  info?(msg: string, attrs?: object): void
  warn?(msg: string, attrs?: object): void
  error?(msg: string, attrs?: object): void
}

/** A clock: the time in Unix milliseconds, and timers that fire as it passes them. */
export interface Clock {
  now(): number
  setTimeout(f: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** Options mirror Go's verifier.Config; durations in milliseconds. */
export interface VerifierOptions {
  /** Base URLs of the authority nodes; discovery, keys, feed and introspection fail over between them. */
  authorities: string[]
  /** An API key with the feed role (TEGATA_FEED_KEY). */
  feedKey: string
  /** How the verifier appears in `tegata verifiers` (at most 200 bytes). */
  name?: string
  /** Expected iss; default: the published issuer. */
  issuer?: string
  /** Expected aud; default: the published audience. */
  audience?: string
  /** 'EdDSA', 'ES256' or both (default both: whatever the authority's published keys name). */
  algorithms?: Array<'EdDSA' | 'ES256'>
  /** Clock skew allowed on exp/nbf/iat. 0: the authority's published leeway; negative: none. */
  leewayMs?: number
  /** Longest exp - iat accepted. 0: the authority's published value. */
  maxLifetimeMs?: number
  /** Staleness bound: past it without a lease, verify fails closed (default 10 s). */
  staleAfterMs?: number
  /** Ask the authority (RFC 7662) while stale instead of failing with 'stale'. */
  introspect?: boolean
  /** Cap of the revocation set (default 2,000,000). */
  maxEntries?: number
  /** Verified tokens remembered (default 10,000; negative: no cache). */
  cacheSize?: number
  /** Key set refetch period (default 5 min). */
  jwksRefreshMs?: number
  /**
   * The verifier's one clock (default the wall clock: Date.now and the global timers): its decisions
   * (token times, staleness, leases) and its timers (lease renewals, pruning, key refresh) follow it.
   * Waits on an authority (timeouts, retries, a silent stream) stay on the wall clock.
   */
  clock?: Clock
  logger?: Logger
  /** Bounds the start-up only. */
  signal?: AbortSignal
}

export interface VerifierState {
  ready: boolean
  stale: boolean
  /** Why the verifier is not ready; '' when it is. */
  reason: string
  position: number
  head: number
  lastHeard: number
  lagMs: number | null
  entries: number
  overflow: boolean
  source: string
  connected: boolean
  keys: number
  err: string
  id: string
  epoch: string
  freshUntil: number
}

export interface Verifier {
  /** Resolves once caught up with the feed and holding a lease: verify answers from local state alone. */
  ready(opts?: { signal?: AbortSignal }): Promise<void>
  /** The claims, or a rejection with a VerifyError. */
  verify(token: string): Promise<Claims>
  /** Resolves once every revocation up to log position seq is applied here. */
  waitApplied(seq: number, opts?: { signal?: AbortSignal }): Promise<void>
  state(): VerifierState
  close(): Promise<void>
}

export function createVerifier(options: VerifierOptions): Promise<Verifier>
export const defaults: Readonly<{ leewayMs: number, maxLifetimeMs: number, staleAfterMs: number, maxEntries: number, cacheSize: number, jwksRefreshMs: number }>
