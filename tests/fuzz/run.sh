#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a fixed time and reports the
# executions per target. Used by `make fuzz` and `make fuzz-smoke` (mk/fuzz.mk).
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [PARALLEL] [TARGET...]
#
# Each target starts from a copy of tests/fuzz/corpus/<target>/ in
# BUILD_DIR/fuzz-run/<target>/corpus (the repository's corpus is never written), with
# tests/fuzz/dict/<target>.dict when present; the reproducers kept in
# tests/fuzz/crashes/<target>/ are replayed as part of the corpus. A crash, leak, timeout or sanitizer
# report fails the run (exit 1); the reproducer is left in
# BUILD_DIR/fuzz-run/<target>/artifacts/ and the log in BUILD_DIR/fuzz-run/<target>/log.
set -u

if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS [PARALLEL] [TARGET...]" >&2
  exit 2
fi
build=$1
seconds=$2
parallel=${3:-1}
shift $(( $# >= 3 ? 3 : 2 ))

here=$(cd "$(dirname "$0")" && pwd)
bindir=$build/tests/fuzz
if [ $# -gt 0 ]; then
  targets=("$@")
else
  if [ ! -f "$bindir/targets.txt" ]; then
    echo "fuzz: $bindir/targets.txt missing: configure $build with -DHIPUSERS_FUZZ=ON first" >&2
    exit 2
  fi
  mapfile -t targets < <(grep -v '^$' "$bindir/targets.txt")
fi
[ "$parallel" -ge 1 ] 2>/dev/null || parallel=1

scratch=$build/fuzz-run
mkdir -p "$scratch"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local t=$1 dir=$scratch/$1
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  if [ -d "$here/corpus/$t" ]; then cp -R "$here/corpus/$t/." "$dir/corpus/"; fi
  local args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
              -artifact_prefix="$dir/artifacts/")
  if [ -f "$here/dict/$t.dict" ]; then args+=(-dict="$here/dict/$t.dict"); fi
  local dirs=("$dir/corpus")
  # Saved reproducers are replayed first (read only: new units go to the first dir).
  if [ -d "$here/crashes/$t" ]; then dirs+=("$here/crashes/$t"); fi
  "$bindir/$t" "${args[@]}" "${dirs[@]}" >"$dir/log" 2>&1
  echo $? >"$dir/rc"
}

echo "fuzz: ${#targets[@]} target(s), ${seconds} s each, ${parallel} at a time; scratch in $scratch"
running=0
for t in "${targets[@]}"; do
  if [ ! -x "$bindir/$t" ]; then
    echo "fuzz: $bindir/$t not built" >&2
    exit 2
  fi
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait
    running=0
  fi
done
wait

failed=0
summary=$scratch/summary.txt
{
  printf '%-16s %12s %10s %8s %10s  %s\n' target executions exec/s cov corpus result
  for t in "${targets[@]}"; do
    dir=$scratch/$t
    rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)
    units=$(find "$dir/corpus" -type f | wc -l)
    result=ok
    if [ "$rc" != 0 ]; then
      result="FAILED (exit $rc)"
      failed=1
    elif [ -z "$execs" ]; then
      result="FAILED (no final stats)"
      failed=1
    fi
    printf '%-16s %12s %10s %8s %10s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$units" "$result"
  done
} >"$summary"
cat "$summary"

if [ "$failed" != 0 ]; then
  for t in "${targets[@]}"; do
    dir=$scratch/$t
    [ "$(cat "$dir/rc" 2>/dev/null || echo 1)" = 0 ] && continue
    echo
    echo "==== $t failed; log: $dir/log"
    # the report from its first line (sanitizer, invariant or libFuzzer), then the reproducer
    marker='ERROR: |fuzz invariant failed|runtime error:|deadly signal|==[0-9]+== ?ERROR'
    if grep -qE "$marker" "$dir/log"; then
      awk -v m="$marker" '!found && $0 ~ m { found = 1 } found { print } found && /^SUMMARY:/ { exit }' \
        "$dir/log" | head -n 40
      grep -E '^(MS:|Test unit written|artifact_prefix)' "$dir/log" | cut -c1-200
    else
      tail -n 30 "$dir/log"
    fi
    for a in "$dir"/artifacts/*; do
      [ -e "$a" ] || continue
      echo "reproduce: $bindir/$t $a"
    done
  done
  echo
  echo "fuzz: FAILED (copy a reproducer to tests/fuzz/crashes/<target>/ to keep it)" >&2
  exit 1
fi
echo "fuzz: all targets ran clean (summary: $summary)"
