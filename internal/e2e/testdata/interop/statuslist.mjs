// Reads the status of a tegata access token the way a stock Relying Party
// would (draft-ietf-oauth-status-list §8.3), with code that is not
// tegata's: jose verifies the Status List Token against the issuer's JWKS,
// @sd-jwt/jwt-status-list decompresses the list and reads the index.
//
// usage: node statuslist.mjs <issuer-base-url> <access-token>
// prints {"status":N,"idx":I,"uri":U,"ttl":T,"bits":B}
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { getListFromStatusListJWT } from '@sd-jwt/jwt-status-list';

const [base, accessToken] = process.argv.slice(2);
if (!base || !accessToken) {
  console.error('usage: node statuslist.mjs <issuer-base-url> <access-token>');
  process.exit(2);
}

// 1. The referenced token's status claim (§6.2).
const ref = decodeJwt(accessToken).status?.status_list;
if (!ref || !Number.isInteger(ref.idx) || typeof ref.uri !== 'string') {
  throw new Error('access token has no status.status_list {idx, uri}');
}

// 2. Fetch the Status List Token (§8.1), asking for the JWT form.
const res = await fetch(ref.uri, { headers: { Accept: 'application/statuslist+jwt' } });
if (res.status !== 200) throw new Error(`GET ${ref.uri}: ${res.status} ${await res.text()}`);
const contentType = res.headers.get('content-type');
if (contentType !== 'application/statuslist+jwt') throw new Error(`content-type ${contentType}`);
const listJwt = await res.text();

// 3. Validate it (§8.3): signature by a key of the issuer's JWKS, typ,
// exp and iat, and sub equal to the uri of the referenced token.
const jwks = createRemoteJWKSet(new URL(base + '/.well-known/jwks.json'));
const { payload } = await jwtVerify(listJwt, jwks, {
  typ: 'statuslist+jwt',
  algorithms: ['EdDSA', 'ES256'],
  subject: ref.uri,
  requiredClaims: ['iat', 'exp', 'sub', 'status_list'],
});

// 4. Decompress and read the entry (§4, §8.3 steps 5-6).
const list = getListFromStatusListJWT(listJwt);
const status = list.getStatus(ref.idx);
console.log(JSON.stringify({ status, idx: ref.idx, uri: ref.uri, ttl: payload.ttl, bits: payload.status_list.bits }));
