#!/usr/bin/env bash
# scripts/setup.sh — one command on a fresh Debian 12 machine: installs the Debian packages
# apical needs (only those missing), builds it with CMake into build/, and runs the main job.
# Idempotent: a second run installs nothing and rebuilds only what changed.
#   scripts/setup.sh            install, build, run the main job
#   scripts/setup.sh --no-run   install and build only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config
          libsundials-dev libgsl-dev liblua5.4-dev lua5.4 libopenblas-dev liblapacke-dev zlib1g-dev
          valgrind clang-format gnuplot-nox clang-14 libclang-rt-14-dev
          openmpi-bin libopenmpi-dev)   # MPI: optional for the build (docs/scaling.md)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" > /dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo ${APICAL_CMAKE_FLAGS:-} > /dev/null
cmake --build build -j"$(nproc)"

if [ "${1:-}" != "--no-run" ]; then
  echo
  echo "== main job: DFC on the student-teacher task, CVODE vs the published Euler scheme =="
  build/bin/apical run examples/dfc_cvode_vs_euler.lua
fi
