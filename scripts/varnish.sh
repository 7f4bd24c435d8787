#!/usr/bin/env bash
# Usage: varnish.sh BACKEND [PORT] [PIDFILE]
# Starts Varnish (varnishd -F, deploy/varnish/refract.vcl) on 127.0.0.1 in front of Refract and
# prints its URL once it answers. BACKEND: Refract's host:port (e.g. 127.0.0.1:8080).
# PORT: optional (empty or 0 = pick a free port). PIDFILE: optional, receives varnishd's PID.
# Environment:
#   VARNISH_FOREGROUND=1  run varnishd in this terminal instead (exec; Ctrl-C stops it)
#   VARNISH_WATCH_PID     stop varnishd when that process (a test binary) ends
#   VARNISH_VCL           another VCL file (default: deploy/varnish/refract.vcl)
#   VARNISH_STORAGE       -s argument (default: malloc,256m)
#   VARNISH_LOG           where varnishd's own output goes (default: /dev/null)
# Each run has a private working dir (-n, under $TMPDIR), removed when varnishd stops, and no
# jail (-j none): varnishd runs as whoever starts it, so neither root (no switch to the
# varnish/vcache users, which could not enter a private temp dir) nor another user need a setup.
# Install: apt-get install varnish (scripts/test.sh does it); the Debian package's own service
# is not needed and may stay stopped.
set -euo pipefail

BACKEND="${1:-}"
PORT="${2:-}"
PIDFILE="${3:-}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VCL="${VARNISH_VCL:-$ROOT/deploy/varnish/refract.vcl}"

if ! command -v varnishd >/dev/null 2>&1 && [ ! -x /usr/sbin/varnishd ]; then
  echo "varnish.sh: varnishd is not installed (apt-get install varnish; scripts/test.sh installs it)" >&2
  exit 1
fi
VARNISHD="$(command -v varnishd || echo /usr/sbin/varnishd)"

case "$BACKEND" in
  *:*) BHOST="${BACKEND%:*}"; BPORT="${BACKEND##*:}" ;;
  *) echo "varnish.sh: usage: varnish.sh BACKEND_HOST:PORT [PORT] [PIDFILE]" >&2; exit 2 ;;
esac
BHOST="${BHOST#[}"; BHOST="${BHOST%]}"   # [::1]:8080
if ! [[ "$BPORT" =~ ^[0-9]+$ ]] || [ -z "$BHOST" ]; then
  echo "varnish.sh: bad backend '$BACKEND' (want host:port)" >&2; exit 2
fi
[ -f "$VCL" ] || { echo "varnish.sh: no VCL at $VCL" >&2; exit 1; }

if [ -z "$PORT" ] || [ "$PORT" = "0" ]; then
  PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
fi
URL="http://127.0.0.1:$PORT"
if curl -s -o /dev/null --max-time 1 "$URL/"; then
  echo "varnish.sh: something already answers on $URL (port busy)" >&2; exit 1
fi

# A private working dir: varnishd's shared memory log, compiled VCL, secret; and the VCL copy
# pointed at BACKEND (the shipped file's `.host = ` and `.port = ` lines rewritten).
WORK="$(mktemp -d "${TMPDIR:-/tmp}/refract-varnish.XXXXXX")"
sed -E -e "s|^([[:space:]]*\.host[[:space:]]*=[[:space:]]*)\"[^\"]*\";|\1\"$BHOST\";|" \
  -e "s|^([[:space:]]*\.port[[:space:]]*=[[:space:]]*)\"[^\"]*\";|\1\"$BPORT\";|" "$VCL" >"$WORK/refract.vcl"

ARGS=(-F -j none -n "$WORK/n" -a "127.0.0.1:$PORT" -f "$WORK/refract.vcl"
  -s "${VARNISH_STORAGE:-malloc,256m}")

if [ "${VARNISH_FOREGROUND:-}" = "1" ]; then
  echo "varnish.sh: $URL -> $BHOST:$BPORT (working dir $WORK)" >&2
  trap 'rm -rf "$WORK"' EXIT
  "$VARNISHD" "${ARGS[@]}"
  exit $?
fi

LOG="${VARNISH_LOG:-/dev/null}"
nohup "$VARNISHD" "${ARGS[@]}" >"$LOG" 2>&1 </dev/null &
PID=$!
if [ -n "$PIDFILE" ]; then echo "$PID" >"$PIDFILE"; fi
# Clean up after varnishd (however it stops); VARNISH_WATCH_PID: also stop it when that process
# (a test binary) ends. varnishd's manager stops its worker child on SIGTERM.
WATCH="${VARNISH_WATCH_PID:-}"
nohup bash -c "
  while kill -0 $PID 2>/dev/null; do
    if [ -n '$WATCH' ] && ! kill -0 '$WATCH' 2>/dev/null; then kill $PID 2>/dev/null; break; fi
    sleep 1
  done
  for _ in \$(seq 1 50); do kill -0 $PID 2>/dev/null || break; sleep 0.2; done
  kill -9 $PID 2>/dev/null
  rm -rf '$WORK'
" >/dev/null 2>&1 </dev/null &

for _ in $(seq 1 150); do   # 150 x 0.2s = ~30s (the VCL is compiled with cc first)
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "varnish.sh: varnishd (pid $PID) exited early (VARNISH_LOG=/some/file shows why)" >&2; exit 1
  fi
  # any HTTP status (a 503 when the backend is not up yet) means the child runs the VCL
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/" || true)"
  if [ -n "$code" ] && [ "$code" != "000" ]; then
    echo "$URL"
    exit 0
  fi
  sleep 0.2
done
echo "varnish.sh: varnishd did not answer on $URL within ~30s" >&2
kill "$PID" 2>/dev/null || true
exit 1
