package feed_test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// docExamples returns the fenced blocks of docs/feed-protocol.md that
// follow an "<!-- example: name -->" comment, by name.
func docExamples(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../docs/feed-protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- example: ([a-z-]+) -->\n```\n(.*?)```")
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestProtocolDocExamples holds a real hub's stream and report answers
// against the examples of docs/feed-protocol.md, byte for byte, so that
// the document other followers are written from cannot drift from the
// wire.
func TestProtocolDocExamples(t *testing.T) {
	t.Parallel()
	ex := docExamples(t)
	for _, name := range []string{"stream", "reports", "ask", "reports-after-ask", "nodes", "bulk"} {
		if ex[name] == "" {
			t.Fatalf("docs/feed-protocol.md has no example %q", name)
		}
	}
	us := func(n int64) time.Time { return time.UnixMicro(n).UTC() }
	log := newMemLog()
	for _, e := range []revocation.Entry{
		{Seq: 1, Kind: revocation.KindSession, Session: "AbCdEfGhIjKlMnOpQrStUv", CreatedAt: us(1798761600000000), ExpiresAt: us(1798765200000000)},
		{Seq: 2, Kind: revocation.KindSubject, Subject: "alice@example.com", Generation: 7, CreatedAt: us(1798761601000000), ExpiresAt: us(1798765201000000)},
		{Seq: 3, Kind: revocation.KindSession, Session: "s-2 with spaces", CreatedAt: us(1798761602000000), ExpiresAt: us(1798765202000000)},
	} {
		log.entries, log.head = append(log.entries, e), e.Seq
	}
	now := time.UnixMilli(1798761603000)
	hub := startHub(t, log, feed.HubConfig{Epoch: "AAAAAAAAAAAAAAAAAAAAAA", Issuer: "https://auth.example.com", Clock: testtime.NewClock(now), Heartbeat: time.Hour})
	srv := serve(t, positionMux(hub))

	resp, _ := open(t, srv.URL+feed.Path+"?after=0&v=2", map[string]string{
		"Last-Event-ID": "0", "Tegata-Verifier": "id=Qk7vYxZ2mN4pR8sT&name=edge-1&stale_after_ms=10000"})
	if got := resp.Header.Get("Tegata-Epoch"); got != "AAAAAAAAAAAAAAAAAAAAAA" {
		t.Fatalf("Tegata-Epoch = %q, want the example's", got)
	}
	body := bufio.NewReader(resp.Body)
	readExact(t, "stream", body, ex["stream"])

	status, w, answers := reportStream(t, srv.URL, "id=Qk7vYxZ2mN4pR8sT&name=edge-1&stale_after_ms=10000&epoch=AAAAAAAAAAAAAAAAAAAAAA",
		resp.Header.Get("Tegata-Report-Token"))
	if status != http.StatusOK {
		t.Fatalf("report stream = %d, want 200", status)
	}
	exchangeExample(t, "reports", ex["reports"], w, answers)

	log.mu.Lock()
	log.head = 4
	log.entries = append(log.entries, revocation.Entry{Seq: 4, Kind: revocation.KindSubject, Subject: "alice@example.com", Generation: 8,
		CreatedAt: us(1798761604000000), ExpiresAt: us(1798765204000000)})
	log.mu.Unlock()
	log.wake()
	waitFor(t, "the hub at 4", func() bool { return hub.Head() == 4 })
	hub.Ask(4)
	readExact(t, "ask", body, ex["ask"])
	exchangeExample(t, "reports-after-ask", ex["reports-after-ask"], w, answers)

	hub.SetNodes([]string{"https://b.auth.example.com", "https://a.auth.example.com"})
	readExact(t, "nodes", body, ex["nodes"])

	log.mu.Lock()
	for i, sub := range []struct {
		name string
		gen  int64
	}{{"carol", 1}, {"bob", 3}, {"dave with spaces", 1}} {
		log.entries = append(log.entries, revocation.Entry{Seq: int64(5 + i), Kind: revocation.KindSubject, Subject: sub.name, Generation: sub.gen,
			CreatedAt: us(1798761605000000), ExpiresAt: us(1798765205000000)})
	}
	log.head = 7
	log.mu.Unlock()
	log.wake()
	readExact(t, "bulk", body, ex["bulk"])
	want := []revocation.Entry{
		{Seq: 5, Kind: revocation.KindSubject, Subject: "carol", Generation: 1, CreatedAt: us(1798761605000000), ExpiresAt: us(1798765205000000)},
		{Seq: 6, Kind: revocation.KindSubject, Subject: "bob", Generation: 3, CreatedAt: us(1798761605000000), ExpiresAt: us(1798765205000000)},
		{Seq: 7, Kind: revocation.KindSubject, Subject: "dave with spaces", Generation: 1, CreatedAt: us(1798761605000000), ExpiresAt: us(1798765205000000)},
	}
	data := strings.ReplaceAll(strings.TrimSuffix(strings.SplitN(ex["bulk"], "event: revocations\n", 2)[1], "\n\n"), "data: ", "")
	got, err := feed.ParseLines([]byte(data))
	if err != nil || len(got) != len(want) {
		t.Fatalf("ParseLines(the bulk example) = %+v, %v, want %+v", got, err, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("the bulk example's entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// readExact reads len(want) bytes and compares them with want.
func readExact(t *testing.T, name string, r io.Reader, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("example %s: reading the stream: %v (got %q)", name, err, got)
	}
	if string(got) != want {
		t.Fatalf("example %s: the node sent\n%s\nthe document says\n%s", name, got, want)
	}
}

// exchangeExample plays a report example: "> " lines are written, each
// "< " line is the answer expected next.
func exchangeExample(t *testing.T, name, example string, w io.Writer, r *bufio.Reader) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSuffix(example, "\n"), "\n") {
		dir, text, _ := strings.Cut(line, " ")
		switch dir {
		case ">":
			if _, err := io.WriteString(w, text+"\n"); err != nil {
				t.Fatal(err)
			}
		case "<":
			got, err := r.ReadString('\n')
			if err != nil || got != text+"\n" {
				t.Fatalf("example %s: answer %q, %v, the document says %q", name, got, err, text)
			}
		default:
			t.Fatalf("example %s: line %q is neither > nor <", name, line)
		}
	}
}
