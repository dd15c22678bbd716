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
# Then the same two shapes run durably on a `citadel serve` (SQLite in a
# fresh data directory, or the database of $BENCH_DATABASE_URL, e.g. a
# PostgreSQL URL): each step a job-driven run of its own, every step's state
# written as it starts and ends. Printed: the median and best time from the
# run's creation to its record (`finished_at - created_at`, both written by
# the server) and the client's wall time from POST to seeing it finished.
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

# Durable runs on a server.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CITADEL_DATA_DIR=$work/data
if [ -n "${BENCH_DATABASE_URL:-}" ]; then export CITADEL_DATABASE_URL=$BENCH_DATABASE_URL; backend=postgres; else unset CITADEL_DATABASE_URL; backend=sqlite; fi
tenant=bench-$RANDOM$RANDOM
"$bin" admin create-tenant "$tenant" >/dev/null
token=$("$bin" admin create-token --tenant "$tenant" --role owner 2>/dev/null | tail -1)
"$bin" serve --listen 127.0.0.1:$port >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf localhost:$port/ready >/dev/null; do sleep 0.2; done
python3 - "$port" "$token" "$runs" "$work" "$backend" <<'PY'
import json, sys, time, urllib.request
port, token, runs, work, backend = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
def call(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
med = lambda xs: sorted(xs)[(len(xs) - 1) // 2]
print(f"citadel serve, durable runs on {backend} (each step a run of its own, every step stored)")
for name, label in [("linear40", "40-step linear chain"), ("fan500", "fan-out 1 -> 500 -> 1")]:
    call("POST", "/v1/workflows", {"name": name, "source": open(f"{work}/{name}.yaml").read()})
    server_ms, client_ms = [], []
    for i in range(runs):
        t0 = time.monotonic()
        run_id = call("POST", f"/v1/workflows/{name}/run", {})["run_id"]
        while True:
            run = call("GET", f"/v1/runs/{run_id}")
            if run["status"] not in ("queued", "running"):
                break
            time.sleep(0.002)
        client_ms.append(round((time.monotonic() - t0) * 1000))
        assert run["status"] == "succeeded", run
        server_ms.append(run["finished_at"] - run["created_at"])
    print(f"  {label:<24} created -> recorded: median {med(server_ms)} ms, best {min(server_ms)} ms   client wall: median {med(client_ms)} ms, best {min(client_ms)} ms   ({runs} runs)")
PY
