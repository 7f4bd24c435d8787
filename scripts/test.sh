#!/usr/bin/env bash
# Everything the test suite needs, then the suite: system packages, the Filestack SDKs the
# conformance test drives, and `cargo test` (real servers on loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bash tests/sdk/setup.sh
# the S3-compatible server the storage tests start (tests/storage.rs, via scripts/moto.sh)
python3 -c 'import moto.server, flask' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check 'moto[server]'
# Varnish, the edge tests/edge.rs drives in front of Refract (via scripts/varnish.sh). The test runs
# its own varnishd: the package's own service is not needed, and a policy-rc.d that says no (for
# this install only) keeps it from being started, so nothing waits on it or holds its port.
if ! command -v varnishd >/dev/null && [ ! -x /usr/sbin/varnishd ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "test: installing varnish" >&2
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
  fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq varnish >/dev/null
  if trap -p EXIT | grep -q policy-rc.d; then $SUDO rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi
# nginx, the load balancer tests/cluster.rs runs in front of three Refract nodes (Debian's
# package; the test runs its own nginx as the current user in a temporary prefix). As for
# varnish, a policy-rc.d that says no keeps the package's own service from starting on port 80.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "test: installing nginx" >&2
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
  fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  if trap -p EXIT | grep -q policy-rc.d; then $SUDO rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi
# Chromium, the browser tests/browser.rs runs headless on the <picture> endpoint's page (Debian's
# package; the test starts and kills its own instances).
if ! command -v chromium >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "test: installing chromium" >&2
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
cargo test --release --all-targets "$@"
