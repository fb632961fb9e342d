#!/usr/bin/env bash
# tests/fuzz/run.sh — runs every libFuzzer harness of a fuzz build for SECONDS each, on a copy
# of its seed corpus tests/fuzz/corpus/<name>/ (fuzz_model also reads examples/ and models/),
# and prints executions and crashes per harness; exits 1 if any harness found a crash (its
# input is then in the work directory, printed).
#   CC=clang-14 cmake -S . -B build-fuzz -DAPICAL_FUZZ=ON -DBUILD_TESTING=OFF
#   cmake --build build-fuzz --target fuzz_all
#   tests/fuzz/run.sh [SECONDS] [BUILD_DIR] [NAME ...]
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-30}
build=${2:-build-fuzz}
shift 2 2>/dev/null || shift $#
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do n=$(basename "$f" .c); names+=("${n#fuzz_}"); done
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/apical-fuzz.XXXXXX")
status=0
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
for n in "${names[@]}"; do
  bin="$build/bin/fuzz_$n"
  [ -x "$bin" ] || { echo "fuzz: $bin is not built"; status=1; continue; }
  mkdir -p "$work/$n/corpus"
  cp -r "tests/fuzz/corpus/$n/." "$work/$n/corpus/" 2>/dev/null
  extra=()
  [ "$n" = model ] && extra=(examples models)
  "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 \
    -artifact_prefix="$work/$n/" "$work/$n/corpus" "${extra[@]}" > "$work/$n/log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$n/log" | grep -o '[0-9]*$')
  crashes=$(find "$work/$n" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' -o -maxdepth 1 \
    -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
  echo "fuzz_$n: ${execs:-?} executions in ${secs} s, $crashes crash(es), exit $rc"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    status=1
    grep -m3 -E 'ERROR|SUMMARY|fuzz_' "$work/$n/log"
    ls "$work/$n"/crash-* "$work/$n"/leak-* "$work/$n"/timeout-* "$work/$n"/oom-* 2>/dev/null
  fi
done
[ "$status" -eq 0 ] && rm -rf "$work" || echo "fuzz: logs and inputs in $work"
exit "$status"
