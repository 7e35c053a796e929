#!/bin/sh
# Installs the Debian 12 packages the build and the tests need, only when one is missing,
# so `make run` and `make test` work on a fresh machine and cost nothing on a ready one.
# `deps.sh test` (run by `make tools`, which `make test` runs) adds what only tests use;
# `deps.sh cluster` (run by `make run-cluster`) adds HAProxy.
set -eu
PKGS="build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev libjwt-dev \
libsodium-dev libsqlite3-dev libunistring-dev libcsv-dev sqlite3 libpq-dev postgresql libcmocka-dev \
python3 python3-prometheus-client curl clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
# Node.js and npm run the test tools of tools/npm (scripts/npm-tools.sh). Any node and npm on
# PATH do: NodeSource's nodejs, for one, bundles npm (and conflicts with Debian's npm package).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing="$missing nodejs npm"
fi
# Tests only: headless Chromium renders GET /docs in tests/e2e/test_docs_page.py (with a font
# for its screenshot); systemd-analyze checks contrib/hipusers.service in tests/e2e/test_service.py.
if [ "${1:-}" = test ]; then
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium fonts-dejavu-core"
  command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
fi
# HAProxy fronts several servers: scripts/cluster.sh (`make run-cluster`) and
# tests/e2e/test_cluster.py. Run in the foreground by them, never as the system service.
if [ "${1:-}" = test ] || [ "${1:-}" = cluster ]; then
  [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
fi
[ -z "$missing" ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
