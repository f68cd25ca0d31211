// Package ssf is tegata's Shared Signals (OpenID SSF 1.0) transmitter: it
// publishes the revocation log as CAEP events in Security Event Tokens
// (RFC 8417), pushed to receivers (RFC 8935) or polled by them (RFC 8936),
// and implements the stream management API.
//
// Events are never stored: a stream keeps a position (cursor) in the
// revocation log, and its events are the entries after it, in log order,
// derived anew when sent. Delivery state lives in the store, so a push
// stream is delivered by whichever node holds its lease, and a restart
// loses nothing: the entry being sent when a node stopped is sent again.
//
// Concurrency: a Transmitter is safe for concurrent use.
package ssf
