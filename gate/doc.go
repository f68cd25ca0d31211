// Package gate puts a tegata verifier in front of HTTP services that do not
// verify tokens themselves, and keeps browser sessions for web apps. New
// returns a handler that works in one of three ways:
//
//   - forward-auth (no Config.Upstream): a reverse proxy (nginx
//     auth_request, Traefik ForwardAuth, Envoy ext_authz) asks the gate
//     about each request at /auth; the gate answers 200 with the verified
//     identity as X-Tegata-* response headers, or 401;
//   - reverse proxy (Config.Upstream): the gate verifies each request itself
//     and forwards it to one upstream with the verified identity as
//     X-Tegata-* request headers, after removing any X-Tegata-* header the
//     client sent;
//   - web sessions (Config.Upstream and Config.Web, see NewWeb): the
//     reverse proxy, and the browser's session edge too. The app signs a
//     browser in and out with one response header (X-Tegata-Login,
//     X-Tegata-Logout); the gate keeps the tokens in HttpOnly cookies,
//     refreshes them, refuses cross-origin unsafe requests, sends anonymous
//     page requests to the login page and serves the user's own sessions
//     under /.tegata/. Web.Handler is the same as middleware around a Go
//     app's own handler.
//
// A refused request gets 401 with an RFC 6750 challenge whose
// error_description is verifier.Reason, never the cause, which is logged.
// /healthz and /readyz are always answered by the gate itself.
//
// The handler New returns and a Web are safe for concurrent use. The
// Verifier they wrap keeps the key set and revocation set current in the
// background and must outlive them. Without Web the handler keeps no state
// of its own besides its configuration, its metrics and the upgraded
// connections (WebSockets) open through it, each tied to the token that
// opened it and closed when that token is revoked or expires (one
// goroutine watches them while any is open). A Web keeps, in
// memory, the refresh exchanges in flight (so that requests of one browser
// share one), the answers of completed ones until their access tokens
// expire (bounded; a browser that missed an answer and still holds its
// binding cookie gets it again rather than being taken for a thief) and a
// token bucket per client address that started a refresh (bounded,
// forgotten when idle); sessions themselves
// live at the authority and in the browser's cookies, so any number of
// gates may serve the same browsers.
package gate
