package gate_test

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
)

// A minimal RFC 6455 implementation for the tests: enough to open a
// WebSocket, send a text frame and read frames, both ends. Go's standard
// library has no WebSocket, and the module takes no dependency for tests.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsWrite writes one final frame; a client masks it (RFC 6455 §5.3).
func wsWrite(w io.Writer, op byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | op, 0}
	if mask {
		hdr[1] = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr[1] |= byte(n)
	default:
		hdr[1] |= 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	}
	body := append([]byte(nil), payload...)
	if mask {
		var k [4]byte
		_, _ = rand.Read(k[:])
		hdr = append(hdr, k[:]...)
		for i := range body {
			body[i] ^= k[i%4]
		}
	}
	_, err := w.Write(append(hdr, body...))
	return err
}

// wsRead reads one frame (no fragmentation, payloads under 64 KiB).
func wsRead(r io.Reader) (op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(hdr[1] & 0x7f)
	if n == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint16(ext[:]))
	}
	var key [4]byte
	masked := hdr[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return hdr[0] & 0x0f, payload, nil
}

// wsApp is an upstream WebSocket server that refuses a handshake whose
// Origin does not match the host the browser asked for, read from
// X-Forwarded-Host as docs/web.md tells apps behind the gate to, and then
// echoes each text frame prefixed with the subject the gate sent. It
// accepts the other origins listed in also, as its own allow-list.
func wsApp(t *testing.T, also ...string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			_, _ = io.WriteString(w, "a page")
			return
		}
		origin := r.Header.Get("Origin")
		if o, err := url.Parse(origin); origin != "" && !slices.Contains(also, origin) && (err != nil || o.Host != r.Header.Get("X-Forwarded-Host")) {
			http.Error(w, "origin does not match the host", http.StatusForbidden)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			wsAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
		_ = brw.Flush()
		who := r.Header.Get(gate.HeaderSubject)
		for {
			op, p, err := wsRead(brw)
			if err != nil || op == 0x8 {
				return
			}
			if err := wsWrite(conn, 0x1, append([]byte(who+": "), p...), false); err != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// wsConn is an open client WebSocket.
type wsConn struct {
	net.Conn
	br *bufio.Reader
}

// wsDial opens a WebSocket to base+path with the given headers (Origin,
// Cookie, Authorization), returning the connection after a 101, or the
// status of a refusal.
func wsDial(t *testing.T, base, path string, hdr http.Header) (*wsConn, int) {
	t.Helper()
	u := parseURL(t, base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(res.Body)
		conn.Close()
		if res.StatusCode == http.StatusForbidden && !strings.Contains(string(body), "cross-origin WebSocket handshake refused") {
			t.Errorf("handshake refused by the app (%q), want the gate to refuse it first", body)
		}
		return nil, res.StatusCode
	}
	if got, want := res.Header.Get("Sec-WebSocket-Accept"), wsAccept(req.Header.Get("Sec-WebSocket-Key")); got != want {
		t.Fatalf("Sec-WebSocket-Accept = %q, want %q", got, want)
	}
	t.Cleanup(func() { conn.Close() })
	return &wsConn{conn, br}, res.StatusCode
}

// echo sends msg and returns the app's answer.
func (c *wsConn) echo(t *testing.T, msg string) string {
	t.Helper()
	if err := wsWrite(c, 0x1, []byte(msg), true); err != nil {
		t.Fatalf("send %q: %v", msg, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, p, err := wsRead(c.br)
	if err != nil {
		t.Fatalf("read the echo of %q: %v", msg, err)
	}
	return string(p)
}

// waitClosed asserts the gate ends the WebSocket: a send is no longer
// echoed and the read ends with the connection closed. The deadline is a
// bound for a hung test, not the behaviour measured: the close comes from
// the verifier applying the revocation.
func (c *wsConn) waitClosed(t *testing.T, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if _, _, err := wsRead(c.br); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("WebSocket still open 20 s after %s, want it closed", what)
			}
			return
		}
	}
}

// startWebSocketWeb is a web environment whose gate (the second result)
// is in front of wsApp.
func startWebSocketWeb(t *testing.T) (*webEnv, *httptest.Server) {
	e := startWeb(t, nil)
	h, err := gate.New(e.v, gate.Config{Upstream: parseURL(t, wsApp(t).URL), Web: e.web})
	if err != nil {
		t.Fatal(err)
	}
	wg := httptest.NewServer(h)
	t.Cleanup(wg.Close)
	return e, wg
}

// TestWebSocketCrossOriginHandshakeRefused: a handshake from a page of
// another origin (a sibling port, another host of the same site) is
// refused before it reaches the app, in plain proxy mode (cookie token)
// and with web sessions; the app's own origin, a listed one and a client
// without Origin get through, and the app's Origin-vs-X-Forwarded-Host
// check passes for the gate's own host.
func TestWebSocketCrossOriginHandshakeRefused(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	app := wsApp(t, "https://chat.example.com")
	g := startGate(t, v, gate.Config{Upstream: parseURL(t, app.URL), WebSocketOrigins: []string{"https://chat.example.com"}})
	tok := a.signIn(t, "carol", nil)
	own := "http://" + parseURL(t, g.URL).Host
	cookie := http.Header{"Cookie": {gate.DefaultCookie + "=" + tok.AccessToken}}
	with := func(h http.Header, origin string) http.Header {
		h = h.Clone()
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}
	host, port, _ := net.SplitHostPort(parseURL(t, g.URL).Host)
	tests := []struct {
		name   string
		origin string
		want   int
	}{
		{"own origin", own, http.StatusSwitchingProtocols},
		{"listed origin", "https://chat.example.com", http.StatusSwitchingProtocols},
		{"no origin (not a browser)", "", http.StatusSwitchingProtocols},
		{"sibling port", "http://" + net.JoinHostPort(host, "1"+port), http.StatusForbidden},
		{"sibling host", "http://evil.example.com:" + port, http.StatusForbidden},
		{"null origin", "null", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, status := wsDial(t, g.URL, "/chat", with(cookie, tt.origin))
			if status != tt.want {
				t.Fatalf("handshake with Origin %q = %d, want %d", tt.origin, status, tt.want)
			}
			if c != nil {
				if got := c.echo(t, "hi"); got != "carol: hi" {
					t.Errorf("echo = %q, want %q", got, "carol: hi")
				}
			}
		})
	}

	t.Run("web sessions", func(t *testing.T) {
		e, wg := startWebSocketWeb(t)
		b := e.browser(t)
		b.login("dana", nil)
		jar := http.Header{"Cookie": {gate.CookieAccess + "=" + b.cookie(gate.CookieAccess) + "; " + gate.CookieRefresh + "=" + b.cookie(gate.CookieRefresh)}}
		_, wport, _ := net.SplitHostPort(parseURL(t, wg.URL).Host)
		if _, status := wsDial(t, wg.URL, "/chat", with(jar, "http://evil.example.com:"+wport)); status != http.StatusForbidden {
			t.Errorf("web: cross-origin handshake = %d, want 403", status)
		}
		c, status := wsDial(t, wg.URL, "/chat", with(jar, "http://"+parseURL(t, wg.URL).Host))
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("web: same-origin handshake = %d, want 101", status)
		}
		if got := c.echo(t, "hi"); got != "dana: hi" {
			t.Errorf("web: echo = %q, want %q", got, "dana: hi")
		}
	})
}

// TestWebSocketClosedWhenSessionRevoked: an open WebSocket ends when its
// session is revoked, or its subject signed out everywhere, in plain
// proxy mode and with web sessions, while another user's stays open.
func TestWebSocketClosedWhenSessionRevoked(t *testing.T) {
	t.Run("proxy: session revoked", func(t *testing.T) {
		a := startAuthority(t)
		v := newVerifier(t, a.URL, a.APIKey, nil, nil)
		waitReady(t, v)
		g := startGate(t, v, gate.Config{Upstream: parseURL(t, wsApp(t).URL)})
		victim, bystander := a.signIn(t, "carol", nil), a.signIn(t, "zoe", nil)
		c, _ := wsDial(t, g.URL, "/chat", bearer(victim.AccessToken))
		other, _ := wsDial(t, g.URL, "/chat", bearer(bystander.AccessToken))
		if c == nil || other == nil || c.echo(t, "hi") != "carol: hi" {
			t.Fatal("WebSockets did not open")
		}
		a.revoke(t, victim.SessionID)
		c.waitClosed(t, "the session was revoked")
		if got := other.echo(t, "still here"); got != "zoe: still here" {
			t.Errorf("bystander's echo = %q, want it open", got)
		}
	})

	t.Run("web: signed out everywhere", func(t *testing.T) {
		e, wg := startWebSocketWeb(t)
		b := e.browser(t)
		b.login("dana", nil)
		jar := http.Header{"Cookie": {gate.CookieAccess + "=" + b.cookie(gate.CookieAccess)}}
		c, status := wsDial(t, wg.URL, "/chat", jar)
		if status != http.StatusSwitchingProtocols || c.echo(t, "hi") != "dana: hi" {
			t.Fatalf("handshake = %d, want an open WebSocket", status)
		}
		if _, err := e.a.admin.RevokeSubject(testContext(t), client.SubjectRevocation{Subject: "dana", Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		c.waitClosed(t, "the subject was signed out everywhere")
	})
}

// TestWebSocketClosedWhenTokenExpires: a WebSocket whose access token
// expires without the session refreshing at this gate is closed; one whose
// session refreshed here (a page that keeps making requests) stays open
// on the new token.
func TestWebSocketClosedWhenTokenExpires(t *testing.T) {
	e, wg := startWebSocketWeb(t)
	idle, busy := e.browser(t), e.browser(t)
	idle.login("ivan", nil)
	busy.login("bea", nil)
	open := func(b *browser) *wsConn {
		c, status := wsDial(t, wg.URL, "/chat", http.Header{"Cookie": {gate.CookieAccess + "=" + b.cookie(gate.CookieAccess)}})
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("handshake = %d, want 101", status)
		}
		return c
	}
	ci, cb := open(idle), open(busy)
	e.advance(t, accessTTL-gate.RefreshBefore+time.Second)
	busy.e = &webEnv{gate: wg}
	if got := busy.send("GET", "/page", false, nil); got.status != http.StatusOK {
		t.Fatalf("busy page's request = %d, want 200 (refreshed)", got.status)
	}
	e.advance(t, gate.RefreshBefore+time.Second)
	ci.waitClosed(t, "its token expired")
	if got := cb.echo(t, "hi"); got != "bea: hi" {
		t.Errorf("refreshed session's WebSocket echo = %q, want it open", got)
	}
}
