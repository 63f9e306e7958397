#pragma once
// Thread count and parallel loops over row ranges: on OpenMP's threads when the build has it, on
// glrnn's own (core/thread_pool.hpp) otherwise.
//
// The count is one process-wide setting, read by every thread that calls into glrnn (OpenMP's own
// setting belongs to the thread that makes it, so a program's worker threads would each start as
// many threads as there are cores). Several threads sharing one Model should divide the cores:
// with 4 threads on 8 cores, set_num_threads(2) once, and each call uses 2 (docs/architecture.md §6).

#include <algorithm>  // std::min, std::max
#include <atomic>     // std::atomic
#include <cstdint>    // std::int64_t
#include <cstdlib>    // std::getenv, std::strtol
#include <thread>     // std::thread::hardware_concurrency

#ifdef _OPENMP
#include <omp.h>
#else
#include "glrnn/core/thread_pool.hpp"
#endif

namespace glrnn {

namespace detail {
inline int hardware_threads() {
#ifdef _OPENMP
  return std::max(1, omp_get_num_procs());
#else
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
#endif
}
/// The count before any set_num_threads: OMP_NUM_THREADS, or all cores. (With OpenMP, its own
/// reading of them for the thread that first asks; without, the same variable, so that scripts
/// and users set threads the same way for either build.)
inline int default_threads() {
#ifdef _OPENMP
  return std::max(1, omp_get_max_threads());
#else
  const char* text = std::getenv("OMP_NUM_THREADS");
  char* end = nullptr;
  const long n = text ? std::strtol(text, &end, 10) : 0;
  return text && end != text && n > 0 && n <= 4096 ? static_cast<int>(n) : hardware_threads();
#endif
}
#ifndef _OPENMP
/// Whether this thread is running a parallel loop's body (one flag for every kind of body).
inline bool& inside_parallel_loop() {
  thread_local bool inside = false;
  return inside;
}
struct InsideParallelLoop {
  InsideParallelLoop() { inside_parallel_loop() = true; }
  ~InsideParallelLoop() { inside_parallel_loop() = false; }
};
#endif
inline std::atomic<int>& thread_count_slot() {
  static std::atomic<int> slot{default_threads()};
  return slot;
}
}  // namespace detail

/// Threads every glrnn call uses, whichever thread makes it. n <= 0 means all cores. Until it is
/// called, OMP_NUM_THREADS holds.
inline void set_num_threads(int n) {
  detail::thread_count_slot().store(n <= 0 ? detail::hardware_threads() : n, std::memory_order_relaxed);
}

inline int num_threads() { return detail::thread_count_slot().load(std::memory_order_relaxed); }

/// Calls body(thread, lo, hi) on disjoint sub-ranges covering [begin, end), on at most
/// max_threads threads (thread in [0, that)). Runs serially when the work (`cost_per_item` times
/// the range) is too small to repay waking threads, which is most of the time for tiny models.
/// The range is cut into a few chunks per thread that the threads take as they finish: on a
/// shared machine one core is often slower, and equal halves would leave the other waiting.
template <class Body>
void parallel_chunks(std::int64_t begin, std::int64_t end, std::int64_t cost_per_item, int max_threads, Body&& body) {
  const std::int64_t n = end - begin;
  if (n <= 0) return;
  constexpr std::int64_t kMinCostPerThread = 1 << 16;
  const std::int64_t work = n * std::max<std::int64_t>(cost_per_item, 1);
  const int threads = static_cast<int>(std::min<std::int64_t>(
      {static_cast<std::int64_t>(std::max(1, max_threads)), n, std::max<std::int64_t>(1, work / kMinCostPerThread)}));
  if (threads <= 1) {
    body(0, begin, end);
    return;
  }
  constexpr std::int64_t kChunksPerThread = 8;
  const std::int64_t chunks = std::min<std::int64_t>(n, std::max<std::int64_t>(threads, std::min<std::int64_t>(
                                                                threads * kChunksPerThread, work / kMinCostPerThread)));
  std::atomic<std::int64_t> next{0};
  auto take_chunks = [&](int t) {
    for (std::int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      const std::int64_t lo = begin + n * c / chunks, hi = begin + n * (c + 1) / chunks;
      if (lo < hi) body(t, lo, hi);
    }
  };
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  take_chunks(omp_get_thread_num());
#else
  // A loop inside a loop's body runs on the thread that reached it, as OpenMP's nested regions do.
  if (detail::inside_parallel_loop()) {
    take_chunks(0);
    return;
  }
  auto on_worker = [&](int t) {
    const detail::InsideParallelLoop mark;
    take_chunks(t);
  };
  detail::this_thread_pool().run(threads, on_worker);
#endif
}

/// Calls body(lo, hi) on disjoint sub-ranges covering [begin, end), on up to num_threads() threads.
template <class Body>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t cost_per_item, Body&& body) {
  parallel_chunks(begin, end, cost_per_item, num_threads(),
                  [&](int, std::int64_t lo, std::int64_t hi) { body(lo, hi); });
}

}  // namespace glrnn
