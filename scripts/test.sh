#!/usr/bin/env bash
# scripts/test.sh — builds (if needed) and runs the whole test suite with ctest.
#   scripts/test.sh [BUILD_DIR] [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" ${APICAL_CMAKE_FLAGS:-} > /dev/null
fi
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j2 "$@"
