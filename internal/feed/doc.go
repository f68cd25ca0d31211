// Package feed carries the revocation log from an authority to verifiers
// over Server-Sent Events, both ends: Hub serves the feed, Client follows it.
//
// # Wire format
//
// A client asks for the entries after the last position it has:
//
//	GET <base>/v1/feed?after=N&v=2
//	Last-Event-ID: N                (takes precedence over after)
//	Authorization: Bearer <key>     (checked by whoever wraps the Hub)
//	Tegata-Verifier: id=...&name=...&host=...&version=...&stale_after_ms=...&epoch=...
//	                                (optional: see Position reports)
//
// A malformed position is answered 400 with
// {"error":"invalid_request","error_description":"..."}. Otherwise the
// response is a text/event-stream made of these events:
//
//	id: <seq>
//	event: revoke
//	data: <revocation.Entry as JSON on one line>
//
//	id: <seq of the last entry>
//	event: revocations
//	data: <seq> <kind> <created_at> <expires_at> <sgen> <sid or sub>
//	data: ...
//
//	id: <pos>
//	event: heartbeat
//	data: {"head":<pos>,"time":<unix milliseconds>,"epoch":"<epoch>"}
//
//	event: reset
//	data: {"head":<head>}
//
// Entries come in seq order. Entries that had expired more than the
// server's grace (the authority's leeway, published as tegata_leeway)
// before they would be sent are skipped: a client whose clock is behind by
// no more than that still gets every entry it needs. A heartbeat is sent right after the client has
// caught up and then about every second; pos is the position the server has
// streamed up to: every live entry with seq <= pos has been sent on this
// connection, so the client may resume from pos even if the last entries
// were skipped. A reset comes first when N is beyond the head of the log
// (the client followed another or a restored log): the client must clear
// its set and continue from 0, as if it had asked for after=0.
//
// The response carries a Tegata-Epoch header, and heartbeats an epoch
// field: the epoch of the log (the cluster's, chosen when its database was
// first set up). A client that sees it differ from the epoch of the log it
// has followed so far must clear its set and start over from 0, as after a
// reset: its position means nothing in another log, and that log's head
// may well be past it, where no reset would come. Older servers send
// neither; older clients ignore both.
//
// # Versions
//
// The format has two versions. In version 1, the default, every entry is a
// revoke event of its own. A client that sends v=2 gets version 2: entries
// that are ready together share a revocations event, one data line each
// (up to 256 lines and about 2 KiB per event), fields separated by one
// space: seq; kind, "session" or "subject"; created_at and expires_at in
// Unix microseconds; sgen (0 for a session); and, to the end of the line,
// the session id or subject, which may hold spaces. The event's id is its
// last entry's seq. An entry that no line carries exactly (a key holding a
// line end, a kind a line cannot name) comes as a version 1 revoke event,
// in its place, so a version 2 client reads both kinds. Version 2 costs a
// client far less to decode (no JSON, no reflection, one event per many
// entries) and is what this package's Client asks for; an authority that
// predates it ignores v=2 and sends version 1, which the Client reads as
// well, and a client that predates it never asks.
//
// # Position reports
//
// A client that names itself (the Tegata-Verifier header: an id random per
// process, 1-64 characters of A-Z a-z 0-9 _ -; an optional name, host and
// version; its staleness bound in milliseconds; the epoch it follows, if
// it knows one) is registered by the hub, which can then tell when a
// revocation is in force on it. Such a client reports the position it has
// applied, after applying entries (at most one report per 5 ms) and after
// every heartbeat, on a connection of its own, kept alive:
//
//	POST <base>/v1/feed/position
//	Authorization: Bearer <key>
//	Content-Type: application/json
//
//	{"id":"...","name":"...","host":"...","version":"...","stale_after_ms":10000,
//	 "position":42,"ready":true,"epoch":"<epoch>","token":"<report token>"}
//
//	200 {"head":<hub head>,"lease_ms":<ms>,"epoch":"<epoch>","token":"<report token>"}
//
// Only a named stream makes the hub's record of a verifier, answered with
// a Tegata-Report-Token header: a random token of that record, which later
// streams (request header Tegata-Report-Token) and reports ("token") in
// that verifier's name must carry, so that one holder of a feed key cannot
// report positions in another verifier's name. Records are capped per API
// key and per client address (HubConfig.FollowersPerKey: a stream that
// would make one more is answered 429 too_many_verifiers), and the hub
// takes a staleness bound above its cap (HubConfig.StaleAfterCap) at the
// cap, so made-up verifiers can neither fill the registry nor hold waits
// up for long.
//
// A report is answered 400 when malformed; 409 with error "conflict" when
// it names another epoch, "verifier_id_taken" when it names a verifier the
// hub knows without its token (the client takes a new random id and
// reconnects: its own record was dropped after its bound, and someone took
// the id), "unknown_verifier" when the hub has no record of it (the client
// reconnects, which makes one); 503 when the node cannot vouch for anyone
// right now (its own record in the store has lapsed: see
// internal/inforce). A stream is answered 400 for a malformed
// Tegata-Verifier header (such as a bound out of range: 1ms to 24h), which
// the client takes as permanent (ErrInvalid), and 409 verifier_id_taken as
// a report is. Why a POST per
// report and not a field on the stream: the stream is server to client
// only, and a request and its answer are a round trip, which is what makes
// the answer a lease.
//
// The answer is a lease: the client's state counts as current until the
// moment it sent the report plus lease_ms (at most its own staleness
// bound), but only once it has applied the head the answer names. Its
// freshness rests on leases, not on when heartbeats arrive: a client that
// was frozen (SIGSTOP, a suspended VM) finds old heartbeats in its socket
// buffer, which say nothing about revocations made since. The hub, for its
// part, knows that a follower it has not heard from for longer than its
// staleness bound holds no lease, and that every lease it grants from some
// moment on names a head at least as high as its own at that moment. From
// this it works out the highest position every one of its followers holds
// or refuses tokens without (Hub.Safe):
//
//   - the follower said it applied it;
//   - it is at most the hub's head when the follower first registered;
//   - the follower has been silent longer than its staleness bound;
//   - or the hub's head passed it longer ago than the staleness bound.
//
// A client that does not name itself gets the feed as before; its
// freshness is the arrival of heartbeats, and nobody can tell when a
// revocation is in force on it.
//
// # Resuming
//
// A client resumes by reconnecting with Last-Event-ID set to its position;
// duplicates (seq <= position) are ignored. A connection whose writes block
// (the client stopped reading) is dropped by the server and resumes the same
// way; one that merely fell behind the hub's memory of recent entries is
// caught up from the log on the same stream.
//
// # Concurrency
//
// A Hub runs one tailer goroutine (Run) and one goroutine per connection
// (ServeHTTP); the tailer never waits for a connection. A Client runs in one
// goroutine (Run) and calls Apply and Reset from it, never concurrently;
// State, WaitSynced, WaitPosition, WaitOpened and Reconnect may be called
// from any goroutine; a
// Client with a Follower runs one more goroutine per stream, which sends
// the reports. The hub answers reports from any goroutine. The Client applies
// a revocations event's entries one by one, records its position once
// per event, and then yields its thread if another goroutine is waiting for
// one, so that a burst holds a thread for one event at a time (at most 256
// entries in about 2 KiB). Apply should do little (a revocation.Set insert
// takes no lock a reader waits on).
package feed
