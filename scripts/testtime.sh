#!/usr/bin/env bash
# testtime.sh [rev...]: the wall and CPU time of the README's test command,
# `go test -count=1 github.com/tegata-dev/tegata/...`, at each revision
# (default: HEAD), each in a temporary worktree of its own, one after the
# other, its packages compiled before the clock starts. Compare revisions measured in one run on the same machine; the
# per-test breakdown of each is left in /tmp/testtime-<rev>.json
# (scripts/testtimes.py < that file lists the slowest tests).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- HEAD
for rev in "$@"; do
  sha=$(git rev-parse --short "$rev")
  dir=$(mktemp -d /tmp/testtime-XXXXXX)
  git worktree add -q --detach "$dir" "$sha"
  json=/tmp/testtime-$sha.json
  # Compile first, so that the figures are the tests' own time.
  ( cd "$dir" && go test -count=1 -run '^$' github.com/tegata-dev/tegata/... >/dev/null 2>&1 ) || true
  start=$(date +%s.%N)
  # CPU of the go command and every test binary it runs (children).
  ( cd "$dir" && /usr/bin/time -f "%U %S" -o "$dir.cpu" go test -count=1 -json github.com/tegata-dev/tegata/... >"$json" 2>&1 ) || true
  end=$(date +%s.%N)
  # time(1) puts "Command exited with non-zero status N" first when a test fails.
  read -r user sys < <(tail -n 1 "$dir.cpu")
  fails=$(grep -c '"Action":"fail"' "$json" || true)
  printf '%s  wall %6.1f s  cpu %7.1f s (user %.1f, sys %.1f)  failed events %s  load %s\n' \
    "$sha" "$(echo "$end - $start" | bc)" "$(echo "$user + $sys" | bc)" "$user" "$sys" "$fails" "$(cut -d' ' -f1-3 /proc/loadavg)"
  git worktree remove --force "$dir"
  rm -f "$dir.cpu"
done
