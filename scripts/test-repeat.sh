#!/usr/bin/env bash
# Runs `make test` N times in a row; with LOAD=1 one busy loop per core runs beside it the
# whole time, at the tests' own priority. Stops at the first failure and prints each run's
# wall time. Usage: scripts/test-repeat.sh N [LOAD]
set -uo pipefail
n=${1:-5}
load=${2:-1}
cd "$(dirname "$0")/.."
burners=()
stop_burners() {
  for p in "${burners[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap stop_burners EXIT INT TERM
if [ "$load" != 0 ]; then
  for _ in $(seq "$(nproc)"); do
    ( while :; do :; done ) &
    burners+=($!)
  done
  echo "test-repeat: ${#burners[@]} CPU burners running" >&2
fi
for i in $(seq "$n"); do
  mkdir -p build
  start=$(date +%s)
  if ! make test >"build/repeat-$i.log" 2>&1; then
    echo "test-repeat: run $i of $n FAILED after $(( $(date +%s) - start )) s; see build/repeat-$i.log" >&2
    tail -40 "build/repeat-$i.log" >&2
    exit 1
  fi
  echo "test-repeat: run $i of $n passed in $(( $(date +%s) - start )) s" >&2
  rm -f "build/repeat-$i.log"
done
echo "test-repeat: $n of $n passed"
