#!/bin/sh
# Copies the Swagger UI files GET /docs serves from the pinned npm package (tools/npm) into
# vendor/swagger-ui, where the build embeds them from. See vendor/swagger-ui/README.md.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/npm-tools.sh" "$ROOT/build/tools"
SRC=$ROOT/build/tools/node_modules/swagger-ui-dist
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt; do
  cp "$SRC/$f" "$ROOT/vendor/swagger-ui/$f"
done
echo "vendor/swagger-ui now holds swagger-ui-dist $(node -p "require('$SRC/package.json').version")"
