#!/usr/bin/env bash
# Sync runs through HTTP, side by side with the Deno-sidecar anchor in the
# same run: POST /v1/scripts/hello/run {"input": …} (wait: true, the default)
# against POST /execute on the anchor, the same script body, wrk with 16
# connections on 2 threads for DURATION seconds each. Prints both and the
# throughput ratio.
#
#   bench/runs.sh [DURATION]     (needs wrk; Deno from npm @deno/linux-x64-glibc, see
#                                 ../shared/anchors/deno-sidecar/README.md, or $DENO)
#
# ISOLATION=version saves the script with "limits": {"isolation": "version"}
# (a warm context per version per host thread) instead of the default fresh
# context per run; ANCHOR_SKIP=1 leaves the anchor out.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
deno=${DENO:-/tmp/deno/node_modules/@deno/linux-x64-glibc/deno}
anchor=${ANCHOR:-$PWD/../shared/anchors/deno-sidecar}
# CITADEL=path measures that binary instead of building this tree.
if [ -z "${CITADEL:-}" ]; then cargo build --release -q -p citadel; fi
bin=${CITADEL:-$PWD/target/release/citadel}
work=$(mktemp -d)
trap '[ -n "${anchor_pid:-}" ] && kill "$anchor_pid" 2>/dev/null || true; [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
script='const r = {processed: [1,2,3].map(x => x * 2).length}; return r;'

port=$((20000 + RANDOM % 20000))
(cd "$work" && exec "$bin" serve --listen 127.0.0.1:$port --data-dir "$work/data" >"$work/serve.log" 2>&1) &
serve_pid=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
(cd "$work" && "$bin" admin create-tenant bench --data-dir "$work/data" >/dev/null)
token=$(cd "$work" && "$bin" admin create-token --tenant bench --role owner --data-dir "$work/data" 2>/dev/null | tail -1)
isolation=${ISOLATION:-run}
limits=""
[ -n "${ISOLATION:-}" ] && limits=",\"limits\":{\"isolation\":\"$ISOLATION\"}"
curl -sf -X POST "127.0.0.1:$port/v1/scripts" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "{\"name\":\"hello\",\"source\":\"$script\"$limits}" >/dev/null
cat > "$work/run.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"input": null}'
LUA
# One run to check the answer before measuring.
curl -sf -X POST "127.0.0.1:$port/v1/scripts/hello/run" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"input": null}' | grep -q '"result":{"processed":3}' \
  || { echo "citadel: the hello run did not return {processed: 3}"; cat "$work/serve.log"; exit 1; }

# CPU ticks of a process and every live descendant: user + system, plus
# those of children already reaped (each CPU second counts once).
tree_ticks() { # PID
  local pid=$1 total=0 child
  total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)
  for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
    total=$((total + $(tree_ticks "$child")))
  done
  echo "$total"
}

measure() { # NAME URL ARGS...
  local name=$1 url=$2; shift 2
  local out rps p50 p99 non2xx
  local before after own_before own_after
  before=$(tree_ticks "${cpu_pid:-$$}")
  own_before=$(awk '{print $14 + $15}' "/proc/${cpu_pid:-$$}/stat")
  out=$(wrk -t2 -c16 -d"${duration}s" --latency "$@" "$url")
  after=$(tree_ticks "${cpu_pid:-$$}")
  own_after=$(awk '{print $14 + $15}' "/proc/${cpu_pid:-$$}/stat")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  local requests cpu_us
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  cpu_us=$(awk -v t=$((after - before)) -v o=$((own_after - own_before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    'BEGIN { printf "%.0f (%.0f in the server process, %.0f in its children)", t / hz * 1e6 / n, o / hz * 1e6 / n, (t - o) / hz * 1e6 / n }')
  printf '%-34s %10s runs/s   p50 %8s   p99 %8s   non-2xx: %s\n%34s us CPU/run: %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}" "" "$cpu_us" >&2
  echo "$rps"
}

cpu_pid=$serve_pid
citadel=$(measure "citadel (jailed, isolation $isolation)" "http://127.0.0.1:$port/v1/scripts/hello/run" \
  -s "$work/run.lua" -H "Authorization: Bearer $token")
runs=$(curl -sf "127.0.0.1:$port/metrics" | awk '/^citadel_runs_total\{status="succeeded"\}/ {print $2}')
echo "citadel recorded $runs succeeded runs" >&2
kill "$serve_pid" 2>/dev/null || true

if [ -n "${ANCHOR_SKIP:-}" ]; then
  echo "anchor: skipped (ANCHOR_SKIP)"
elif [ -x "$deno" ] && [ -f "$anchor/server.js" ]; then
  aport=$((40000 + RANDOM % 20000))
  (cd "$anchor" && PORT=$aport exec "$deno" run --unstable-worker-options --allow-net=127.0.0.1 --allow-read --allow-env server.js >"$work/anchor.log" 2>&1) &
  anchor_pid=$!
  cpu_pid=$anchor_pid
  for _ in $(seq 100); do curl -sf "127.0.0.1:$aport/health" >/dev/null && break; sleep 0.1; done
  deno_rps=$(measure "anchor (Deno worker per run)" "http://127.0.0.1:$aport/execute" -s "$anchor/post.lua")
  kill "$anchor_pid" 2>/dev/null || true
  awk -v c="$citadel" -v d="$deno_rps" 'BEGIN { printf "ratio: citadel / anchor = %.1fx\n", c / d }'
else
  echo "anchor: skipped (no Deno at $deno; see ../shared/anchors/deno-sidecar/README.md)"
fi
