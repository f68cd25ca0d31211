package cli

import (
	"fmt"

	"github.com/tegata-dev/tegata/internal/buildinfo"
)

// version prints the module version and the VCS revision the binary was
// built from, as debug.ReadBuildInfo reports them. A build that recorded no
// revision says how to get one.
func version(env Env, args []string) error {
	fs := newFlags(env, "version")
	jsonOut := fs.Bool("json", false, "print JSON")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	v := buildinfo.Read()
	if *jsonOut {
		return printJSON(env, v)
	}
	line := "tegata " + v.Version
	if v.Revision != "" {
		line += " (" + v.Revision
		if v.Time != "" {
			line += ", " + v.Time
		}
		if v.Modified {
			line += ", modified"
		}
		line += ")"
	} else {
		line += " (no VCS revision recorded: build from a git clone without -buildvcs=false)"
	}
	_, err := fmt.Fprintln(env.Stdout, printable(line+" "+v.Go))
	return err
}
