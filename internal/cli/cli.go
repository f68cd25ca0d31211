// Package cli is the tegata command line: it parses arguments and calls the
// server, the authority's HTTP API (operator commands) or the gate. Main
// takes its environment as arguments so tests can run it in-process.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Env is the process environment as the CLI sees it.
type Env struct {
	Args   []string
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// errUsage marks a command-line mistake: the message is printed with a hint
// and the exit code is 2.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

const usage = `tegata: sessions and access tokens verified locally, revoked instantly.

Usage:
  tegata serve [flags]                       run the authority (embedded SQLite by default)
  tegata gate --authority URL [flags]        run a verifier as forward-auth endpoint or reverse proxy (--web: browser sessions)
  tegata keys list|rotate [--use events]     list or rotate signing keys (events: the key of Shared Signals SETs)
  tegata sessions list --subject S           a subject's live sessions
  tegata revoke --session ID | --subject S | --subjects-from FILE [--scope sessions|access] [--reason R]
  tegata token inspect TOKEN                 decode a token and say whether and why it is (not) valid
  tegata audit [--after N]                   the audit trail of revocations and key changes
  tegata apikeys create --name N [--role admin|feed|gate]   create an API key (its secret is shown once)
  tegata apikeys list | revoke ID [--reason R]         list or revoke API keys
  tegata streams list | create (--push URL | --poll) | delete ID   Shared Signals event streams

Operator commands reach a running authority: --authority URL (env TEGATA_AUTHORITY,
default http://127.0.0.1:8080) with the API key from TEGATA_API_KEY or --key-file
(default $TEGATA_DATA/api-key, i.e. ./tegata-data/api-key).
Run 'tegata COMMAND -h' for a command's flags.
`

// Main runs the command line and returns the exit code.
func Main(env Env) int {
	if len(env.Args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return 2
	}
	cmd, args := env.Args[0], env.Args[1:]
	run, ok := commands[cmd]
	if !ok {
		if cmd == "-h" || cmd == "--help" || cmd == "help" {
			fmt.Fprint(env.Stdout, usage)
			return 0
		}
		fmt.Fprintf(env.Stderr, "tegata: unknown command %q\n\n%s", cmd, usage) // %q escapes
		return 2
	}
	err := run(env, args)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errInvalidToken):
		return 1
	case errors.Is(err, errUsage):
		fmt.Fprintf(env.Stderr, "tegata %s: %s\n(run 'tegata %s -h' for help)\n", cmd, printable(strings.TrimPrefix(err.Error(), "usage: ")), cmd)
		return 2
	default:
		// The error may quote what the authority or the user sent.
		fmt.Fprintf(env.Stderr, "tegata %s: %s\n", cmd, printable(err.Error()))
		return 1
	}
}

var commands map[string]func(Env, []string) error

func init() {
	commands = map[string]func(Env, []string) error{
		"serve":    serve,
		"gate":     gateCmd,
		"keys":     keys,
		"sessions": sessions,
		"revoke":   revoke,
		"token":    tokenCmd,
		"audit":    audit,
		"apikeys":  apikeys,
		"streams":  streams,
	}
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(env Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("tegata "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parse parses flags, turning flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	return nil
}

func envOr(env Env, name, def string) string {
	if v := env.Getenv(name); v != "" {
		return v
	}
	return def
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format must be text or json")
}

// OS returns the real process environment.
func OS() Env {
	return Env{Args: os.Args[1:], Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}
