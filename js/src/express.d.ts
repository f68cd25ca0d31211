import type { Verifier, Claims } from './index.js'
export interface TegataOptions { verifier: Verifier, cookie?: string, optional?: boolean }
/** Express middleware: req.auth holds the verified claims. */
export function tegata(options: TegataOptions): (req: any, res: any, next: (err?: unknown) => void) => Promise<void>
/** 403 unless req.auth[name] is value or an array holding it. */
export function requireClaim(name: string, value: string): (req: any, res: any, next: () => void) => void
declare global {
  namespace Express { interface Request { auth?: Claims } }
}
