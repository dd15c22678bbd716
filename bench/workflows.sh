#!/usr/bin/env bash
# Workflows end to end with `citadel workflow run` (the local runner: every
# script step in a jailed sandbox host, no server, nothing durable), in the
# shapes of issue 16's benchmarks:
#
#   1. 40 lightweight script steps in a chain, each reading the one before
#      (Windmill's published benchmark shape: 2.1–3.0 s there)
#   2. a fan-out 1 → 500 → 1 of script steps
#
# Each is run RUNS times; the median and best wall time of the whole command
# (start-up, the sandbox host's start, every step) and of the workflow
# alone (`duration_ms` of its report) are printed.
#
#   bench/workflows.sh [RUNS]      (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
cargo build --release -q -p citadel
bin=$PWD/target/release/citadel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
steps = ['  - id: s0\n    type: script\n    code: "return input.n + 1"\n    input: { n: 0 }\n']
for i in range(1, 40):
    steps.append(f'  - id: s{i}\n    type: script\n    depends_on: [s{i-1}]\n    code: "return input.n + 1"\n    input: {{ n: "{{{{ steps.s{i-1}.output }}}}" }}\n')
open(f"{work}/linear40.yaml", "w").write(
    "name: linear40\nversion: 1\nsteps:\n" + "".join(steps) + 'outputs:\n  n: "{{ steps.s39.output }}"\n')
fan = ['  - id: start\n    type: script\n    code: "return 1"\n']
fan += [f'  - id: w{i}\n    type: script\n    depends_on: [start]\n    code: "return {i}"\n' for i in range(500)]
fan.append("  - id: end\n    type: script\n    depends_on: [" + ", ".join(f"w{i}" for i in range(500)) + ']\n    code: "return 1"\n')
open(f"{work}/fan500.yaml", "w").write("name: fan500\nversion: 1\nsteps:\n" + "".join(fan))
PY
measure() { # LABEL FILE
  local label=$1 file=$2
  for _ in $(seq "$runs"); do
    local t0 t1 report
    t0=$(date +%s%N)
    report=$("$bin" workflow run "$file" --json)
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000000 )) $(echo "$report" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"] == "succeeded", d; print(d["duration_ms"])')"
  done | python3 -c '
import sys
label = sys.argv[1]
rows = [tuple(map(int, l.split())) for l in sys.stdin if l.strip()]
med = lambda xs: sorted(xs)[(len(xs) - 1) // 2]
wall, wf = [r[0] for r in rows], [r[1] for r in rows]
print(f"  {label:<24} whole command: median {med(wall)} ms, best {min(wall)} ms   workflow alone: median {med(wf)} ms, best {min(wf)} ms   ({len(rows)} runs)")
' "$label"
}
echo "citadel workflow run (local runner, jailed sandbox host, not durable)"
measure "40-step linear chain" "$work/linear40.yaml"
measure "fan-out 1 -> 500 -> 1" "$work/fan500.yaml"
