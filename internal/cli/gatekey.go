package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/tegata-dev/tegata/internal/secret"
	"github.com/tegata-dev/tegata/verifier"
)

// keyPollEvery is how often a gate looks at its key file for a new key.
const keyPollEvery = 5 * time.Second

// keyFilePath returns the file a gate's key came from (--key-file, or
// NAME_FILE for the variable NAME), or "" when it came from a variable.
func keyFilePath(env Env, key secretValue, keyFile string) string {
	switch {
	case keyFile != "" && key.source == keyFile:
		return keyFile
	case key.source != "" && env.Getenv(key.source+"_FILE") != "":
		return env.Getenv(key.source + "_FILE")
	}
	return ""
}

// keyWatch reads a gate's key file again whenever its content changes
// (looked at every keyPollEvery) and on SIGHUP, and hands a new key to the
// verifier, which checks it with an authority before taking it, and to the
// web gate's session calls. So a feed or gate key rotates with no restart:
// write the new key into the file, then revoke the old one. A key the
// authority refuses is not taken, and not tried again until the file
// changes or SIGHUP; the gate keeps the key it has.
type keyWatch struct {
	path    string
	v       *verifier.Verifier
	web     func(key string) // nil without --web
	log     *slog.Logger
	current string // the key in use
	refused string // the last key every authority refused
	lastErr string // the last read error logged
}

func (w *keyWatch) run(ctx context.Context, hup <-chan os.Signal) {
	t := time.NewTicker(keyPollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-hup:
			w.log.Info("gate: SIGHUP: reading the key file again", "file", w.path)
			w.refused, w.lastErr = "", ""
		}
		w.check(ctx)
	}
}

// check reads the file and takes the key in it if it is new.
func (w *keyWatch) check(ctx context.Context) {
	b, err := os.ReadFile(w.path)
	var key string
	if err == nil {
		key, err = secret.Clean(string(b))
	}
	if err == nil && key == "" {
		err = errors.New("the file is empty")
	}
	if err != nil {
		if err.Error() != w.lastErr {
			w.log.Warn("gate: cannot read the key file; keeping the current key", "file", w.path, "err", err)
			w.lastErr = err.Error()
		}
		return
	}
	w.lastErr = ""
	if key == w.current || key == w.refused {
		return
	}
	if err := w.v.SetAPIKey(ctx, key); err != nil {
		if errors.Is(err, verifier.ErrKeyRefused) {
			w.refused = key
		}
		w.log.Error("gate: the new key in the key file was not taken; the gate keeps its current key", "file", w.path, "err", err)
		return
	}
	w.current = key
	if w.web != nil {
		w.web(key)
	}
	w.log.Info("gate: the key file holds a new key, which the authority accepted: the gate uses it from now on", "file", w.path)
}
