package server_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/testproc"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/verifier"
)

// freeAddr returns a loopback address nobody listens on, which no listener
// on port 0 takes (testproc.FreeAddr), for a node that must know its URL
// before it starts (--advertise-url) or comes back at its address.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testproc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestVerifierFollowsNewNodes: a verifier given one seed node follows the
// nodes started after it that advertise a URL, drops a node as it stops
// cleanly, and keeps verifying, revocations included, once the seed is
// gone. The nodes and the verifier share a clock the test moves a flush
// period at a time while it waits: a node learns of the others when it
// writes its record.
func TestVerifierFollowsNewNodes(t *testing.T) {
	t.Parallel()
	clk := newClock()
	base := server.Config{DB: migrated.Schema(t), Issuer: "https://auth.test",
		MasterKey: base64.StdEncoding.EncodeToString(make([]byte, 32)), APIKey: authority.NewAPIKey(),
		FeedKey: authority.NewAPIKey(), Clock: clk, Logger: quietLog()}
	node := func(advertise bool) *server.Running {
		t.Helper()
		cfg := base
		cfg.DataDir = filepath.Join(t.TempDir(), "d")
		// The verifier may dial a node after it stopped: no listener on
		// port 0 takes its address meanwhile.
		cfg.Addr = freeAddr(t)
		if advertise {
			cfg.AdvertiseURL = "http://" + cfg.Addr
		}
		return mustStart(t, cfg)
	}
	seed := node(false)
	logs := &logBuffer{}
	vcfg := verifier.Config{Authorities: []string{seed.URL}, APIKey: base.FeedKey,
		Logger: slog.New(slog.NewJSONHandler(io.MultiWriter(logs), nil))}
	vcfg.Clock = clk
	v, err := verifier.New(ctx(t), vcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.WaitReady(ctx(t)); err != nil {
		t.Fatal(err)
	}

	b, c := node(true), node(true)
	defer stop(t, c)
	following := func(url string) bool { // as the verifier's last word on it says
		lines := strings.Split(logs.String(), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			var l struct {
				Msg   string
				Nodes []string
			}
			if json.Unmarshal([]byte(lines[i]), &l) == nil && strings.Contains(l.Msg, "following the cluster's advertised nodes") {
				return slices.Contains(l.Nodes, url)
			}
		}
		return false
	}
	flushing := func(what string, cond func() bool) {
		t.Helper()
		eventually(t, what, func() bool {
			clk.Add(time.Second) // inforce.Config.FlushEvery
			return cond()
		})
	}
	flushing("the verifier follows both nodes started after it", func() bool { return following(b.URL) && following(c.URL) })
	stop(t, b)
	flushing("the verifier drops the node that stopped", func() bool { return !following(b.URL) && following(c.URL) })

	stop(t, seed)
	admin := &client.Client{BaseURL: c.URL, APIKey: base.APIKey}
	tok, err := admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "with the seed stopped, the verifier accepts a token of the node it learned of", func() bool {
		_, err := v.Verify(ctx(t), tok.AccessToken)
		return err == nil
	})
	if _, err := admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	// The verifier's stream may still be one to the stopped seed that it
	// has to find silent (three quarters of its 10 s bound) before it
	// moves to c, and a loaded machine adds the backoff of its retries.
	testtime.EventuallyTrue(t, 30*time.Second, "the revocation made on that node reaches the verifier", func() bool {
		_, err := v.Verify(ctx(t), tok.AccessToken)
		return errors.Is(err, verifier.ErrRevoked)
	})
}
