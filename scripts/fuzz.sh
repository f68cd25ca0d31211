#!/usr/bin/env bash
# Runs every native fuzz target: scripts/fuzz.sh [limit]
#
# limit is go test's -fuzztime: a count of executions ("50000x", the
# default) or a duration ("10m"). CI runs the count: Go 1.26's fuzz
# coordinator can fail a target that found nothing with "context deadline
# exceeded" when a duration runs out while a worker is busy
# (go.dev/issue/75804, fixed in Go 1.27); a count never arms that deadline.
# A target that fails prints its output; a crasher lands in the package's
# testdata/fuzz/<target>/ and replays under plain go test from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-50000x}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list github.com/tegata-dev/tegata/...); do # every module of go.work
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f ($t)"
    if ! go test "$pkg" -run '^$' -fuzz "^$f\$" -fuzztime "$t" >"$log" 2>&1; then
      echo "fuzz: $pkg $f failed:"
      tail -n 40 "$log"
      exit 1
    fi
  done
done
echo "fuzz: all targets passed"
