#!/usr/bin/env bash
# Everything the test suite needs, then the suite: system packages, the Filestack SDKs the
# conformance test drives, and `cargo test` (real servers on loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bash tests/sdk/setup.sh
# the S3-compatible server the storage tests start (tests/storage.rs, via scripts/moto.sh)
python3 -c 'import moto.server, flask' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check 'moto[server]'
cargo test --release --all-targets "$@"
