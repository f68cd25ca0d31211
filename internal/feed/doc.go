// Package feed carries the revocation log from an authority to verifiers
// over Server-Sent Events, both ends: Hub serves the feed, Client follows it.
//
// # Wire format
//
// A client asks for the entries after the last position it has:
//
//	GET <base>/v1/feed?after=N
//	Last-Event-ID: N                (takes precedence over after)
//	Authorization: Bearer <key>     (checked by whoever wraps the Hub)
//
// A malformed position is answered 400 with
// {"error":"invalid_request","error_description":"..."}. Otherwise the
// response is a text/event-stream made of three kinds of event:
//
//	id: <seq>
//	event: revoke
//	data: <revocation.Entry as JSON on one line>
//
//	id: <pos>
//	event: heartbeat
//	data: {"head":<pos>,"time":<unix milliseconds>}
//
//	event: reset
//	data: {"head":<head>}
//
// Revocations come in seq order. Entries that had already expired when they
// would be sent are skipped. A heartbeat is sent right after the client has
// caught up and then about every second; pos is the position the server has
// streamed up to: every live entry with seq <= pos has been sent on this
// connection, so the client may resume from pos even if the last entries
// were skipped. A reset comes first when N is beyond the head of the log
// (the client followed another or a restored log): the client must clear
// its set and continue from 0, as if it had asked for after=0.
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
// State and WaitSynced may be called from any goroutine.
package feed
