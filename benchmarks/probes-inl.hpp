// The machine's limits as glrnn's kernels meet them, compiled once per x86 kernel path (included by
// probes.hpp inside each path's target region, after `using namespace glrnn::simd::<path>`): a
// streaming read of memory, and the peak rates of float32 FMAs and of the integer dot products
// the integer formats use. No include guard, no includes.

/// Σ of n floats (n a multiple of 8·kLanes), eight independent vector streams per thread.
inline float probe_read_sum(const float* p, std::int64_t n) {
  F acc[8] = {zero(), zero(), zero(), zero(), zero(), zero(), zero(), zero()};
  for (std::int64_t i = 0; i < n; i += 8 * kLanes) {
    GLRNN_UNROLL
    for (int j = 0; j < 8; ++j) acc[j] = add(acc[j], load(p + i + j * kLanes));
  }
  return hsum(add(add(add(acc[0], acc[1]), add(acc[2], acc[3])), add(add(acc[4], acc[5]), add(acc[6], acc[7]))));
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
/// multiply and an add per byte pair; an int16 pair counts as 2 of them).
inline std::int32_t probe_int8(std::int64_t iterations, std::int32_t seed) {
  I acc[12];
  GLRNN_UNROLL
  for (int j = 0; j < 12; ++j) acc[j] = set1_i32(seed + j);
  const I a = set1_i8(3), b = set1_i8(-2);
  for (std::int64_t i = 0; i < iterations; ++i) {
    GLRNN_UNROLL
    for (int j = 0; j < 12; ++j) acc[j] = kVnni ? dot_u8s8(acc[j], a, b) : dot_i16(acc[j], a, b);
  }
  I total = zero_i();
  for (const I& v : acc) total = add_i32(total, v);
  return hsum_i32(total);
}

/// Integer ops one probe_int8 round counts.
constexpr double kInt8OpsPerRound = 12.0 * 2 * 4 * kLanes / (kVnni ? 1 : 2);
constexpr double kFmaFlopsPerRound = 12.0 * 2 * kLanes;
