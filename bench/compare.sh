#!/usr/bin/env bash
# Benchmarks this server beside the peers in ../shared/bench (FastAPI, Fastify, nginx ceiling)
# in one run, with wrk. Extra targets (an older build, say) can be added with TARGETS:
#   TARGETS="before=/tmp/old/build/hipusers" bench/compare.sh --workloads get,patch
# Any other argument goes to the harness (see ../shared/bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-../shared/bench}
make -s build >/dev/null
args=(--target "hipusers=./build/hipusers serve --listen 127.0.0.1:{port} --db {db} --no-access-log")
for t in ${TARGETS:-}; do
  args+=(--target "${t%%=*}=${t#*=} serve --listen 127.0.0.1:{port} --db {db} --no-access-log")
done
# Link ids in the harness's bodies are random strings; hipusers checks that linked records
# exist, so every target runs without them (--no-links), as the harness README advises.
exec "$HARNESS/compare" "${args[@]}" --no-links "$@"
