// The machine's limits as glrnn's kernels meet them, compiled once per SIMD kernel path (probes.hpp
// has core/each_simd_path.hpp include it inside each path's target region, after `using
// namespace glrnn::simd::<path>`): a
// streaming read of memory, and the peak rates of float32 FMAs and of the integer dot products
// the integer formats use. No include guard, no includes.

/// Σ of n floats read as Streams contiguous parts in lockstep (n a multiple of Streams · 4 ·
/// kLanes), each part prefetched into L2 a page ahead when `prefetch` is set: more misses in
/// flight than one sequential stream gets, as the decode kernels do with their prefetches
/// (docs/kernels.md §3). Which mix reaches the limit differs between CPUs: the probe tries several.
template <int Streams>
inline float probe_read_streams(const float* p, std::int64_t n, bool prefetch) {
  constexpr std::int64_t kStep = 4 * kLanes;  // floats per stream per iteration
  constexpr std::int64_t kAhead = 4096 / sizeof(float);
  const std::int64_t part = n / Streams;
  F acc[Streams][4];
  GLRNN_UNROLL
  for (int s = 0; s < Streams; ++s)
    for (F& a : acc[s]) a = zero();
  for (std::int64_t i = 0; i < part; i += kStep) {
    GLRNN_UNROLL
    for (int s = 0; s < Streams; ++s) {
      const float* q = p + s * part + i;
      if (prefetch && i + kAhead < part)
        for (std::int64_t b = 0; b < kStep; b += 64 / sizeof(float)) prefetch_l2(q + kAhead + b);
      GLRNN_UNROLL
      for (int k = 0; k < 4; ++k) acc[s][k] = add(acc[s][k], load(q + k * kLanes));
    }
  }
  F total = zero();
  for (int s = 0; s < Streams; ++s) total = add(total, add(add(acc[s][0], acc[s][1]), add(acc[s][2], acc[s][3])));
  return hsum(total);
}

/// Σ of n floats in `streams` streams (1, 2, 4 or 8).
inline float probe_read_sum(const float* p, std::int64_t n, int streams, bool prefetch) {
  switch (streams) {
    case 1: return probe_read_streams<1>(p, n, prefetch);
    case 2: return probe_read_streams<2>(p, n, prefetch);
    case 4: return probe_read_streams<4>(p, n, prefetch);
    default: return probe_read_streams<8>(p, n, prefetch);
  }
}

/// `iterations` rounds of 12 independent FMAs on registers: 2 · 12 · kLanes FLOPs a round.
inline float probe_fma(std::int64_t iterations, float seed) {
  F acc[12];
  GLRNN_UNROLL
  for (int j = 0; j < 12; ++j) acc[j] = set1(seed + static_cast<float>(j));
  const F a = set1(0.999f), b = set1(1e-3f);
  for (std::int64_t i = 0; i < iterations; ++i) {
    GLRNN_UNROLL
    for (int j = 0; j < 12; ++j) acc[j] = fma(acc[j], a, b);
  }
  F total = zero();
  for (const F& v : acc) total = add(total, v);
  return hsum(total);
}

/// `iterations` rounds of 12 independent int8 dot products of the kind the integer kernels run
/// (VNNI's u8 x s8, or int16 pairs without it): 2 · 12 · 4 · kLanes integer ops a round (a
/// multiply and an add per byte pair; an int16 pair counts as 2 of them). A template so that paths
/// without dot_u8s8 (NEON) never compile that branch.
template <class Vector = I>
inline std::int32_t probe_int8(std::int64_t iterations, std::int32_t seed) {
  Vector acc[12];
  GLRNN_UNROLL
  for (int j = 0; j < 12; ++j) acc[j] = set1_i32(seed + j);
  const I a = set1_i8(3), b = set1_i8(-2);
  for (std::int64_t i = 0; i < iterations; ++i) {
    GLRNN_UNROLL
    for (int j = 0; j < 12; ++j) {
      if constexpr (kVnni) acc[j] = dot_u8s8(acc[j], a, b);
      else acc[j] = dot_i16(acc[j], a, b);
    }
  }
  I total = zero_i();
  for (const I& v : acc) total = add_i32(total, v);
  return hsum_i32(total);
}

/// Integer ops one probe_int8 round counts.
constexpr double kInt8OpsPerRound = 12.0 * 2 * 4 * kLanes / (kVnni ? 1 : 2);
constexpr double kFmaFlopsPerRound = 12.0 * 2 * kLanes;
