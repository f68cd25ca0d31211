package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/server"
)

// TestSlowBodiesAndIdleConnectionsCut: a request that declares a body to a
// route that never reads it (a refused admin route, /healthz) and then
// trickles bytes is cut, so such requests cannot exhaust file descriptors:
// every request body has a deadline (Config.BodyTimeout, a connection
// deadline on the wall clock, short here; the feed stream has no body and
// none), and one address may hold only so many connections.
func TestSlowBodiesAndIdleConnectionsCut(t *testing.T) {
	t.Parallel() // waits out one body deadline
	limits := httpapi.DefaultLimits()
	limits.ConnsPerAddress = 8
	const bodyTimeout = 300 * time.Millisecond
	e := start(t, func(c *server.Config) { c.Limits, c.BodyTimeout = &limits, bodyTimeout })
	addr := strings.TrimPrefix(e.URL, "http://")

	t.Run("slow bodies", func(t *testing.T) {
		var conns []net.Conn
		for _, target := range []string{"POST /v1/apikeys", "POST /healthz", "POST /v1/nothing", "POST /v1/token/refresh"} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", target)
			conns = append(conns, c)
		}
		// A feed stream started at the same time is not cut.
		feed := openFeed(t, e.URL, e.APIKey)
		limit := bodyTimeout + 5*time.Second
		for i, c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(limit))
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Errorf("connection %d with a stalled body: %v; want the server to close it within %s", i, err, limit)
			}
		}
		if feed.status != http.StatusOK || !feed.open() {
			t.Errorf("feed stream = %d, open %v; want it open after the body deadline", feed.status, feed.open())
		}
	})

	t.Run("connections per address", func(t *testing.T) {
		http.DefaultClient.CloseIdleConnections()
		// Streams and connections of the subtest before close as the
		// server notices: poll until exactly the cap is held.
		eventually(t, "a connection over the cap is closed at once", func() bool {
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for range limits.ConnsPerAddress + 1 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			return closedWithin(held[len(held)-1], time.Second) && !closedWithin(held[0], 100*time.Millisecond)
		})
		eventually(t, "the API answers again once the idle connections are gone", func() bool {
			_, err := e.admin.APIKeys(ctx(t))
			return err == nil
		})
	})
}

// closedWithin reports whether the server closed c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return err == nil
}
