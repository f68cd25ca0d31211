import type { Verifier } from './index.js'
export interface TegataOptions { verifier: Verifier, cookie?: string, optional?: boolean }
/** Hono middleware: c.get('auth') holds the verified claims. */
export function tegata(options: TegataOptions): (c: any, next: () => Promise<void>) => Promise<Response | void>
