// A DPoP client (RFC 9449) made of panva's "dpop" package, which tegata did
// not write: it signs in at the authority with a proof, calls an app through
// a tegata gate, then tries what a thief would. It prints what each request
// was answered, as JSON, for the Go test to judge.
//
// usage: node dpop.mjs <authority URL> <API key> <app URL through the gate> <alg>
import { generateKeyPair, generateProof } from 'dpop'

const [authority, apiKey, app, alg] = process.argv.slice(2)
const keypair = await generateKeyPair(alg)
const thief = await generateKeyPair(alg)

async function signIn () {
  const url = `${authority}/v1/sessions`
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${apiKey}`,
      'content-type': 'application/json',
      dpop: await generateProof(keypair, url, 'POST')
    },
    body: JSON.stringify({ subject: 'node-dpop', device: 'dpop@npm' })
  })
  return { status: res.status, body: await res.json() }
}

async function refresh (refreshToken, kp) {
  const url = `${authority}/v1/token/refresh`
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', dpop: await generateProof(kp, url, 'POST') },
    body: JSON.stringify({ refresh_token: refreshToken })
  })
  return { status: res.status, body: await res.json() }
}

async function call (headers) {
  const res = await fetch(app, { headers })
  return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '' }
}

const out = {}
const signedIn = await signIn()
out.signIn = { status: signedIn.status, tokenType: signedIn.body.token_type }
const at = signedIn.body.access_token
const proof = await generateProof(keypair, app, 'GET', undefined, at)
out.withProof = await call({ authorization: `DPoP ${at}`, dpop: proof })
out.replayed = await call({ authorization: `DPoP ${at}`, dpop: proof })
out.noProof = await call({ authorization: `DPoP ${at}` })
out.asBearer = await call({ authorization: `Bearer ${at}` })
out.otherURL = await call({ authorization: `DPoP ${at}`, dpop: await generateProof(keypair, `${app}/other`, 'GET', undefined, at) })
out.otherKey = await call({ authorization: `DPoP ${at}`, dpop: await generateProof(thief, app, 'GET', undefined, at) })

const refreshed = await refresh(signedIn.body.refresh_token, keypair)
out.refresh = { status: refreshed.status, tokenType: refreshed.body.token_type }
const at2 = refreshed.body.access_token
out.afterRefresh = await call({ authorization: `DPoP ${at2}`, dpop: await generateProof(keypair, app, 'GET', undefined, at2) })
// The refresh token in a thief's hands, with the thief's key: the session ends.
const stolen = await refresh(refreshed.body.refresh_token, thief)
out.thiefRefresh = { status: stolen.status, error: stolen.body.error }

console.log(JSON.stringify(out))
