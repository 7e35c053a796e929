#!/bin/sh
# Installs the Node tools the tests run (Stoplight Prism for the contract test, Redocly CLI
# to lint docs/openapi.json, swagger-ui-dist to check the vendored copy in vendor/swagger-ui)
# under DEST (default build/tools), at the exact versions of tools/npm/package-lock.json.
# Does nothing when DEST already holds that lock's install; node and npm come from
# scripts/deps.sh.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$ROOT/build/tools}
SRC=$ROOT/tools/npm
if [ -x "$DEST/node_modules/.bin/prism" ] && [ -x "$DEST/node_modules/.bin/redocly" ] && cmp -s "$SRC/package-lock.json" "$DEST/package-lock.json" \
   && cmp -s "$SRC/package.json" "$DEST/package.json"; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "npm is missing: run scripts/deps.sh" >&2; exit 1; }
echo "installing test tools (tools/npm) into $DEST" >&2
rm -rf "$DEST"
mkdir -p "$DEST"
cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
# npm ci: exactly the lock's versions; no install scripts run (none of these needs one).
npm ci --prefix "$DEST" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
for tool in prism redocly; do
  [ -x "$DEST/node_modules/.bin/$tool" ] || { echo "$tool did not install into $DEST" >&2; exit 1; }
done
