package bench_test

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for testPostgres
)

// The per-request alternatives to tegata's in-memory revocation set: one
// lookup over loopback per verified request, in Redis or in Postgres, of a
// key shaped like a session revocation. Half the probes hit, half miss, as
// in BenchmarkRevocationLookup.

// lookupRows is the size of the Postgres table and of the Redis key set.
const lookupRows = 1_000_000

// sidOf is the session id of row i: 32 hex characters, like md5(i) in SQL.
func sidOf(i int) string {
	sum := md5.Sum([]byte(strconv.Itoa(i)))
	return hex.EncodeToString(sum[:])
}

// probes returns n session ids, even ones present, odd ones absent.
func probes(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		k := r.IntN(lookupRows)
		if i%2 == 1 {
			k += lookupRows
		}
		out[i] = sidOf(k)
	}
	return out
}

func BenchmarkRedisLookup(b *testing.B) {
	addr := os.Getenv("TEGATA_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		unreachable(b, "Redis at "+addr+" (set TEGATA_TEST_REDIS)", err)
	}
	defer conn.Close()
	rc := &resp{conn: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn)}
	ps := probes(1 << 12)
	prefix := "tegata:bench:" + randomHex(4) + ":revoked:"
	// Only the keys the probes can hit are stored; the other rows of the
	// million could not change a GET's cost (a hash table lookup).
	for i, sid := range ps {
		if i%2 == 0 {
			if _, err := rc.do("SET", prefix+sid, "1900000000", "EX", "600"); err != nil {
				b.Fatalf("SET = %v", err)
			}
		}
	}
	hits := 0
	for i := 0; b.Loop(); i++ {
		v, err := rc.do("GET", prefix+ps[i&(len(ps)-1)])
		if err != nil {
			b.Fatalf("GET = %v", err)
		}
		if v != nil {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no GET found its key")
	}
	b.StopTimer()
	for i, sid := range ps {
		if i%2 == 0 {
			_, _ = rc.do("DEL", prefix+sid)
		}
	}
}

func BenchmarkPostgresLookup(b *testing.B) {
	dsn := lookupTable(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	ps := probes(1 << 12)
	const q = `SELECT expires_at FROM revoked WHERE sid = $1`
	hits := 0
	for i := 0; b.Loop(); i++ {
		var exp int64
		err := conn.QueryRow(ctx, q, ps[i&(len(ps)-1)]).Scan(&exp)
		switch {
		case err == nil:
			hits++
		case !errors.Is(err, pgx.ErrNoRows):
			b.Fatalf("SELECT = %v", err)
		}
	}
	if hits == 0 {
		b.Fatal("no SELECT found its row")
	}
}

// The lookup table is built once per test binary (about 5 s) and dropped by
// TestMain, so that -count 5 does not build it five times.
var (
	lookupOnce   sync.Once
	lookupDSN    string
	lookupSchema string
	lookupBase   string
	lookupErr    error
)

// lookupTable returns a DSN whose search_path holds revoked(sid text
// primary key, expires_at bigint) with lookupRows rows.
func lookupTable(b *testing.B) string {
	b.Helper()
	base := testPostgres(b)
	lookupOnce.Do(func() {
		lookupBase, lookupSchema = base, "tegata_bench_lookup_"+randomHex(6)
		lookupDSN, lookupErr = buildLookupTable(base, lookupSchema)
	})
	if lookupErr != nil {
		b.Fatalf("building the lookup table: %v", lookupErr)
	}
	return lookupDSN
}

func buildLookupTable(base, schema string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	// The index is built after the rows are in: twice as fast as inserting
	// into an indexed table, and the same index in the end.
	for _, q := range []string{
		"CREATE SCHEMA " + schema,
		"CREATE TABLE " + schema + ".revoked (sid text NOT NULL, expires_at bigint NOT NULL)",
		fmt.Sprintf("INSERT INTO %s.revoked SELECT md5(i::text), 1900000000 FROM generate_series(0, %d) i", schema, lookupRows-1),
		"ALTER TABLE " + schema + ".revoked ADD PRIMARY KEY (sid)",
		"ANALYZE " + schema + ".revoked",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	v := u.Query()
	v.Set("search_path", schema)
	u.RawQuery = v.Encode()
	return u.String(), nil
}

func dropLookupSchema() {
	if lookupSchema == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, lookupBase)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP SCHEMA "+lookupSchema+" CASCADE")
}

func randomHex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32()) // seeded randomly: names need only be unique
	}
	return hex.EncodeToString(b)
}

// resp is a minimal Redis client (RESP2 over one connection), enough for
// SET, GET and DEL without adding a dependency.
type resp struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

// do sends a command and returns its reply: a bulk string's bytes, nil for
// a nil bulk string, or the text of a simple string or integer.
func (c *resp) do(args ...string) ([]byte, error) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n%s\r\n", len(a), a)
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, fmt.Errorf("redis: short reply %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', ':':
		return append([]byte(nil), body...), nil
	case '-':
		return nil, fmt.Errorf("redis: %s", body)
	case '$':
		n, err := strconv.Atoi(string(body))
		if err != nil || n < 0 {
			return nil, err // $-1: nil bulk string
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}
