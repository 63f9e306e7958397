#!/usr/bin/env bash
# The ARM stage: cross-builds glrnn's tests for aarch64 (Debian's g++-aarch64-linux-gnu) and runs
# the kernel, format, layer and model tests under qemu-aarch64 (Debian's qemu-user) on emulated
# CPUs that each have exactly one ARM kernel path's features (Cortex-A53: NEON; Cortex-A76: NEON
# and the dot products), then with every feature the emulator offers (-cpu max). The kernel tests
# compare every path the CPU has with the scalar reference; forcing the CPU's best path with
# GLRNN_KERNELS also checks that the path is detected (a path the CPU lacks is an error). Built
# without OpenMP, as Apple's clang builds glrnn, so the loops run on glrnn's own thread pool.
# Into build-arm/.
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
suites="[kernels],[formats],[layers],[models]"
for cpu_path in cortex-a53:neon cortex-a76:dotprod; do
  cpu=${cpu_path%%:*} path=${cpu_path##*:}
  echo "--- qemu-aarch64 -cpu $cpu, kernel path $path"
  QEMU_CPU=$cpu GLRNN_KERNELS=$path emulate build-arm/tests/glrnn_tests "$suites" -w NoAssertions
done
echo "--- qemu-aarch64 -cpu max, the path glrnn picks"
QEMU_CPU=max emulate build-arm/tests/glrnn_tests "$suites" -w NoAssertions
QEMU_CPU=max emulate build-arm/tests/glrnn_thread_tests -w NoAssertions
