#pragma once
// The machine's limits, measured in the benchmark's own process with the same threads and the
// same instruction set as the kernels that run: streaming read bandwidth, float32 FMA peak and
// int8 dot-product peak. Compiled for every path (like the library's kernels), so a build without
// -march measures what its kernels can reach (docs/kernels.md §6).

#include <algorithm>  // std::max
#include <chrono>     // std::chrono::steady_clock
#include <cstdint>    // std::int64_t, std::int32_t
#include <vector>     // std::vector

#include <glrnn/core/cpu.hpp>
#include <glrnn/core/simd.hpp>
#include <glrnn/core/threading.hpp>

namespace glrnn::bench::probe {
/// The active path's probes as function pointers.
struct Probes {
  float (*read_sum)(const float*, std::int64_t, int streams, bool prefetch);
  float (*fma)(std::int64_t, float);
  std::int32_t (*int8)(std::int64_t, std::int32_t);
  double fma_flops_per_round, int8_ops_per_round;
};

/// A path's probes, where this architecture compiled the path (specialised per path by
/// probes_path-inl.hpp); empty otherwise.
template <KernelPath>
struct PathProbes {
  static constexpr bool kCompiled = false;
  static Probes get() { return {}; }
};
}  // namespace glrnn::bench::probe

#define GLRNN_EACH_PATH_SCOPE bench
#define GLRNN_EACH_PATH_TEXT "probes-inl.hpp"
#define GLRNN_EACH_PATH_AFTER "probes_path-inl.hpp"
#include <glrnn/core/each_simd_path.hpp>

namespace glrnn::bench {

namespace probe {
inline Probes for_path(KernelPath path) {
  switch (path) {
#define GLRNN_PATH_CASE(value, name)                                                        \
  case KernelPath::value:                                                                   \
    if (PathProbes<KernelPath::value>::kCompiled) return PathProbes<KernelPath::value>::get(); \
    break;
    GLRNN_KERNEL_PATHS(GLRNN_PATH_CASE)
#undef GLRNN_PATH_CASE
  }
  return {// portable: plain loops
          [](const float* p, std::int64_t n, int, bool) {
            float acc[16] = {};
            for (std::int64_t i = 0; i < n; i += 16)
              for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
            float s = 0;
            for (float a : acc) s += a;
            return s;
          },
          [](std::int64_t iterations, float seed) {
            float acc[16];
            for (int j = 0; j < 16; ++j) acc[j] = seed + static_cast<float>(j);
            for (std::int64_t i = 0; i < iterations; ++i)
              for (float& a : acc) a = a * 0.999f + 1e-3f;
            float s = 0;
            for (float a : acc) s += a;
            return s;
          },
          [](std::int64_t iterations, std::int32_t seed) {
            std::int32_t acc[16];
            for (int j = 0; j < 16; ++j) acc[j] = seed + j;
            for (std::int64_t i = 0; i < iterations; ++i)
              for (std::int32_t& a : acc) a += 3 * -2 + 3 * -2 + 3 * -2 + 3 * -2 + static_cast<std::int32_t>(i & 1);
            std::int32_t s = 0;
            for (std::int32_t a : acc) s += a;
            return s;
          },
          32.0, 128.0};
}

/// Runs body(thread) on every thread at once and returns the time the slowest took, in seconds.
template <class Body>
double on_all_threads(Body&& body) {
  const auto t0 = std::chrono::steady_clock::now();
  parallel_chunks(0, num_threads(), std::int64_t{1} << 40, num_threads(), [&](int, std::int64_t lo, std::int64_t hi) {
    for (std::int64_t t = lo; t < hi; ++t) body(t);
  });
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace probe

/// Streaming read bandwidth in GB/s with the kernels' threads and instruction set: summing 1 GiB,
/// split over the threads like the matrix-vector kernels, each thread reading its share as 1, 2, 4
/// or 8 streams, with and without software prefetch; the best of all, two passes each. One
/// sequential stream per thread without prefetch (this probe until it learned the others) read
/// 38-44 GB/s on a Zen 5 where bf16 decode itself reads 60+: a probe that reads less than the
/// kernels makes every ratio to it meaningless.
struct ReadBandwidth {
  double gb_s = 0.0;
  int streams = 1;  // per thread, in the best pass
  bool prefetch = false;
};
inline ReadBandwidth measure_read_bandwidth() {
  const probe::Probes p = probe::for_path(kernel_path());
  const std::int64_t n = std::int64_t{1} << 28;
  std::vector<float> buffer(static_cast<std::size_t>(n), 1.0f);
  volatile float sink = 0.0f;
  ReadBandwidth best;
  for (int streams : {1, 2, 4, 8})
    for (bool prefetch : {false, true})
      for (int pass = 0; pass < 2; ++pass) {
        const auto t0 = std::chrono::steady_clock::now();
        float partial[256] = {};
        parallel_for(0, n / 1024, 1 << 12, [&](std::int64_t lo, std::int64_t hi) {
          partial[(lo * 256) / (n / 1024)] = p.read_sum(buffer.data() + lo * 1024, (hi - lo) * 1024, streams, prefetch);
        });
        const double gb_s = static_cast<double>(n) * sizeof(float) /
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9;
        if (gb_s > best.gb_s) best = {gb_s, streams, prefetch};
        for (float x : partial) sink = sink + x;
      }
  return best;
}

/// Float32 FMA peak in GFLOP/s on all the kernels' threads at once (registers only).
inline double measure_fma_gflops() {
  const probe::Probes p = probe::for_path(kernel_path());
  constexpr std::int64_t kRounds = 1 << 24;
  volatile float sink = 0.0f;
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    const double seconds = probe::on_all_threads([&](std::int64_t t) { sink = sink + p.fma(kRounds, static_cast<float>(t)); });
    best = std::max(best, static_cast<double>(num_threads()) * kRounds * p.fma_flops_per_round / seconds / 1e9);
  }
  return best;
}

/// Int8 dot-product peak in GOP/s (a multiply and an add per byte pair) on all threads at once.
inline double measure_int8_gops() {
  const probe::Probes p = probe::for_path(kernel_path());
  constexpr std::int64_t kRounds = 1 << 24;
  volatile std::int32_t sink = 0;
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    const double seconds = probe::on_all_threads([&](std::int64_t t) { sink = sink + p.int8(kRounds, static_cast<std::int32_t>(t)); });
    best = std::max(best, static_cast<double>(num_threads()) * kRounds * p.int8_ops_per_round / seconds / 1e9);
  }
  return best;
}

}  // namespace glrnn::bench
