// Package gate puts a tegata verifier in front of HTTP services that do not
// verify tokens themselves. It works in one of two modes:
//
//   - forward-auth: a reverse proxy (nginx auth_request, Traefik
//     ForwardAuth, Envoy ext_authz) asks the gate about each request at
//     /auth; the gate answers 200 with the verified identity as X-Tegata-*
//     response headers, or 401;
//   - reverse proxy: the gate verifies each request itself and forwards it
//     to one upstream with the verified identity as X-Tegata-* request
//     headers, after removing any X-Tegata-* header the client sent.
//
// A refused request gets 401 with an RFC 6750 challenge whose
// error_description is verifier.Reason, never the cause, which is logged.
// /healthz and /readyz are always answered by the gate itself.
//
// The handler New returns is safe for concurrent use. It keeps no state of
// its own besides its configuration; the Verifier it wraps keeps the key set
// and revocation set current in the background and must outlive it.
package gate
