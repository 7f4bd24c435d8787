#!/usr/bin/env bash
# Refract against its peers, in one run on this machine (loopback only; every load run is bounded
# by DUR). Builds release, starts Refract and the peers of ../shared/bench, and prints one table
# (also written to target/bench/results.md).
#   scripts/bench.sh            DUR=10s by default; PHOTO=… to change the 20 MP input
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=$(cd "${SHARED:-../shared}" && pwd)
PHOTOS=$SHARED/corpus/images/photos
export PHOTO=${PHOTO:-$PHOTOS/kleiber-6028x3391.jpg}
export PORT=${PORT:-8099} DUR=${DUR:-10s} OUT=${OUT:-$PWD/target/bench}
mkdir -p "$OUT"
scripts/setup.sh
cargo build --release --quiet --bin refract --example quality
"$SHARED/bench/peers.sh" stop >/dev/null 2>&1 || true
"$SHARED/bench/peers.sh" start "$PHOTOS" >/dev/null
trap '"$SHARED/bench/peers.sh" stop >/dev/null 2>&1 || true; pkill -f "refract serve --listen 127.0.0.1:$PORT" || true' EXIT

echo "== compare.sh (miss: cache=false vs sharp vs thumbor; hit vs nginx)" | tee "$OUT/compare.txt"
python3 scripts/bench_refract.py start 0
DUR=$DUR "$SHARED/bench/compare.sh" "http://127.0.0.1:$PORT" "$PHOTO" | tee -a "$OUT/compare.txt"
python3 scripts/bench_refract.py extra | tee "$OUT/extra.txt"
python3 scripts/bench_refract.py table "$OUT/compare.txt" "$OUT/extra.txt" | tee "$OUT/results.md"
echo "== srcset burst (8 widths x JPEG and WebP at once, cold) vs sharp" | tee "$OUT/srcset.txt"
python3 scripts/bench_srcset.py | tee -a "$OUT/srcset.txt"
