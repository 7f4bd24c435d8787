#!/usr/bin/env bash
# Run the origin with embedded defaults: ./data for originals and cache, http://127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release -- serve "$@"
