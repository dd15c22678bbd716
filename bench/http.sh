#!/usr/bin/env bash
# Authenticated HTTP throughput: GET /v1/tokens (auth + RBAC + a read) and a
# small write, PUT /v1/roles/{name} (auth + RBAC + a write + an audit append),
# on SQLite and, when its server binaries exist, on a throwaway PostgreSQL
# cluster. wrk with 16 connections on 2 threads for DURATION seconds.
#
#   bench/http.sh [DURATION]        (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --release -q -p citadel
bin=$PWD/target/release/citadel
work=$(mktemp -d)
chmod 755 "$work"  # the postgres user must reach its data directory
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${pgdata:-}" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cat > "$work/put.lua" <<'LUA'
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"permissions":["audit.read","script.read"]}'
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/v1/roles/bench-" .. (counter % 50))
end
LUA

run() { # NAME DATABASE-ARGS...
  local name=$1; shift
  local port=$((20000 + RANDOM % 20000))
  (cd "$work" && "$bin" serve --listen 127.0.0.1:$port "$@" >"$work/$name.log" 2>&1 &)
  for _ in $(seq 100); do curl -sf "127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  (cd "$work" && "$bin" admin create-tenant "bench-$name" "$@" >/dev/null)
  token=$(cd "$work" && "$bin" admin create-token --tenant "bench-$name" --role owner "$@" 2>/dev/null | tail -1)
  for what in "GET /v1/tokens" "PUT /v1/roles/{name}"; do
    if [ "$what" = "GET /v1/tokens" ]; then script=(); path=/v1/tokens; else script=(-s "$work/put.lua"); path=/; fi
    out=$(wrk -t2 -c16 -d"${duration}s" --latency -H "Authorization: Bearer $token" "${script[@]}" "http://127.0.0.1:$port$path")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    printf '%-9s %-22s %10s req/s   p99 %8s   non-2xx: %s\n' "$name" "$what" "$rps" "$p99" "${non2xx:-0}"
  done
  pkill -f "serve --listen 127.0.0.1:$port" || true
  sleep 1
}

run sqlite --data-dir "$work/data"

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort | tail -1)
if [ -n "$pgbin" ] && [ -x "$pgbin/initdb" ]; then
  pgdata="$work/pg"; mkdir -p "$pgdata"; chown postgres "$pgdata"
  pgport=$((40000 + RANDOM % 20000))
  runuser -u postgres -- "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust >/dev/null
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -o "-p $pgport -k $pgdata -c listen_addresses=127.0.0.1" -l "$pgdata/log" -w start >/dev/null
  run postgres --database "postgres://postgres@127.0.0.1:$pgport/postgres"
else
  echo "postgres: skipped (no PostgreSQL server binaries)"
fi
