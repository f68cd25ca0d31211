package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tegata-dev/tegata/internal/secret"
)

// secretValue is an API key the CLI read, and where from, so that a refusal
// can name the variable or file to fix.
type secretValue struct {
	value  string
	source string // "TEGATA_FEED_KEY", or a file path
}

// errNoSecret: neither the variable nor a file holds the key.
var errNoSecret = errors.New("no key")

// secretFrom returns the environment variable name if it is not empty,
// else the content of file (when file is not ""), both cleaned by
// secret.Clean: trimmed of surrounding whitespace and newlines, refused
// with "Bearer " in front or whitespace inside. An errNoSecret says why
// neither held a key: the variable unset or set but empty
// (NAME=$(cat file) of an empty file), and the file's error.
func secretFrom(env Env, name, file string) (secretValue, error) {
	if v := env.Getenv(name); v != "" {
		s, err := secret.Clean(v)
		if err == nil && s == "" {
			err = errors.New("the value is blank")
		}
		if err != nil {
			return secretValue{}, fmt.Errorf("%s: %w", name, err)
		}
		return secretValue{s, name}, nil
	}
	why := name + " is unset"
	if env.isSet(name) {
		why = name + " is set but empty"
	}
	if file == "" {
		return secretValue{}, fmt.Errorf("%w: %s", errNoSecret, why)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return secretValue{}, fmt.Errorf("%w: %s and %w", errNoSecret, why, err)
	}
	s, err := secret.Clean(string(b))
	if err == nil && s == "" {
		err = errors.New("the file is empty")
	}
	if err != nil {
		return secretValue{}, fmt.Errorf("%s: %w", file, err)
	}
	return secretValue{s, file}, nil
}

// apiKeyFrom returns the operator's admin key: TEGATA_API_KEY, else the
// content of keyFile.
func apiKeyFrom(env Env, keyFile string) (secretValue, error) {
	k, err := secretFrom(env, "TEGATA_API_KEY", keyFile)
	if errors.Is(err, errNoSecret) {
		return k, fmt.Errorf("no API key: set TEGATA_API_KEY, or --key-file to a file holding it (%v)", missing(err))
	}
	return k, err
}

// missing is the cause of an errNoSecret error, without its sentinel text.
func missing(err error) string {
	return strings.TrimPrefix(err.Error(), errNoSecret.Error()+": ")
}

// feedKeyFrom returns a gate's key: TEGATA_FEED_KEY, else the content of
// keyFile. It never falls back to TEGATA_API_KEY or the data directory's
// api-key file: those hold the admin key, which a verifier must not have.
func feedKeyFrom(env Env, keyFile string) (secretValue, error) {
	k, err := secretFrom(env, "TEGATA_FEED_KEY", keyFile)
	if !errors.Is(err, errNoSecret) {
		return k, err
	}
	msg := "no feed key: set TEGATA_FEED_KEY or --key-file to an API key with the feed role (tegata apikeys create --name NAME --role feed)" +
		fmt.Sprintf(" (%v)", missing(err))
	if env.Getenv("TEGATA_API_KEY") != "" {
		msg += "; TEGATA_API_KEY is set, but it names the admin key, which a gate does not read"
	}
	return k, usageErr("%s", msg)
}
