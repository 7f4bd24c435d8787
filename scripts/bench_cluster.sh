#!/usr/bin/env bash
# Throughput of 1 node against 3 nodes behind nginx (consistent hashing), with the originals and
# the shared derivative tier on moto, for a hit-heavy and a miss-heavy mix. Loopback only,
# bounded by DUR. All nodes share this machine's cores: the figures say what the layering
# (nginx hop, peers, shared tier) costs and whether the nodes stay out of each other's way, not
# what three machines would do.
#   DUR=8s scripts/bench_cluster.sh        (needs a release build, nginx, wrk, moto)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${DUR:-8s}"
BIN=target/release/refract
TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

S3="$(MOTO_WATCH_PID=$$ scripts/moto.sh "" "$TMP/moto.pid")"
PIDS+=("$(cat "$TMP/moto.pid")")
for n in 1 3; do
  curl -sf -X PUT "$S3/orig$n" >/dev/null
  curl -sf -X PUT "$S3/deriv$n" >/dev/null
done

s3() { printf 'bucket = "%s"\nregion = "us-east-1"\nendpoint = "%s"\naccess_key_id = "t"\nsecret_access_key = "t"\n' "$1" "$S3"; }

# run N: start N nodes and nginx over them; print the two rows
run() {
  local n=$1 ports=() peers="" upstreams=""
  for _ in $(seq "$n"); do ports+=("$(port)"); done
  for p in "${ports[@]}"; do peers+="\"http://127.0.0.1:$p\","; upstreams+="server 127.0.0.1:$p max_fails=1 fail_timeout=2s; "; done
  { echo "[store]"; echo 'kind = "s3"'; s3 "orig$n"; echo "[shared_cache]"; s3 "deriv$n"
    echo "[cluster]"; echo "peers = [${peers%,}]"; echo 'token = "bench-cluster-token-0123"'; } > "$TMP/node$n.toml"
  for p in "${ports[@]}"; do
    # no shared decodes: each miss-heavy request decodes, as distinct sources would
    REFRACT_DECODE_CACHE_BYTES=0 "$BIN" serve --listen "127.0.0.1:$p" --data-dir "$TMP/data-$n-$p" --config "$TMP/node$n.toml" \
      >/dev/null 2>"$TMP/node-$p.log" &
    PIDS+=($!)
  done
  local lb; lb="$(port)"
  mkdir -p "$TMP/nginx$n/logs"
  cat > "$TMP/nginx$n/nginx.conf" <<EOF
worker_processes 1; events { worker_connections 1024; }
http { access_log off; upstream r { hash \$request_uri consistent; $upstreams keepalive 64; }
  server { listen 127.0.0.1:$lb; location / { proxy_pass http://r; proxy_http_version 1.1;
    proxy_set_header Connection ""; proxy_next_upstream error timeout http_502 http_503; } } }
EOF
  for p in "${ports[@]}"; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
  done
  nginx -p "$TMP/nginx$n" -c "$TMP/nginx$n/nginx.conf" -g "daemon off; pid $TMP/nginx$n/pid; error_log stderr crit;" &
  PIDS+=($!)
  sleep 0.5
  local base="http://127.0.0.1:$lb"
  local handle
  handle="$(curl -sf --data-binary @fixtures/fossa-4096x2304.jpg "$base/api/store/S3?filename=fossa.jpg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["handle"])')"
  # hit-heavy: 32 derivatives, warmed, requested round-robin
  cat > "$TMP/hit.lua" <<EOF
local i = 0
request = function() i = i + 1; return wrk.format("GET", "/resize=width:" .. (100 + (i % 32) * 10) .. "/output=format:jpg/$handle") end
EOF
  for w in $(seq 0 31); do curl -sf -o /dev/null "$base/resize=width:$((100 + w * 10))/output=format:jpg/$handle"; done
  local hit miss
  hit="$(wrk -t2 -c64 -d"$DUR" -s "$TMP/hit.lua" "$base" | awk '/Requests\/sec/ {print $2}')"
  local transforms=0
  for p in "${ports[@]}"; do
    t="$(curl -sf "http://127.0.0.1:$p/metrics" | awk '/^refract_transforms_total\{outcome="ok"\}/ {print $2}')"
    transforms=$((transforms + ${t:-0}))
  done
  # miss-heavy: every request transforms (cache=false), distinct widths
  cat > "$TMP/miss.lua" <<EOF
local i = 0
request = function() i = i + 1; return wrk.format("GET", "/cache=false/resize=width:" .. (600 + (i % 500)) .. "/output=format:jpg/$handle") end
EOF
  miss="$(wrk -t2 -c8 -d"$DUR" -s "$TMP/miss.lua" "$base" | awk '/Requests\/sec/ {print $2}')"
  echo "nodes $n: hit-heavy ${hit} req/s (64 conns via nginx) | miss-heavy ${miss} req/s (8 conns, cache=false) | hit mix: $transforms transforms for 32 derivatives"
  for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; done
  PIDS=("${PIDS[0]}")
  sleep 1
}

run 1
run 3
