#!/usr/bin/env bash
# Plugins and webhooks on one node (embedded SQLite), two measurements:
#
# 1. Requests/s through a plugin's public route (GET /ext/bench/bench/ping)
#    against a plain sync run of a script returning the same value (POST
#    /v1/scripts/hello/run), wrk with 16 connections on 2 threads for
#    DURATION seconds each, and their ratio. Both run a fresh isolate in a
#    jailed host; the route adds its lookup, matching and response mapping.
# 2. Signed deliveries/s: ENDPOINTS outgoing endpoints (default 50) on one
#    event type, EVENTS events published (default 200), so ENDPOINTS x EVENTS
#    deliveries, each signed per Standard Webhooks and POSTed to a local
#    receiver (Deno.serve, counting), the events published by PUBLISHERS
#    clients at once (default 4). Time from the first publish to the last
#    delivery received.
#
#   bench/plugins.sh [DURATION]    (needs wrk and Deno: npm @deno/linux-x64-glibc, or $DENO)
set -euo pipefail
[ -n "${TRACE:-}" ] && set -x
cd "$(dirname "$0")/.."
duration=${1:-10}
endpoints=${ENDPOINTS:-50}
events=${EVENTS:-200}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
deno=${DENO:-/tmp/deno/node_modules/@deno/linux-x64-glibc/deno}
[ -x "$deno" ] || { echo "no Deno at $deno (see ../shared/anchors/deno-sidecar/README.md)"; exit 1; }
if [ -z "${CITADEL:-}" ]; then cargo build --release -q -p citadel; fi
bin=${CITADEL:-$PWD/target/release/citadel}
work=$(mktemp -d)
trap 'for p in ${serve_pid:-} ${receiver_pid:-} ${anchor_pid:-}; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

port=$((20000 + RANDOM % 20000))
rport=$((port + 1))
(cd "$work" && CITADEL_EGRESS_ALLOW_PRIVATE=true exec "$bin" serve --listen 127.0.0.1:$port --data-dir "$work/data" >"$work/serve.log" 2>&1) &
serve_pid=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
(cd "$work" && "$bin" admin create-tenant bench --data-dir "$work/data" >/dev/null)
token=$(cd "$work" && "$bin" admin create-token --tenant bench --role owner --data-dir "$work/data" 2>/dev/null | tail -1)
H=(-H "Authorization: Bearer $token")
J=(-H 'Content-Type: application/json')
api=127.0.0.1:$port

# The plugin and the script, answering the same value.
mkdir -p "$work/plugin"
cat > "$work/plugin/citadel-plugin.json" <<'JSON'
{ "slug": "bench", "name": "Bench", "version": "1.0.0", "entry": "main.js",
  "routes": [{ "method": "GET", "path": "/ping", "auth": "public" }] }
JSON
cat > "$work/plugin/main.js" <<'JS'
route("GET", "/ping", async () => ({ status: 200, body: { processed: 3 } }));
JS
"$bin" plugin pack "$work/plugin" --out "$work/bench.tar.gz" >/dev/null 2>&1
curl -sf "${H[@]}" -H 'Content-Type: application/gzip' --data-binary @"$work/bench.tar.gz" "$api/v1/plugins" >/dev/null
curl -sf "${H[@]}" -X POST "$api/v1/plugins/bench/enable" >/dev/null
curl -sf "${H[@]}" "${J[@]}" "$api/v1/scripts" -d '{"name":"hello","source":"return {processed: 3};"}' >/dev/null
curl -sf "127.0.0.1:$port/ext/bench/bench/ping" | grep -q '"processed":3' || { echo "the route did not answer"; exit 1; }
cat > "$work/run.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"input": null}'
LUA

measure() { # NAME URL ARGS...
  local name=$1 url=$2; shift 2
  local out rps p50 p99 non2xx
  out=$(wrk -t2 -c16 -d"${duration}s" --latency "$@" "$url")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  printf '%-28s %10s req/s   p50 %8s   p99 %8s   non-2xx: %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}" >&2
  echo "$rps"
}

ext=$(measure "plugin route /ext/…" "http://$api/ext/bench/bench/ping")
run=$(measure "sync script run" "http://$api/v1/scripts/hello/run" -s "$work/run.lua" "${H[@]}")
awk -v e="$ext" -v r="$run" 'BEGIN { printf "ratio: route / sync run = %.2f\n", e / r }'
# The Deno-sidecar anchor on the same machine in the same run (ANCHOR_SKIP=1
# leaves it out): a worker per execution, as bench/runs.sh measures it.
anchor=${ANCHOR:-$PWD/../shared/anchors/deno-sidecar}
if [ -z "${ANCHOR_SKIP:-}" ] && [ -f "$anchor/server.js" ]; then
  aport=$((port + 2))
  (cd "$anchor" && PORT=$aport exec "$deno" run --unstable-worker-options --allow-net=127.0.0.1 --allow-read --allow-env server.js >"$work/anchor.log" 2>&1) &
  anchor_pid=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$aport/health" >/dev/null && break; sleep 0.1; done
  deno_rps=$(measure "anchor (Deno worker per run)" "http://127.0.0.1:$aport/execute" -s "$anchor/post.lua")
  kill "$anchor_pid" 2>/dev/null || true
  awk -v e="$ext" -v d="$deno_rps" 'BEGIN { printf "ratio: route / anchor = %.1fx\n", e / d }'
fi

# Deliveries: a counting receiver, ENDPOINTS endpoints, EVENTS events.
cat > "$work/receiver.ts" <<'TS'
let n = 0, first = 0, last = 0;
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen() {} }, async (req) => {
  if (new URL(req.url).pathname === "/stats") return Response.json({ n, first, last });
  await req.arrayBuffer();
  const now = Date.now();
  if (n === 0) first = now;
  n++;
  last = now;
  return new Response("ok");
});
TS
"$deno" run --allow-net=127.0.0.1 "$work/receiver.ts" "$rport" >"$work/receiver.log" 2>&1 &
receiver_pid=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$rport/stats" >/dev/null && break; sleep 0.1; done
key=$(python3 -c 'import base64, os; print("whsec_" + base64.b64encode(os.urandom(32)).decode())')
curl -sf "${H[@]}" "${J[@]}" "$api/v1/secrets" -d "{\"name\":\"BENCH_KEY\",\"value\":\"$key\"}" >/dev/null
endpoint=$(python3 -c 'import json, sys; print(json.dumps({"source": "api_version: v1\non: [\"bench.tick\"]\ndelivery:\n  url: \"http://127.0.0.1:%s/in\"\n  signing:\n    secret: \"${SECRET:BENCH_KEY}\"\n" % sys.argv[1]}))' "$rport")
for i in $(seq "$endpoints"); do
  curl -sf "${H[@]}" "${J[@]}" -X PUT "$api/v1/webhooks/e$i" -d "$endpoint" >/dev/null
done
total=$((endpoints * events))
start=$(date +%s%3N)
# PUBLISHERS clients publish at once (default 4).
seq "$events" | xargs -P "${PUBLISHERS:-4}" -I{} curl -sf "${H[@]}" "${J[@]}" "$api/v1/events" \
  -d '{"type":"bench.tick","data":{"i":{}}}' -o /dev/null
published=$(date +%s%3N)
for _ in $(seq 600); do
  n=$(curl -sf "127.0.0.1:$rport/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["n"])')
  [ "$n" -ge "$total" ] && break
  sleep 0.1
done
stats=$(curl -sf "127.0.0.1:$rport/stats")
python3 - "$stats" "$start" "$published" "$total" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); start, published, total = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
took = (s["last"] - start) / 1000
print(f"deliveries: {s['n']} of {total} received in {took:.2f} s from the first publish "
      f"({(published - start) / 1000:.2f} s publishing): {s['n'] / took:.0f} signed deliveries/s")
PY
