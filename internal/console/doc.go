// Package console is the operator console that `tegata serve` serves at
// /console/: find a user, end their sessions and watch the revocation
// reach every verifier, read the audit trail and alerts, manage keys.
//
// Pages are rendered on the server with html/template (every value
// escaped for its context); the few live parts (a confirmation filling in,
// the verifiers table) are one embedded script that polls JSON endpoints.
// Every asset is embedded; the Content-Security-Policy allows only this
// origin's script and style, never inline, and no framing.
//
// An operator signs in with an admin API key. The console then holds a
// tegata session of its own (subject "tegata-console:<key id>") in
// __Host- cookies: its access token is verified locally by the authority's
// verifier, so signing the session out or revoking the key ends it at
// once; it is refreshed at most once a minute while in use, and ends after
// Config.IdleTimeout without a request. Every change is a POST checked by
// net/http.CrossOriginProtection and a double-submit token, destructive
// ones after a confirmation page, and each is audited under the API key's
// name, as the API audits it.
//
// A Console is safe for concurrent use.
package console
