#pragma once
// Thread count and a parallel loop over row ranges: OpenMP when the build has it, serial otherwise.

#include <algorithm>  // std::min, std::max
#include <cstdint>    // std::int64_t

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace glrnn {

/// Threads used by glrnn's kernels and by Eigen's matrix products. n <= 0 means all cores.
inline void set_num_threads(int n) {
#ifdef _OPENMP
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
#endif
  Eigen::setNbThreads(std::max(n, 1));
}

inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Calls body(lo, hi) on disjoint sub-ranges covering [begin, end). Runs serially when the work
/// (`cost_per_item` times the range) is too small to repay waking threads, which is most of the
/// time for tiny models.
template <class Body>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t cost_per_item, Body&& body) {
  const std::int64_t n = end - begin;
  if (n <= 0) return;
  constexpr std::int64_t kMinCostPerThread = 1 << 15;
  const int threads = static_cast<int>(std::min<std::int64_t>(
      num_threads(), std::max<std::int64_t>(1, n * cost_per_item / kMinCostPerThread)));
  if (threads <= 1) {
    body(begin, end);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const std::int64_t lo = begin + n * t / nt, hi = begin + n * (t + 1) / nt;
    if (lo < hi) body(lo, hi);
  }
#else
  body(begin, end);
#endif
}

}  // namespace glrnn
