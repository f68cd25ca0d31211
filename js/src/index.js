// @tegata/node: verify tegata access tokens locally and follow the
// authority's revocation feed.
export { createVerifier, Verifier, defaults } from './verifier.js'
export { VerifyError, codes, reason, statusOf } from './errors.js'
export { tokenFromHeader } from './bearer.js'
