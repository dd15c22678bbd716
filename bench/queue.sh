#!/usr/bin/env bash
# The durable queue under load: asynchronous runs that each
# `await api.sleep(100)` are enqueued over HTTP for SECONDS (wrk, 16
# connections) and
# worked by one node; prints the enqueue rate and the completion rate
# (first enqueue to last completion). Then the same with trivial jobs
# (`return input`). SQLite by default; BENCH_DATABASE=postgres://… for
# PostgreSQL.
#
#   bench/queue.sh [SECONDS]     (needs wrk and curl)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --release -q -p citadel
bin=$PWD/target/release/citadel
work=$(mktemp -d)
db=(--data-dir "$work/data")
[ -n "${BENCH_DATABASE:-}" ] && db=(--database "$BENCH_DATABASE")
port=$((20000 + RANDOM % 20000))
trap 'pkill -f "serve --listen 127.0.0.1:$port" 2>/dev/null; rm -rf "$work"' EXIT
(cd "$work" && "$bin" serve --listen 127.0.0.1:$port "${db[@]}" >"$work/serve.log" 2>&1 &)
for _ in $(seq 100); do curl -sf "127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
tenant=bench-$RANDOM
(cd "$work" && "$bin" admin create-tenant "$tenant" "${db[@]}" >/dev/null)
token=$(cd "$work" && "$bin" admin create-token --tenant "$tenant" --role owner "${db[@]}" 2>/dev/null | tail -1)
H=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')

# Jobs that reached an end (succeeded, or dead after their attempts).
succeeded() {
  curl -sf "127.0.0.1:$port/metrics" | awk '/^citadel_jobs\{state="(succeeded|dead|failed)"\}/ {n += $2} END {print n + 0}'
}
dead() {
  curl -sf "127.0.0.1:$port/metrics" | awk '/^citadel_jobs\{state="(dead|failed)"\}/ {n += $2} END {print n + 0}'
}

measure() { # NAME SCRIPT-NAME SOURCE CAPABILITIES
  local name=$1 script=$2 source=$3 caps=$4
  curl -sf "${H[@]}" "127.0.0.1:$port/v1/scripts" \
    -d "{\"name\":\"$script\",\"source\":\"$source\",\"capabilities\":$caps}" >/dev/null
  local before; before=$(succeeded); before=${before:-0}
  cat > "$work/enqueue.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"input": 1, "wait": false}'
request = function()
  return wrk.format(nil, "/v1/scripts/$script/run")
end
LUA
  local start end_enqueue done_at now n
  start=$(date +%s.%N)
  wrk -t2 -c16 -d"${seconds}s" -s "$work/enqueue.lua" -H "Authorization: Bearer $token" "http://127.0.0.1:$port" >"$work/wrk.out"
  end_enqueue=$(date +%s.%N)
  local sent; sent=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  local target=$((before + sent))
  while :; do
    n=$(succeeded); n=${n:-0}
    [ "$n" -ge "$target" ] && break
    now=$(date +%s.%N)
    if awk -v a="$now" -v b="$start" 'BEGIN { exit !(a - b > 300) }'; then echo "$name: only $((n - before)) of $sent finished in 300 s"; return; fi
    sleep 0.05
  done
  done_at=$(date +%s.%N)
  awk -v n="$sent" -v s="$start" -v e="$end_enqueue" -v d="$done_at" -v name="$name" \
    'BEGIN { printf "%-34s enqueue %7.0f jobs/s   enqueue→complete %7.0f jobs/s   (%d jobs, %.2f s)\n", name, n / (e - s), n / (d - s), n, d - s }'
  echo "  not succeeded (failed or dead-lettered) so far: $(dead)"
}

echo "database: ${BENCH_DATABASE:-sqlite (embedded)}"
measure "await api.sleep(100)" sleeper 'await api.sleep(100); return input;' '{"sleep":true}'
measure "trivial (return input)" trivial 'return input;' '{}'
