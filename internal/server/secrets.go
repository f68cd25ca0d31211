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
)

// masterKey returns the master key from env (base64 or hex of 32 bytes) or
// from <data>/master.key, creating that file (mode 0600) on first start.
func masterKey(envValue, dataDir string, log *slog.Logger) ([]byte, error) {
	if envValue != "" {
		k, err := decodeKey(envValue)
		if err != nil {
			return nil, fmt.Errorf("TEGATA_MASTER_KEY: %w", err)
		}
		log.Info("master key from TEGATA_MASTER_KEY")
		return k, nil
	}
	path := filepath.Join(dataDir, "master.key")
	text, created, err := readOrCreateSecret(path, func() string {
		b := make([]byte, authority.MasterKeySize)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	})
	if err != nil {
		return nil, err
	}
	k, err := decodeKey(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	log.Info("master key file", "path", path, "created", created,
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

// apiKey returns the bootstrap admin API key from env or <data>/api-key,
// creating that file (mode 0600) on first start.
func apiKey(envValue, dataDir string, log *slog.Logger) (string, error) {
	if envValue != "" {
		if err := strongEnough("TEGATA_API_KEY", envValue); err != nil {
			return "", err
		}
		log.Info("admin API key from TEGATA_API_KEY")
		return strings.TrimSpace(envValue), nil
	}
	path := filepath.Join(dataDir, "api-key")
	k, created, err := readOrCreateSecret(path, authority.NewAPIKey)
	if err != nil {
		return "", err
	}
	log.Info("admin API key file", "path", path, "created", created)
	return k, nil
}

// installKey installs a configured API key; when its secret was revoked, it
// says which setting to change.
func installKey(ctx context.Context, a *authority.Authority, name, secret, role string) error {
	err := a.EnsureAPIKey(ctx, name, secret, role)
	if !errors.Is(err, authority.ErrAPIKeyRevoked) {
		return err
	}
	where := map[string]string{
		"bootstrap": "TEGATA_API_KEY (or, when that is unset, in the data directory's api-key file: delete it to have a new key generated)",
		"feed":      "TEGATA_FEED_KEY",
	}[name]
	return fmt.Errorf("%w; set a new one in %s", err, where)
}

// readOrCreateSecret reads a secret file, refusing one others can read, or
// creates it with gen's value.
func readOrCreateSecret(path string, gen func() string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		st, err := os.Stat(path)
		if err == nil && st.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("%s is readable by group or others (mode %v); run: chmod 600 %s", path, st.Mode().Perm(), path)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", false, fmt.Errorf("%s is empty", path)
		}
		return s, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	s := gen()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", false, err
	}
	return s, true, nil
}

// MinAPIKeyLen is the shortest API key an operator may supply. Keys are
// stored as a fast hash, which is only safe for high-entropy secrets.
const MinAPIKeyLen = 32

// strongEnough refuses operator-supplied API keys too short to be random
// secrets (`openssl rand -base64 32` gives 44 characters).
func strongEnough(name, v string) error {
	if len(strings.TrimSpace(v)) < MinAPIKeyLen {
		return fmt.Errorf("%s is shorter than %d characters; use a random secret, e.g. `openssl rand -base64 32`", name, MinAPIKeyLen)
	}
	return nil
}
