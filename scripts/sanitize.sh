#!/usr/bin/env bash
# Sanitizer builds (the CTest label `sanitize`, run by .ci/run):
#  - the whole test suite (library tests and the tools' CLI tests) built with AddressSanitizer and
#    UndefinedBehaviorSanitizer into build-asan/ and run with CTest;
#  - the shared-model threads test, glrnn-server's tests and its replicas' test built with
#    ThreadSanitizer into build-tsan/ (OpenMP off: libgomp is not instrumented, so TSan would
#    report its internal synchronisation).
# Any report fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
jobs=$(nproc)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DGLRNN_SANITIZE=address,undefined \
  -DGLRNN_BUILD_TESTS=ON -DGLRNN_BUILD_EXAMPLES=ON -DGLRNN_BUILD_BENCHMARKS=OFF
cmake --build build-asan -j"$jobs"
# The fast tier, as the README's test command runs it; the slow tier's parity runs over 56k tokens
# of prefill take over 20 minutes through -O1 instrumented code on 2 cores, and the same code
# paths run under the sanitizers in the shorter generation and bad-input tests.
ctest --test-dir build-asan --output-on-failure --no-tests=error -j2 -L fast

export TSAN_OPTIONS=halt_on_error=1
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Release -DGLRNN_SANITIZE=thread -DGLRNN_OPENMP=OFF \
  -DGLRNN_BUILD_TESTS=ON -DGLRNN_BUILD_EXAMPLES=ON -DGLRNN_BUILD_BENCHMARKS=OFF
cmake --build build-tsan -j"$jobs" --target glrnn_thread_tests glrnn_server_tests glrnn-server glrnn-generate
build-tsan/tests/glrnn_thread_tests -w NoAssertions
# glrnn-server's threads (connections, workers, the scheduler, the fetching thread, the cache
# tiers' writers): its tests and the replicas' test with Redis and HAProxy, every server built
# with TSan (a report in a server's log fails the test that ran it).
build-tsan/tests/glrnn_server_tests -w NoAssertions
python3 tests/server/cluster_test.py build-tsan/examples/glrnn-server models/griffin-demo models/hgrn2-demo \
  scripts/cluster.sh build-tsan/tests/cluster
