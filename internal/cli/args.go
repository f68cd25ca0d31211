package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// flagSet is a command's flags, with what parsing and help need.
type flagSet struct {
	*flag.FlagSet
	env  Env
	name string // the command's name after "tegata ": "keys list"
	// takesArgs: the command has positional arguments, so an argument that
	// starts with '-' but names no flag is one of them (session and key ids
	// are base64url and may start with '-').
	takesArgs bool
}

// newFlags returns a command's flag set. Parse errors are returned, not
// printed: Main prints them once, with a pointer to the help.
func newFlags(env Env, name string) *flagSet {
	fs := flag.NewFlagSet("tegata "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, env: env, name: name}
}

// parse sets the flags from the environment (applyEnv), then parses flags
// and positional arguments in any order (`revoke ID
// --reason R` and `revoke --reason R ID` alike); "--" ends the flags.
// Positional arguments are then fs.Args(). -h prints the command's help to
// standard output and returns flag.ErrHelp; flag errors become usage errors.
func parse(fs *flagSet, args []string) error {
	if err := fs.applyEnv(); err != nil {
		return err
	}
	if err := fs.Parse(fs.reorder(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(fs.env.Stdout, fs.name, fs.FlagSet)
			return err
		}
		return usageErr("%v", err)
	}
	return nil
}

// parseNoArgs parses flags and refuses positional arguments.
func parseNoArgs(fs *flagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// reorder moves the flags (with their values) before the positional
// arguments and separates them with "--", so that flag.FlagSet, which stops
// at the first positional argument, sees them all.
func (fs *flagSet) reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if f == nil && fs.takesArgs && name != "h" && name != "help" {
			pos = append(pos, a) // an id that starts with '-'
			continue
		}
		flags = append(flags, a)
		if f != nil && !hasValue && !isBool(f) {
			if i+1 == len(args) {
				return flags // the value is missing: let flag say so
			}
			i++
			flags = append(flags, args[i]) // the value, even if it starts with '-'
		}
	}
	return append(append(flags, "--"), pos...)
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// subcommand dispatches a command made of subcommands ("keys list"): -h or
// no subcommand prints the command's help (the latter as a usage error).
func subcommand(env Env, name string, args []string, subs map[string]func(Env, []string) error) error {
	if len(args) > 0 {
		if run, ok := subs[args[0]]; ok {
			err := run(env, args[1:])
			if errors.Is(err, errUsage) {
				err = &usageIn{name + " " + args[0], err}
			}
			return err
		}
		if a := args[0]; a == "-h" || a == "-help" || a == "--help" || a == "help" {
			printHelp(env.Stdout, name, nil)
			return flag.ErrHelp
		}
		return usageErr("unknown subcommand %q; want one of: %s", args[0], strings.Join(docs[name].subs, ", "))
	}
	return usageErr("want a subcommand: %s", strings.Join(docs[name].subs, ", "))
}

// flagHint explains extra positional arguments that look like flags: an
// unknown flag of a command with arguments is taken as an argument.
func flagHint(args []string) string {
	if len(args) < 2 {
		return ""
	}
	for _, a := range args {
		if strings.HasPrefix(a, "-") && a != "-" {
			return fmt.Sprintf("; %q is not a flag of this command (an argument that starts with '-' may also follow --)", a)
		}
	}
	return ""
}

// usageIn is a usage error of a subcommand: the help to point at is
// that subcommand's.
type usageIn struct {
	path string // "keys list"
	err  error
}

func (u *usageIn) Error() string { return u.err.Error() }
func (u *usageIn) Unwrap() error { return u.err }
