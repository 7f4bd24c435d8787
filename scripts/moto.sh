#!/usr/bin/env bash
# Usage: moto.sh [PORT] [PIDFILE]
# Starts moto's S3-compatible server (a real HTTP server speaking the S3 API, from PyPI) on 127.0.0.1 in the background and prints its URL.
# PORT: optional (empty or 0 = pick a free port). PIDFILE: optional, receives the server PID.
set -euo pipefail

PORT="${1:-}"
PIDFILE="${2:-}"

# `python3 -m moto.server`, not the `moto_server` script: a fresh pyenv has no shim for it yet
if ! python3 -c 'import moto.server, flask' >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check 'moto[server]' >/dev/null 2>&1 \
    || { echo "moto.sh: pip install 'moto[server]' failed" >&2; exit 1; }
fi

if [ -z "$PORT" ] || [ "$PORT" = "0" ]; then
  PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
fi

URL="http://127.0.0.1:$PORT"
if curl -s -o /dev/null --max-time 1 "$URL/"; then
  echo "moto.sh: something already answers on $URL (port busy)" >&2; exit 1
fi

LOG="${MOTO_LOG:-/dev/null}"
nohup python3 -m moto.server -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 </dev/null &
PID=$!
if [ -n "$PIDFILE" ]; then echo "$PID" >"$PIDFILE"; fi
# MOTO_WATCH_PID: stop the server when that process (a test binary) ends
if [ -n "${MOTO_WATCH_PID:-}" ]; then
  nohup bash -c "while kill -0 $MOTO_WATCH_PID 2>/dev/null; do sleep 1; done; kill $PID" >/dev/null 2>&1 </dev/null &
fi

for _ in $(seq 1 100); do   # 100 x 0.2s = ~20s
  if curl -s -o /dev/null --max-time 1 "$URL/" && kill -0 "$PID" 2>/dev/null; then
    echo "$URL"
    exit 0
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "moto.sh: moto_server (pid $PID) exited early" >&2; exit 1
  fi
  sleep 0.2
done
echo "moto.sh: moto_server did not answer on $URL within ~20s" >&2
kill "$PID" 2>/dev/null || true
exit 1
