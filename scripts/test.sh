#!/usr/bin/env bash
# The README's test command: installs the build packages, builds everything (library tests,
# programs, benchmarks) in Release into build/ and runs the fast tier of the tests (CTest label
# `fast`): every test but the slow parity runs, the sanitizer builds and the fuzzers, which
# .ci/run adds (README, "Tests"). 4 to 6.5 minutes on 2 cores from a fresh clone.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
  -DGLRNN_BUILD_TESTS=ON -DGLRNN_BUILD_EXAMPLES=ON -DGLRNN_BUILD_BENCHMARKS=ON
cmake --build build -j"$(nproc)"
# --no-tests=error: a build that registered no tests fails instead of passing vacuously.
ctest --test-dir build --output-on-failure --no-tests=error -j"$(nproc)" -L fast
