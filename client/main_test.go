package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/server"
)

// authorityURL and adminKey are those of a real authority (embedded
// SQLite in a temporary directory) that the tests and examples of this
// package talk to, as an app backend would.
var authorityURL, adminKey string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tegata-client-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: dir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	authorityURL, adminKey = r.URL, r.APIKey
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = r.Shutdown(ctx)
	cancel()
	os.RemoveAll(dir)
	os.Exit(code)
}
