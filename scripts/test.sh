#!/usr/bin/env bash
# Everything the test suite needs, then the suite: system packages, the Filestack SDKs the
# conformance test drives, and `cargo test` (real servers on loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bash tests/sdk/setup.sh
cargo test --release --all-targets "$@"
