#!/usr/bin/env bash
# The README's test command (and CI's, through .ci/run): installs the build packages, then
#  1. builds everything (library tests, examples, benchmarks) in Release into build/ and runs CTest;
#  2. scripts/sanitize.sh: the suite under ASan + UBSan, the threads test under TSan;
#  3. scripts/fuzz.sh: each libFuzzer target for 60 seconds from the seed corpora.
# Exits non-zero as soon as a stage fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
  -DGLRNN_BUILD_TESTS=ON -DGLRNN_BUILD_EXAMPLES=ON -DGLRNN_BUILD_BENCHMARKS=ON
cmake --build build -j"$(nproc)"
# --no-tests=error: a build that registered no tests fails instead of passing vacuously.
ctest --test-dir build --output-on-failure --no-tests=error -j2

bash scripts/sanitize.sh
bash scripts/fuzz.sh --seconds 60
