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
	Stdin  io.Reader // nil: nothing to read
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// LookupEnv tells a variable set to "" from an unset one, for
	// messages. Nil: a variable is set when Getenv returns non-empty.
	LookupEnv func(string) (string, bool)
}

// isSet reports whether the variable name is set, even to "".
func (env Env) isSet(name string) bool {
	if env.LookupEnv == nil {
		return env.Getenv(name) != ""
	}
	_, ok := env.LookupEnv(name)
	return ok
}

// errUsage marks a command-line mistake: the message is printed with a hint
// and the exit code is 2.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// Main runs the command line and returns the exit code: 0, 1 for a
// failure, 2 for a command-line mistake, 3 for a revocation with --confirm
// that was not yet in force when the wait ended.
func Main(env Env) int {
	if len(env.Args) == 0 {
		printGeneral(env.Stderr)
		return 2
	}
	env, err := withSecretFiles(env)
	if err != nil {
		return exit(env, env.Args[0], err)
	}
	cmd, args := env.Args[0], env.Args[1:]
	switch cmd {
	case "-h", "-help", "--help":
		printGeneral(env.Stdout)
		return 0
	case "help":
		return help(env, args)
	case "--version":
		cmd = "version"
	}
	run, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(env.Stderr, "tegata: unknown command %q\n\n", cmd) // %q escapes
		printGeneral(env.Stderr)
		return 2
	}
	return exit(env, cmd, run(env, args))
}

// help is 'tegata help [COMMAND [SUBCOMMAND]]': the command's own -h.
func help(env Env, args []string) int {
	if len(args) == 0 {
		printGeneral(env.Stdout)
		return 0
	}
	if len(args) == 1 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		printHelp(env.Stdout, "help", nil)
		return 0
	}
	run, ok := commands[args[0]]
	if !ok || len(args) > 2 {
		fmt.Fprintf(env.Stderr, "tegata help: no command %q\n\n", strings.Join(args, " "))
		printGeneral(env.Stderr)
		return 2
	}
	return exit(env, args[0], run(env, append(args[1:], "-h")))
}

// exit prints err for cmd and returns the exit code.
func exit(env Env, cmd string, err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errInvalidToken):
		return 1
	case errors.Is(err, errNotConfirmed):
		return 3
	case errors.Is(err, errUsage):
		path := cmd
		if u := (*usageIn)(nil); errors.As(err, &u) {
			path = u.path
		}
		fmt.Fprintf(env.Stderr, "tegata %s: %s\n(run 'tegata help %s' for help)\n", path, printable(strings.TrimPrefix(err.Error(), "usage: ")), path)
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
		"serve":     serve,
		"gate":      gateCmd,
		"relay":     relayCmd,
		"keys":      keys,
		"sessions":  sessions,
		"revoke":    revoke,
		"token":     tokenCmd,
		"audit":     audit,
		"verifiers": verifiers,
		"apikeys":   apikeys,
		"streams":   streams,
		"version":   version,
	}
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
	return Env{Args: os.Args[1:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, LookupEnv: os.LookupEnv}
}
