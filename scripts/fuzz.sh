#!/usr/bin/env bash
# Runs every native fuzz target for a while: scripts/fuzz.sh [duration]
# (default 30s each). CI runs it with a few seconds per target.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-30s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f ($t)"
    go test "$pkg" -run '^$' -fuzz "^$f\$" -fuzztime "$t" >/dev/null
  done
done
echo "fuzz: all targets passed"
