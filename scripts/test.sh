#!/usr/bin/env bash
# The README's test command: installs the build packages, builds everything (library tests,
# examples, benchmarks) in Release into build/ and runs the test suite with CTest.
# The exit status is CTest's: 0 when every test passed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
  -DGLRNN_BUILD_TESTS=ON -DGLRNN_BUILD_EXAMPLES=ON -DGLRNN_BUILD_BENCHMARKS=ON
cmake --build build -j"$(nproc)"

# --no-tests=error: a build that registered no tests fails instead of passing vacuously.
exec ctest --test-dir build --output-on-failure --no-tests=error -j2
