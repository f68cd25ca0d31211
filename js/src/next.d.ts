import type { Verifier, VerifierOptions, Claims } from './index.js'
import type { Login } from './headers.js'
export interface Identity { subject: string, session?: string, claims: Record<string, unknown> | Claims }
export function configure(options?: { mode?: 'gate' | 'verify', cookie?: string }): void
/** Starts the process's one Verifier (on globalThis) and turns on mode 'verify'. */
export function startVerifier(options: VerifierOptions): Promise<Verifier>
/** The signed-in user, or null. */
export function auth(source?: Request | Headers): Promise<Identity | null>
export function signIn<R>(response: R, login: Login): R
export function signOut<R>(response: R, scope?: 'session' | 'everywhere'): R
