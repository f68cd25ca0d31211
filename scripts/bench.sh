#!/usr/bin/env bash
# Regenerates docs/benchmarks.md from a fresh run: scripts/bench.sh
#
#   1. builds tegata and tegata-bench;
#   2. runs the micro benchmarks (go test -bench, -count 6: medians and the
#      95% confidence intervals benchstat gives them, from golang.org/x/perf);
#   3. runs the system benchmarks: tegata-bench propagation|flood|authority|gate --json
#      (tegata-bench starts nodes and gates from the tegata binary beside it);
#   4. takes a CPU profile of whatever missed its target;
#   5. writes docs/benchmarks.md with internal/bench/benchdoc.
#
# About 4 minutes on 2 cores. Needs Postgres (TEGATA_BENCH_POSTGRES, default
# postgres://postgres@127.0.0.1:5432/test?sslmode=disable; each run uses a
# schema of its own and drops it) and, for the Redis comparison, Redis at
# TEGATA_TEST_REDIS (default 127.0.0.1:6379). Raw outputs stay in the
# directory printed at the end. Exits non-zero if a benchmark failed; the
# document is written anyway and says which.
set -uo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
out=$(mktemp -d "${TMPDIR:-/tmp}/tegata-bench.XXXXXX")
bin="$out/tegata-bench"
pg=${TEGATA_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
redis=${TEGATA_TEST_REDIS:-127.0.0.1:6379}
export TEGATA_BENCH_POSTGRES=$pg TEGATA_TEST_POSTGRES=${TEGATA_TEST_POSTGRES:-$pg} TEGATA_TEST_REDIS=$redis
failed=0

say() { printf '%s bench.sh: %s\n' "$(date +%T)" "$*" >&2; }

# record notes a command line for the document, with the output directory
# written as $OUT.
record() { printf '%s\n' "${1//$out/\$OUT}" >>"$out/commands.txt"; }

# run records and runs a command line (a string, run by bash -c so that the
# recorded line is exactly what ran).
run() {
  record "$1"
  bash -c "$1"
}

say "results in $out"
cut -d' ' -f1-3 /proc/loadavg >"$out/loadavg.txt" 2>/dev/null
date -u '+%Y-%m-%d %H:%M UTC' >"$out/date.txt"
record "OUT=\$(mktemp -d)"
run "go build -o $out/tegata ./cmd/tegata && go build -o $bin ./internal/bench/cmd/tegata-bench" || { say "build failed"; exit 1; }

command -v psql >/dev/null && psql "$pg" -tAc 'SHOW server_version' >"$out/postgres-version.txt" 2>/dev/null
command -v redis-cli >/dev/null &&
  redis-cli -h "${redis%:*}" -p "${redis##*:}" INFO server 2>/dev/null | tr -d '\r' |
  sed -n 's/^redis_version://p' >"$out/redis-version.txt"

micro='^Benchmark(Ed25519Verify|ES256Verify|TokenVerify|GoJoseVerify|VerifyNew|VerifyCached|VerifyDPoP|VerifyDPoPES256|VerifyParallel|RevocationLookup|RevocationLookupParallel|SetMemory|RedisLookup|PostgresLookup|RandomRead32MiB|Follow)$'
say "micro benchmarks (about 2 minutes)"
if ! run "go test -run '^\$' -bench '$micro' -count 6 -benchmem ./token ./verifier ./internal/revocation ./internal/bench ./internal/feed >$out/micro.txt"; then
  say "micro benchmarks failed; see $out/micro.txt"
  failed=1
fi

for b in propagation flood authority gate; do
  say "tegata-bench $b"
  run "$bin $b --json >$out/$b.json 2>$out/$b.log"
  status=$?
  echo "$status" >"$out/$b.status"
  if [ "$status" -ne 0 ]; then
    say "tegata-bench $b exited $status; see $out/$b.log"
    failed=1
  fi
done

# Profiles of what missed its target, so the document can say where the
# time goes: micro benchmarks under go test -cpuprofile; system benchmarks
# run once more, profiling the benchmark's own process: the in-process
# authority (--cpuprofile), or for the flood the in-process verifier
# catching up on it (--catchup-profile) and holding it (--memprofile).
go run ./internal/bench/benchdoc -dir "$out" -plan >"$out/plan.txt" || failed=1
declare -A ran
while read -r kind id a b; do
  case $kind in
  micro)
    prof="$out/profile-$id.prof"
    say "profiling $b for missed target $id"
    run "go test -run '^\$' -bench '^$b\$' -benchtime 3s -cpuprofile $prof -o $out/$id.test $a >/dev/null"
    opts=""
    ;;
  system)
    prof="$out/profile-$a.$b.prof"
    if [ -z "${ran[$a]:-}" ]; then
      say "profiling tegata-bench $a for missed target $id"
      cmd=$a
      case $a in authority-*) cmd="authority --stores ${a#authority-}" ;; esac
      cpu="--cpuprofile $out/profile-$a.cpu.prof"
      [ "$a" = flood ] && cpu="--catchup-profile $out/profile-$a.cpu.prof --memprofile $out/profile-$a.heap.prof"
      run "$bin $cmd $cpu >/dev/null 2>&1"
      ran[$a]=1
    fi
    opts=""
    [ "$b" = heap ] && opts="-sample_index=inuse_space"
    ;;
  esac
  [ -s "$prof" ] && run "go tool pprof -top -nodecount 25 $opts $prof >$out/profile-$id.txt 2>/dev/null"
done <"$out/plan.txt"

elapsed=$(($(date +%s) - start))
if go run ./internal/bench/benchdoc -dir "$out" -elapsed "${elapsed}s" >"$out/benchmarks.md"; then
  # The @tegata/node section is written by `npm run bench -- --write` in js/
  # (Node, not Go): carry it over as it was.
  sed -n '/^<!-- @tegata\/node bench: begin -->$/,/^<!-- @tegata\/node bench: end -->$/p' docs/benchmarks.md >"$out/node-section.md"
  [ -s "$out/node-section.md" ] && { echo; cat "$out/node-section.md"; } >>"$out/benchmarks.md"
  # So is the operator console's (go test -bench Pages ./internal/console/,
  # which loads a million sessions into Postgres).
  sed -n '/^<!-- console bench: begin -->$/,/^<!-- console bench: end -->$/p' docs/benchmarks.md >"$out/console-section.md"
  [ -s "$out/console-section.md" ] && { echo; cat "$out/console-section.md"; } >>"$out/benchmarks.md"
  # And the DPoP section (go test -bench in ./verifier and ./token, run
  # interleaved on a quiet machine as it says).
  sed -n '/^<!-- dpop bench: begin -->$/,/^<!-- dpop bench: end -->$/p' docs/benchmarks.md >"$out/dpop-section.md"
  [ -s "$out/dpop-section.md" ] && { echo; cat "$out/dpop-section.md"; } >>"$out/benchmarks.md"
  cp "$out/benchmarks.md" docs/benchmarks.md
  say "wrote docs/benchmarks.md in ${elapsed}s (raw outputs in $out)"
else
  say "benchdoc failed; docs/benchmarks.md left as it was"
  failed=1
fi
exit "$failed"
