#!/usr/bin/env bash
# bench/run.sh — builds the benchmarks (RelWithDebInfo, -O2) and prints their tables in
# Markdown, ready for docs/benchmarks.md. Run on an otherwise idle machine.
#   bench/run.sh [evaluations per repetition, default 200]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j"$(nproc)" --target bench_rhs > /dev/null
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores," \
     "OpenBLAS $(dpkg-query -W -f='${Version}' libopenblas0 2>/dev/null), OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-default}, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-its own choice}"
echo
build/bench/bench_rhs "${1:-200}"
