export const LOGIN: 'X-Tegata-Login'
export const LOGOUT: 'X-Tegata-Logout'
/** JSON.stringify with every character outside printable ASCII escaped as \uXXXX. */
export function asciiJSON(v: unknown): string
export interface Login { subject: string, device?: string, claims?: Record<string, unknown> }
/** The X-Tegata-Login value for a login: ASCII JSON, right for any Unicode. */
export function loginHeader(login: Login): string
/** Decodes X-Tegata-Subject / X-Tegata-Session. */
export function decodeString(v: string | null | undefined): string | undefined
/** Decodes an X-Tegata-Claim-* value. */
export function decodeClaim(v: string | null | undefined): unknown
export interface Identity { subject: string, session?: string, claims: Record<string, unknown> }
/** The gate's identity headers, decoded; null when there is no subject. */
export function identityFromHeaders(h: Headers | Record<string, string | string[] | undefined> | Iterable<[string, string]>): Identity | null
