#!/usr/bin/env bash
# Everything the test suite needs, then the suite: system packages, the Filestack SDKs the
# conformance test drives, and `cargo test` (real servers on loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bash tests/sdk/setup.sh
# the S3-compatible server the storage and cluster tests start (via scripts/moto.sh)
python3 -c 'import moto.server, flask' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check 'moto[server]'

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
# apt_install PACKAGE BINARY: install Debian's PACKAGE unless BINARY is there. The tests run their
# own instances, so a policy-rc.d that says no (for this install only) keeps a package's own
# service from starting: nothing waits on it or holds its port.
apt_install() {
  if command -v "$2" >/dev/null || [ -x "/usr/sbin/$2" ]; then return; fi
  echo "test: installing $1" >&2
  local own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    own_policy=1
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
  fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null || { [ -z "$own_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -z "$own_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
}
# Varnish: the edge tests/edge.rs drives in front of Refract (via scripts/varnish.sh)
apt_install varnish varnishd
# nginx: the load balancer tests/cluster.rs runs in front of three nodes (its own, in a temp prefix)
apt_install nginx nginx
# Chromium: tests/browser.rs shows the <picture> endpoint's page headless
apt_install chromium chromium
cargo test --release --all-targets "$@"
