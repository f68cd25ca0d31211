// Package buildinfo reads what the Go toolchain recorded about the build of
// the running binary: the module version and the VCS revision, for
// 'tegata version' and the tegata_build_info metric. Safe for concurrent
// use.
package buildinfo

import "runtime/debug"

// Info is what a binary knows of its own build.
type Info struct {
	Version  string `json:"version"`            // module version, "(devel)" for a build without one
	Revision string `json:"revision,omitempty"` // VCS revision (commit)
	Time     string `json:"time,omitempty"`     // commit time
	Modified bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	Go       string `json:"go"`
}

// Read returns the running binary's Info. A build made outside a VCS
// checkout, or with -buildvcs=false, has no revision: build from a git
// clone (the Go toolchain then derives the version from the commit, or
// from a tag on it).
func Read() Info {
	v := Info{Version: "unknown", Go: "unknown"}
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

// Commit is the revision, "unknown" when the build recorded none.
func (i Info) Commit() string {
	if i.Revision == "" {
		return "unknown"
	}
	return i.Revision
}
