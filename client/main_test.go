package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
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
	r, err := startAuthority(dir)
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

// startAuthority starts an authority on the embedded store in dir.
func startAuthority(dir string) (*server.Running, error) {
	return server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: dir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// ownAuthority starts an authority for one test, for what changes the
// authority's state for good (a pending key rotation), so that the test
// holds however often it runs.
func ownAuthority(t *testing.T) (url string, admin *client.Client) {
	t.Helper()
	r, err := startAuthority(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	return r.URL, &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
}
