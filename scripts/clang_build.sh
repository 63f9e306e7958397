#!/usr/bin/env bash
# Builds the library, its programs, tests and benchmarks with clang (the CTest label `clang`, run
# by .ci/run right after the fast tier): the users' other compiler, Apple clang among them, is
# stricter than g++ in places (a lambda may not capture a structured binding in C++17), and the
# fuzzers alone would otherwise be the first clang to see a header. -O0 and no OpenMP (clang's
# libomp is another package): this checks that the code compiles and links, not its speed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh --clang
cmake -S . -B build-clang -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug -DGLRNN_OPENMP=OFF \
  -DGLRNN_BUILD_TESTS=ON -DGLRNN_BUILD_EXAMPLES=ON -DGLRNN_BUILD_BENCHMARKS=ON
cmake --build build-clang -j"$(nproc)"
echo "clang_build: every target builds with $(clang++-14 --version | head -1)"
