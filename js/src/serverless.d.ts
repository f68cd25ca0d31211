import type { VerifyError } from './index.js'
export { VerifyError }
export interface StatelessOptions {
  /** The authority's base URL. */
  authority: string
  issuer?: string
  audience?: string
  /** 'statuslist' (default): revocation waits up to the list's ttl; 'introspect': a request per token, at once. */
  revocation?: 'statuslist' | 'introspect'
  /** Needed for 'introspect'. */
  feedKey?: string
  algorithms?: Array<'EdDSA' | 'ES256'>
}
export function createStatelessVerifier(options: StatelessOptions): { verify(token: string): Promise<Record<string, unknown>> }
