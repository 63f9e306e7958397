#!/usr/bin/env bash
# glrnn-bench decode built twice, as glrnn's own programs are (GLRNN_NATIVE=ON: -march=native)
# and as a user's program is (GLRNN_NATIVE=OFF: the compiler's default flags), run one after the
# other on the same geometry: the kernels are chosen at run time, so the two should agree within
# the machine's run-to-run spread (README, "Kernels and CPUs").
# Usage: bash scripts/bench-native-off.sh [config.json] [extra glrnn-bench decode flags...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

config=${1:-tests/data/configs/recurrentgemma-2b/config.json}
shift || true
for native in ON OFF; do
  cmake -S . -B "build-native-$native" -DCMAKE_BUILD_TYPE=Release -DGLRNN_NATIVE=$native \
    -DGLRNN_BUILD_TESTS=OFF -DGLRNN_BUILD_EXAMPLES=OFF -DGLRNN_BUILD_BENCHMARKS=ON > /dev/null
  cmake --build "build-native-$native" -j"$(nproc)" --target glrnn-bench > /dev/null
done
for native in ON OFF; do
  echo "== GLRNN_NATIVE=$native"
  "build-native-$native/benchmarks/glrnn-bench" decode --config "$config" --threads 2 --prefill 512 --steps 8 "$@"
done
