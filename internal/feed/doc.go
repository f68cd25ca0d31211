// Package feed carries the revocation log from an authority to verifiers
// over Server-Sent Events, both ends: Hub serves the feed, Client follows it.
// Relay joins the two on one machine: a Client upstream, a Hub over a
// RelayLog downstream (relay.go).
//
// # Wire format
//
// docs/feed-protocol.md specifies the wire completely, for followers in
// any language; TestProtocolDocExamples holds its examples against a real
// hub. In short:
//
//	GET <base>/v1/feed?after=N&v=2            the stream (ServeHTTP)
//	Last-Event-ID: N                          (takes precedence over after)
//	Tegata-Verifier: id=...&stale_after_ms=...&epoch=...   (optional: names the follower)
//	Tegata-Report-Token: <token>              (the one this node gave it)
//
//	id: <seq of the last entry>
//	event: revocations
//	head: <seq>                               (optional: the log's head, when more follow)
//	data: <seq> <kind> <created_at µs> <expires_at µs> <sgen> <sid or sub>
//	data: +<sgen> <sid or sub>                the entry after the line before:
//	data: ...                                 seq+1, same kind and instants
//
//	id: <pos>
//	event: heartbeat
//	data: {"head":<pos>,"time":<unix ms>,"epoch":"<epoch>"}
//
//	event: reset
//	data: {"head":<head>}
//
//	event: ask
//	data: {"position":<S>}
//
//	POST <base>/v1/feed/reports               a named follower's reports (ServeReports)
//	> <n> <position> <ready 0|1>              one line per report, full duplex
//	< <n> <head> <lease_ms>                   one answer each, or "! <code> <text>"
//	> 0 <position> <ready 0|1>                a report that wants no answer
//
//	POST <base>/v1/feed/position              one report as JSON (ServePosition)
//
// Entries come in seq order, up to 2,048 lines and about 32 KiB per event;
// an entry that continues the line before it in its event (a bulk
// revocation's) goes as a continuation line, a third of the bytes. While
// the hub reads a bulk revocation from the log in batches, each batch's
// events say where the bulk ends (head), so that a Client can have its
// consumer make room for all of it at once (Client.Grow).
// Entries that had expired more than the server's grace (the authority's
// leeway) before they would be sent are skipped. A heartbeat comes right
// after the client has caught up, whenever its position moves without an
// entry, and then every tick (about a second), or on a named follower's
// stream every quarter of its staleness bound (one tick to 5s), and not
// at all while a follower that said hears=reports has a report stream
// open (it counts the answers to its lease renewals as hearing from the
// hub); pos is the position the server has streamed up to. A reset comes first when N is
// beyond the head of the log: the client clears its set and continues from
// 0. The response's Tegata-Epoch header and every heartbeat carry the
// log's epoch; a client that sees it change starts over from 0.
//
// # Costs
//
// A revocation costs the hub one encoding (segment.go) and each stream one
// write of the shared bytes; a heartbeat tick likewise, on the streams
// whose heartbeat is due. A stream over plain HTTP/1.1 takes its
// connection over from net/http once its headers are decided and makes
// that write a single writev of chunk header, shared bytes and CRLF
// (takeover.go); a goroutine parked in a read of the connection ends the
// stream as soon as its client closes it. Such a stream, once caught up,
// is not even woken for a revocation: the tailer's fan-out workers write
// the shared bytes to every stream waiting at the batch's start, without
// waiting for a socket (fanout.go), and wake a stream's goroutine only
// when something else is due, the socket did not take the write whole or
// the write failed. A follower reports its position only when asked (an
// ask event: a confirmation waits, see Hub.Ask; it is written with the
// entries it asks for, in the same write), when half of its lease has
// passed, and when its readiness changes; a report on the report stream
// costs the hub one line read and one written, and the answer to an ask
// from a follower whose lease needs no renewal (numbered 0) only the line
// read. Nothing costs the hub a request per revocation per follower.
//
// # Position reports and leases
//
// A follower that names itself is registered by the hub (only a stream
// makes a record, answered with a report token that later streams and
// reports in its name must carry). Records are capped per API key and per
// client address (HubConfig.FollowersPerKey), and the hub takes a
// staleness bound above its cap (HubConfig.StaleAfterCap) at the cap.
//
// The answer to a report is a lease: the client's state counts as current
// until the moment it sent the report plus lease_ms (at most its own
// staleness bound), but only once it has applied the head the answer
// names. Its freshness rests on leases, not on when heartbeats arrive: a
// client that was frozen finds old heartbeats in its socket buffer, which
// say nothing about revocations made since. The hub, for its part, knows
// that a follower it has not heard from for longer than its staleness
// bound holds no lease, and that every lease it grants from some moment on
// names a head at least as high as its own at that moment. From this it
// works out the highest position every one of its followers holds or
// refuses tokens without (Hub.Safe):
//
//   - the follower said it applied it;
//   - it is at most the hub's head when the follower first registered;
//   - the follower has been silent longer than its staleness bound;
//   - or the hub's head passed it longer ago than the staleness bound.
//
// A client that does not name itself gets the feed as well; nobody can
// tell when a revocation is in force on it.
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
// A Hub runs one tailer goroutine (Run), one goroutine per stream
// (ServeHTTP's, or one it starts for a stream that detaches from its
// handler, see ServeHTTP) and one more reading each connection a stream
// took over, one per report stream (ServeReports), one reading the
// Source's head for opening streams while any wait, and, per batch the
// tailer reads, up to GOMAXPROCS fan-out workers, which it waits for;
// neither the tailer nor a worker ever waits for a connection. Run
// returns once the streams that took their connection over have ended.
// A Client runs in one goroutine (Run) and calls Apply and Reset from it,
// never concurrently; State, WaitSynced, WaitPosition, WaitOpened and
// Reconnect may be called from any goroutine; a Client with a Follower
// runs a reporter goroutine per stream and two more for its report
// stream. The Client applies a revocations event's entries together
// (ApplyMany, or Apply one by one), records its position once per event,
// and then yields its thread if another goroutine is waiting for one, so
// that a burst holds a thread for one event at a time. Apply should do
// little (a revocation.Set insert takes no lock a reader waits on).
package feed
