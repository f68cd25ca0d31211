package server_test

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
)

// TestSettingsMustMatch: a node whose shared settings differ from the
// cluster's record refuses to start, naming each setting and both values;
// --update-settings changes the record, after which the old values are
// the ones refused. The access token lifetime may differ (leases cover it).
func TestSettingsMustMatch(t *testing.T) {
	t.Parallel()
	base := server.Config{Addr: "127.0.0.1:0", DB: migrated.Schema(t), Issuer: "https://auth.test", DataDir: filepath.Join(t.TempDir(), "d"),
		MasterKey: base64.StdEncoding.EncodeToString(make([]byte, 32)), APIKey: authority.NewAPIKey(), Logger: quietLog(),
		Authority: authority.Config{Audience: "app"}}
	first := mustStart(t, base)
	defer stop(t, first)

	otherMaster := make([]byte, 32)
	otherMaster[0] = 1
	tests := []struct {
		name   string
		change func(c *server.Config)
		want   []string // "" when the start succeeds
	}{
		{"audience", func(c *server.Config) { c.Authority.Audience = "other" }, []string{`--audience is "other" on this node but "app"`}},
		{"two settings", func(c *server.Config) { c.Authority.SessionTTL = time.Hour; c.Authority.Algorithm = "ES256" },
			[]string{`--alg is "ES256" on this node but "EdDSA"`, `--session-ttl is "1h0m0s" on this node but "2160h0m0s"`}},
		{"status lists off", func(c *server.Config) { c.Authority.StatusLists.Size = -1 }, []string{`--status-list is "false" on this node but "true"`}},
		{"master key", func(c *server.Config) { c.MasterKey = base64.StdEncoding.EncodeToString(otherMaster) }, []string{"the master key", "differs from the cluster's"}},
		{"access token lifetime", func(c *server.Config) { c.Authority.AccessTTL = 5 * time.Minute }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.change(&cfg)
			r, err := server.Start(ctx(t), cfg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Start(%s changed) = %v, want it started", tc.name, err)
				}
				stop(t, r)
				return
			}
			if err == nil {
				stop(t, r)
				t.Fatalf("Start(%s changed) = nil error, want a refusal", tc.name)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Start(%s changed) = %v, want it to say %q", tc.name, err, w)
				}
			}
		})
	}

	changed := base
	changed.Authority.Audience, changed.UpdateSettings = "app2", true
	stop(t, mustStart(t, changed))
	_, err := server.Start(ctx(t), base)
	if err == nil || !strings.Contains(err.Error(), `--audience is "app" on this node but "app2"`) {
		t.Fatalf("Start(old audience) after --update-settings = %v, want a refusal naming the new value", err)
	}
	changed.UpdateSettings = false
	stop(t, mustStart(t, changed))
}
