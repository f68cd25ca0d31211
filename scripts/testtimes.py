#!/usr/bin/env python3
"""Sum the elapsed time of each top-level test in `go test -json` output
(stdin) and print the slowest, then each package's total."""
import json, sys, collections
tests, pkgs = {}, {}
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("Action") not in ("pass", "fail") or "Elapsed" not in e:
        continue
    if "Test" in e and "/" not in e["Test"]:
        tests[(e["Package"], e["Test"])] = e["Elapsed"]
    elif "Test" not in e:
        pkgs[e["Package"]] = e["Elapsed"]
n = int(sys.argv[1]) if len(sys.argv) > 1 else 25
for (p, t), s in sorted(tests.items(), key=lambda x: -x[1])[:n]:
    print(f"{s:8.2f}s  {p.removeprefix('github.com/tegata-dev/tegata/')}.{t}")
print("--- packages")
for p, s in sorted(pkgs.items(), key=lambda x: -x[1])[:n]:
    print(f"{s:8.2f}s  {p.removeprefix('github.com/tegata-dev/tegata/')}")
