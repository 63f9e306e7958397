#!/usr/bin/env bash
# The ARM stage: cross-builds glrnn's tests for aarch64 (Debian's g++-aarch64-linux-gnu) and runs
# the kernel, format, layer and model tests under qemu-aarch64 (Debian's qemu-user), with every
# feature the emulator offers (-cpu max). Built without OpenMP, as Apple's clang builds glrnn, so
# the loops run on glrnn's own thread pool. Into build-arm/.
#   scripts/arm.sh        (installs the two packages first where they are missing)
# README, "Kernels and CPUs", says what this shows and what it does not (speed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh --arm
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
  -DGLRNN_NATIVE=OFF -DGLRNN_OPENMP=OFF -DGLRNN_BUILD_EXAMPLES=OFF -DGLRNN_BUILD_BENCHMARKS=OFF
cmake --build build-arm -j"$jobs" --target glrnn_tests glrnn_thread_tests

emulate() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$@"; }
for cpu in max; do
  echo "--- qemu-aarch64 -cpu $cpu"
  QEMU_CPU=$cpu emulate build-arm/tests/glrnn_tests "[kernels],[formats],[layers],[models]" -w NoAssertions
  QEMU_CPU=$cpu emulate build-arm/tests/glrnn_thread_tests -w NoAssertions
done
