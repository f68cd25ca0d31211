package cli

import (
	"fmt"
	"runtime/debug"
)

// version prints the module version and the VCS revision the binary was
// built from, as debug.ReadBuildInfo reports them.
func version(env Env, args []string) error {
	fs := newFlags(env, "version")
	jsonOut := fs.Bool("json", false, "print JSON")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	v := buildVersion()
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
	}
	_, err := fmt.Fprintln(env.Stdout, printable(line+" "+v.Go))
	return err
}

// versionInfo is what 'tegata version' reports.
type versionInfo struct {
	Version  string `json:"version"`            // module version, "(devel)" for a local build
	Revision string `json:"revision,omitempty"` // VCS revision
	Time     string `json:"time,omitempty"`     // commit time
	Modified bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	Go       string `json:"go"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: "unknown", Go: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Version, v.Go = bi.Main.Version, bi.GoVersion
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}
