#!/usr/bin/env bash
# The ARM stage: cross-builds glrnn's tests for aarch64 (Debian's g++-aarch64-linux-gnu) and runs
# the kernel, format, layer and model tests under qemu-aarch64 (Debian's qemu-user) on emulated
# CPUs that each have exactly one ARM kernel path's features (Cortex-A53: NEON; Cortex-A76: NEON
# and the dot products), then with every feature the emulator offers (-cpu max: also the int8
# matrix multiplies, so the i8mm path). The kernel tests
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
# pkg-config must not offer the host's libraries (hiredis, cpp-httplib): without aarch64 copies the
# server is built without --cache-redis and its tests are left out.
export PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig
cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
  -DGLRNN_NATIVE=OFF -DGLRNN_OPENMP=OFF -DGLRNN_BUILD_EXAMPLES=ON -DGLRNN_BUILD_BENCHMARKS=ON
cmake --build build-arm -j"$jobs" --target glrnn_tests glrnn_thread_tests glrnn-generate glrnn-chat glrnn-perplexity \
  glrnn-tokenize glrnn-convert glrnn-server glrnn-bench

emulate() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$@"; }
suites="[kernels],[formats],[layers],[models]"
for cpu_path in cortex-a53:neon cortex-a76:dotprod max:i8mm; do
  cpu=${cpu_path%%:*} path=${cpu_path##*:}
  echo "--- qemu-aarch64 -cpu $cpu, kernel path $path"
  QEMU_CPU=$cpu GLRNN_KERNELS=$path emulate build-arm/tests/glrnn_tests "$suites" -w NoAssertions
done
QEMU_CPU=max emulate build-arm/tests/glrnn_thread_tests -w NoAssertions
# The programs: the README's main job (generation with a bundled demo model), on the path glrnn
# picks (i8mm) and on the portable one (greedy: the same text), then converted to q4 and again.
echo "--- the programs under qemu-aarch64 -cpu max"
generate() { QEMU_CPU=max emulate build-arm/examples/glrnn-generate -m "$1" -p "Once upon a time" -n 24 --temperature 0; }
best=$(generate models/griffin-demo)
portable=$(GLRNN_KERNELS=portable generate models/griffin-demo)
echo "$best"
if [[ "$best" != "$portable" ]]; then
  echo "arm: greedy text on the best path differs from the portable path's: $portable" >&2
  exit 1
fi
QEMU_CPU=max emulate build-arm/examples/glrnn-convert models/griffin-demo build-arm/griffin-demo-q4.safetensors --type q4
generate build-arm/griffin-demo-q4.safetensors
QEMU_CPU=max emulate build-arm/benchmarks/glrnn-bench --version
