#!/usr/bin/env bash
# Benchmarks this server beside the peers in ../shared/bench (FastAPI, Fastify, nginx ceiling)
# in one run, with wrk. Extra targets (an older build, say) can be added with TARGETS:
#   TARGETS="before=/tmp/old/build/hipusers" bench/compare.sh --workloads get,patch
# --pg adds hipusers on PostgreSQL, as two more targets of the same run (scripts/cluster.sh
# starts a PostgreSQL of its own for each, fsync on, and stops it afterwards):
#   hipusers-pg1      one server on PostgreSQL
#   hipusers-pg2+ha   two servers on one PostgreSQL behind HAProxy (round robin)
# Their srv cpu and srv MiB cover the servers, HAProxy and the script's shell, not PostgreSQL
# (its own process group: its CPU is in "other cpu").
#   bench/compare.sh --pg --no-peers --workloads get,patch,mix --users 5000 --duration 5 --repeat 3
# Any other argument goes to the harness (see ../shared/bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-../shared/bench}
pg=0
rest=()
for a in "$@"; do
  if [ "$a" = --pg ]; then pg=1; else rest+=("$a"); fi
done
make -s build >/dev/null
args=(--target "hipusers=./build/hipusers serve --listen 127.0.0.1:{port} --db {db} --no-access-log")
for t in ${TARGETS:-}; do
  args+=(--target "${t%%=*}=${t#*=} serve --listen 127.0.0.1:{port} --db {db} --no-access-log")
done
if [ "$pg" = 1 ]; then
  ./scripts/deps.sh cluster
  # {db} is a fresh path in the target's own folder: the cluster's folder sits beside it
  # autovacuum_naptime=1s: the seeded tables are analyzed before the measured window, as a
  # database in steady state is (by default, up to a minute after the seeding, plans made for
  # an empty table are used: GETs scan the tenant's rows; see docs/scaling-figures.md)
  cluster="scripts/cluster.sh run {db}.cluster --bin ./build/hipusers --listen 127.0.0.1:{port} --pg-conf autovacuum_naptime=1s"
  args+=(--target "hipusers-pg1=exec $cluster --servers 1 --no-proxy -- --no-access-log")
  args+=(--target "hipusers-pg2+ha=exec $cluster --servers 2 -- --no-access-log")
fi
# Link ids in the harness's bodies are random strings; hipusers checks that linked records
# exist, so every target runs without them (--no-links), as the harness README advises.
exec "$HARNESS/compare" "${args[@]}" --no-links ${rest[@]+"${rest[@]}"}
