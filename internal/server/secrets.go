package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/secret"
)

// envSecrets are the secrets given in the environment, checked before
// Start touches the disk. Empty (nil) means: from the data directory.
type envSecrets struct {
	master      []byte // TEGATA_MASTER_KEY, decoded
	otherMaster []byte // TEGATA_MASTER_KEY_OTHER, decoded
	admin, feed string // TEGATA_API_KEY, TEGATA_FEED_KEY
}

// checkEnvSecrets cleans and checks the secrets of cfg the way every secret
// is read (internal/secret), naming the variable at fault.
func checkEnvSecrets(cfg Config) (envSecrets, error) {
	var e envSecrets
	clean := func(name, v string) (string, error) {
		s, err := secret.Clean(v)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return s, nil
	}
	m, err := clean("TEGATA_MASTER_KEY", cfg.MasterKey)
	if err != nil {
		return e, err
	}
	if m != "" {
		if e.master, err = decodeKey(m); err != nil {
			return e, fmt.Errorf("TEGATA_MASTER_KEY: %w", err)
		}
	}
	if e.otherMaster, err = otherMasterKey(cfg.MasterKeyOther); err != nil {
		return e, err
	}
	for _, k := range []struct {
		name  string
		value string
		dst   *string
	}{{"TEGATA_API_KEY", cfg.APIKey, &e.admin}, {"TEGATA_FEED_KEY", cfg.FeedKey, &e.feed}} {
		v, err := clean(k.name, k.value)
		if err == nil && v != "" {
			err = strongEnough(k.name, v)
		}
		if err != nil {
			return e, err
		}
		*k.dst = v
	}
	return e, nil
}

// otherMasterKey decodes TEGATA_MASTER_KEY_OTHER; nil when unset.
func otherMasterKey(v string) ([]byte, error) {
	s, err := secret.Clean(v)
	if err != nil || s == "" {
		if err != nil {
			err = fmt.Errorf("TEGATA_MASTER_KEY_OTHER: %w", err)
		}
		return nil, err
	}
	k, err := decodeKey(s)
	if err != nil {
		return nil, fmt.Errorf("TEGATA_MASTER_KEY_OTHER: %w", err)
	}
	return k, nil
}

// masterKey returns the master key from the environment, else from
// <data>/master.key, creating that file (mode 0600) on first start.
func masterKey(e envSecrets, d *dataDir, log *slog.Logger) ([]byte, error) {
	if e.master != nil {
		log.Info("master key from TEGATA_MASTER_KEY")
		return e.master, nil
	}
	text, created, err := d.secret("master.key", func() string {
		b := make([]byte, authority.MasterKeySize)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	})
	if err != nil {
		return nil, err
	}
	k, err := decodeKey(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.file("master.key"), err)
	}
	log.Info("master key file", "path", d.file("master.key"), "created", created,
		"note", "back this file up; without it the signing keys cannot be opened")
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if k, err := dec(s); err == nil && len(k) == authority.MasterKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("master key must be %d bytes, base64 or hex encoded (e.g. `openssl rand -base64 32`)", authority.MasterKeySize)
}

// apiKey returns the bootstrap admin API key from the environment, else
// from <data>/api-key, creating that file (mode 0600) on first start.
func apiKey(e envSecrets, d *dataDir, log *slog.Logger) (string, error) {
	if e.admin != "" {
		log.Info("admin API key from TEGATA_API_KEY")
		return e.admin, nil
	}
	k, created, err := d.secret("api-key", authority.NewAPIKey)
	if err != nil {
		return "", err
	}
	log.Info("admin API key file", "path", d.file("api-key"), "created", created)
	return k, nil
}

// installKey installs a configured API key; when its secret was revoked,
// or differs from the cluster's, it says which setting to change.
func installKey(ctx context.Context, a *authority.Authority, name, secret, role string, replace bool) error {
	err := a.EnsureAPIKey(ctx, name, secret, role, replace)
	where := map[string]string{
		"bootstrap": "TEGATA_API_KEY (or, when that is unset, in the data directory's api-key file)",
		"feed":      "TEGATA_FEED_KEY",
	}[name]
	switch {
	case errors.Is(err, authority.ErrAPIKeyRevoked):
		return fmt.Errorf("%w; set a new one in %s", err, where)
	case errors.Is(err, authority.ErrAPIKeyDiffers):
		return fmt.Errorf("%w. Give this node the cluster's key in %s. To rotate the key without downtime: "+
			"'tegata apikeys create' a new one, give it to every node and client, then 'tegata apikeys revoke' the old one. "+
			"After a leak, start one node with --replace-keys: it installs this secret and revokes the old key at once", err, where)
	}
	return err
}

// readOrCreateSecret reads a secret file, refusing one others can read, or
// creates it with gen's value. Creation is atomic: the value is written to
// a temporary file that is then linked into place, which fails if another
// process (a node starting alongside on the same directory) got there
// first; its value is read instead.
func readOrCreateSecret(path string, gen func() string) (string, bool, error) {
	for range 2 {
		s, err := readSecret(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return s, false, err
		}
		v := gen()
		err = createSecret(path, v)
		if err == nil {
			return v, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", false, err
		}
	}
	return "", false, fmt.Errorf("%s: created and removed by someone else while starting", path)
}

// readSecret reads a secret file that only its owner may read.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if err := private(path, st); err != nil {
		return "", err
	}
	s, err := secret.Clean(string(b))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// createSecret writes value to path (mode 0600) unless path exists
// (fs.ErrExist), never leaving a partly written file at path.
func createSecret(path, value string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(value + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// MinAPIKeyLen is the shortest API key an operator may supply. Keys are
// stored as a fast hash, which is only safe for high-entropy secrets.
const MinAPIKeyLen = 32

// strongEnough refuses operator-supplied API keys too short to be random
// secrets (`openssl rand -base64 32` gives 44 characters).
func strongEnough(name, v string) error {
	if len(v) < MinAPIKeyLen {
		return fmt.Errorf("%s is shorter than %d characters; use a random secret, e.g. `openssl rand -base64 32`", name, MinAPIKeyLen)
	}
	return nil
}
