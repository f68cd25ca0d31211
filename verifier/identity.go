package verifier

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/tegata-dev/tegata/internal/feed"
)

// A verifier names itself to the authorities it follows, so that operators
// see who follows the feed (GET /v1/verifiers) and a revocation can wait
// until every verifier has it: an instance ID made at New, Config.Name, the
// host name and the version of this module.

// MaxNameLen is the longest Config.Name.
const MaxNameLen = feed.MaxNameLen

// modulePath is this module's path, to find its version in build info.
const modulePath = "github.com/tegata-dev/tegata"

// checkName refuses a Config.Name the authority would refuse.
func checkName(name string) error {
	if len(name) > MaxNameLen || !feed.Printable(name) {
		return fmt.Errorf("verifier: Config.Name must be at most %d bytes of printable UTF-8", MaxNameLen)
	}
	return nil
}

// hostname returns the host's name, or "" if it has none fit to report.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || len(h) > feed.MaxHostLen || !feed.Printable(h) {
		return ""
	}
	return h
}

// moduleVersion returns the version of this module in the running binary:
// the main module's when tegata itself is built, a dependency's otherwise.
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := ""
	if bi.Main.Path == modulePath {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			v = d.Version
		}
	}
	if len(v) > feed.MaxVersionLen || !feed.Printable(v) {
		return ""
	}
	return v
}
