#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the browser test against Keycloak's real login page
# (crates/mc-interop/tests/keycloak.rs). Idempotent: does nothing when both binaries are present.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium.sh: /usr/bin/chromium or /usr/bin/chromedriver is missing and this is not root;" >&2
    echo "  install them as root: apt-get install -y --no-install-recommends chromium chromium-driver" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium chromium-driver
