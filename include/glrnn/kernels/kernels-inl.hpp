// The SIMD kernels, written once against the primitives of core/simd.hpp and compiled for each SIMD
// path: kernels/kernels.hpp has core/each_simd_path.hpp include this file inside each path's
// target region, in namespace glrnn::kernels::<path> after `using namespace glrnn::simd::<path>`.
// No include guard; the includes are the element-wise functions, and at the end the kernels of
// paths with instructions of their own (GLRNN_SIMD_I8MM, GLRNN_SIMD_BF16, GLRNN_SIMD_AMX),
// compiled the same way. The layouts and the arithmetic are described in docs/kernels.md §3-4.

#include "glrnn/kernels/elementwise-inl.hpp"

// ---- reading stored units --------------------------------------------------------------------

/// kLanes weights of a float format as float32.
template <class Format>
inline F load_units(const typename Format::Unit* p) {
  if constexpr (Format::kLayout == UnitLayout::Float32 || Format::kLayout == UnitLayout::Bfloat16) {
    return load(p);
  } else {
    float t[kLanes];
    Format::dequantize(p, kLanes, t);
    return load(t);
  }
}

/// The f16 scale of an integer unit, through F16C where the layout has one.
template <class Format>
inline float unit_scale(const typename Format::Unit& u) {
  if constexpr (leads_with_f16_scale(Format::kLayout)) return half_to_float(u.scale);
  else return Format::scale(u);
}

// ---- each integer format's codec ----------------------------------------------------------------

/// Vectors across a group's rows: 1 on AVX-512, 2 halves where a vector is 32 bytes.
constexpr int kGroupHalves = static_cast<int>(kRowGroup) / kLanes;
static_assert(8 * kBlocksPerVector == kLanes, "a vector of rows holds the 8 steps of kBlocksPerVector blocks");

/// A format's SIMD decoding lives with the format, in formats/<name>-inl.hpp, included below and
/// so compiled for this path. Its specialisation gives:
///   blocks<kPlus128>(units)       kBlocksPerVector whole blocks in row order as int8 weights, or
///                                 with kPlus128 the weights + 128 (VNNI's unsigned operand);
///   step<kValues>(tile, half, g)  step g of a row-group tile (formats/row_groups.hpp): weights
///                                 4g..4g+3 of the tile's rows [half·kLanes, +kLanes), as kValues says;
///   kGroupDot                     the StepValues the row-group kernels multiply.
/// A format without one (UnitLayout::Other) runs through its scalar unpack.
template <class Format>
struct Codec {
  static constexpr bool kSimd = false;
};

/// Where a row-group tile's weights for rows [half·kLanes, +kLanes) begin: after the tile's
/// scales, 4 bytes per row of each step (formats/row_groups.hpp).
inline const std::uint8_t* tile_steps(const std::uint8_t* tile, int half) {
  return tile + kRowGroupScaleBytes + half * kLanes * 4;
}

#include "glrnn/formats/int8-inl.hpp"
#include "glrnn/formats/q4-inl.hpp"
#include "glrnn/formats/q5-inl.hpp"

/// The int8 weights of kBlocksPerVector consecutive blocks of an integer format, or with kPlus128
/// the weights + 128 as unsigned bytes (glrnn's formats never hold -128). `count` <
/// kBlocksPerVector reads only `count` blocks (the rest is weight 0), so a row's last block is
/// never read past.
template <class Format, bool kPlus128 = false>
inline I unpack_blocks(const typename Format::Unit* w, int count = kBlocksPerVector) {
  if constexpr (Codec<Format>::kSimd)
    if (count == kBlocksPerVector) return Codec<Format>::template blocks<kPlus128>(w);
  alignas(64) std::int8_t q[kBlocksPerVector * kQuantBlock] = {};
  for (int j = 0; j < count; ++j) Format::unpack(w[j], q + j * kQuantBlock);
  return kPlus128 ? xor_i(loadu_i(q), set1_i8(-128)) : loadu_i(q);
}

// ---- one row of weights against one row of activations (decode) --------------------------------

/// How far ahead of its reads a decode kernel asks for the weights. A matrix-vector product is one
/// sequential stream per thread, and hardware prefetchers (Intel's L2 streamer) stop at every
/// 4 KiB page, so one stream alone keeps too few misses in flight (docs/kernels.md §3). One page
/// ahead measured best on Intel Emerald Rapids; 2 KiB and 8 KiB were slower.
constexpr std::ptrdiff_t kDecodePrefetchBytes = 4096;

/// Prefetches the `bytes` that start kDecodePrefetchBytes after p (past a row's end: the next row).
inline void prefetch_ahead(const void* p, std::size_t bytes) {
  GLRNN_KEEP_CALLS();
  const char* ahead = static_cast<const char*>(p) + kDecodePrefetchBytes;
  for (std::size_t b = 0; b < bytes; b += 64) prefetch_l2(ahead + b);
}

/// Σ w[i] x[i] for a float format; four independent accumulators keep the FMA units busy.
template <class Format>
inline float dot_float(const typename Format::Unit* w, const float* x, std::int64_t n) {
  F acc[4] = {zero(), zero(), zero(), zero()};
  std::int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    prefetch_ahead(w + i, 4 * kLanes * sizeof(w[0]));
    GLRNN_UNROLL
    for (int k = 0; k < 4; ++k) acc[k] = fma(load_units<Format>(w + i + k * kLanes), load(x + i + k * kLanes), acc[k]);
  }
  for (; i + kLanes <= n; i += kLanes) acc[0] = fma(load_units<Format>(w + i), load(x + i), acc[0]);
  float sum = hsum(add(add(acc[0], acc[1]), add(acc[2], acc[3])));
  for (; i < n; ++i) {
    float wi;
    Format::dequantize(w + i, 1, &wi);
    sum += wi * x[i];
  }
  return sum;
}

/// Σ w[i] x[i] over `blocks` blocks of an integer format against quantized activations. The int8
/// dot instructions multiply unsigned by signed bytes. With VNNI the weights + 128 are the unsigned
/// operand and each int32 lane starts from `lane_offsets` (-128 times the sum of its 4 activations),
/// which leaves the exact Σ w x of its 4 products; otherwise |w| and sign(w)·x make the signed
/// product an unsigned-by-signed one (two more operations per vector). Blocks go in groups of
/// kLanes: their scales are gathered and converted at once, and each step takes its blocks' lanes
/// by a permute (per-block scalar conversions cost more than the dots).
template <class Format>
inline float dot_blocks(const typename Format::Unit* w, const std::int8_t* xq, const float* xs,
                        const std::int32_t* lane_offsets, std::int64_t blocks) {
  constexpr int kB = kBlocksPerVector, kGroup = kLanes, kSteps = kGroup / kB;
  constexpr bool kGather = leads_with_f16_scale(Format::kLayout), kPlus128 = kVnni && kGather;
  constexpr int kLanesPerBlock = kQuantBlock / 4;
  const auto signed_dot = [&](std::int64_t k, int count) {
    const I wq = unpack_blocks<Format>(w + k, count);
    return to_floats(dot_i8(zero_i(), wq, loadu_i(xq + k * kQuantBlock)));
  };
  const auto dot = [&](std::int64_t k) {
    if constexpr (kPlus128) {
      const I start = loadu_i(lane_offsets + k * kLanesPerBlock);
      return to_floats(dot_u8s8(start, unpack_blocks<Format, true>(w + k), loadu_i(xq + k * kQuantBlock)));
    } else {
      return signed_dot(k, kB);
    }
  };
  F acc[4] = {zero(), zero(), zero(), zero()};  // independent chains: consecutive blocks overlap in flight
  std::int64_t k = 0;
  if constexpr (kGather) {
    for (; k + kGroup <= blocks; k += kGroup) {
      prefetch_ahead(w + k, kGroup * sizeof(w[0]));
      const F scales = mul(gather_unit_scales(w + k, sizeof(w[0])), load(xs + k));
      GLRNN_UNROLL
      for (int j = 0; j < kSteps; ++j) acc[j % 4] = fma(dot(k + j * kB), step_lanes(scales, j), acc[j % 4]);
    }
  }
  for (; k < blocks; k += kB) {
    const int count = static_cast<int>(std::min<std::int64_t>(kB, blocks - k));
    float s[kB] = {};
    for (int j = 0; j < count; ++j) s[j] = unit_scale<Format>(w[k + j]) * xs[k + j];
    acc[0] = fma(signed_dot(k, count), per_block(s), acc[0]);
  }
  return hsum(add(add(acc[0], acc[1]), add(acc[2], acc[3])));
}

// ---- row groups (formats/row_groups.hpp): one vector, 4 weights of kLanes rows ------------------

/// Calls step(g, w) for the 8 steps g of a tile, w as Codec<Format>::step gives it.
template <class Format, StepValues kValues, class Step>
GLRNN_ALWAYS_INLINE void for_each_step(const std::uint8_t* tile, int half, Step&& step) {
  GLRNN_UNROLL
  for (int g = 0; g < 8; ++g) step(g, Codec<Format>::template step<kValues>(tile, half, g));
}

/// acc + the products of a step's values with x, each lane summing its 4. (A template of the
/// vector type, so that a path without unsigned-by-signed products, NEON, never compiles that branch.)
template <StepValues kValues, class Vector = I>
inline Vector dot_step(Vector acc, Vector w, Vector x) {
  if constexpr (kValues == StepValues::Plus128) return dot_u8s8(acc, w, x);
  else if constexpr (kValues == StepValues::Indices) return dot_u7s8(acc, w, x);
  else return dot_i8_shared_x(acc, w, x);
}

/// How many tiles ahead dot_group asks for its tiles in L1. On an Intel Xeon (Sapphire Rapids
/// class, 2 threads) 4 raised q4 and q5 decode from 0.84-0.86 to 0.91-0.92 of bf16's GB/s in
/// interleaved rounds; 8 was alike for q4 and worse for q5, 12 worse for both.
constexpr std::size_t kL1PrefetchTiles = 4;

/// y[0, 16) = the 16 rows of a group · x: per block, each row's 32 products sum in its own int32
/// lane over 8 steps of broadcast activations (two chains of 4), then one FMA with the 16 rows'
/// scales. Where the weights carry an offset (+ 128 for VNNI, q5's + 16) the lanes start from
/// -offset times the block's Σx.
template <class Format>
inline void dot_group(const std::uint8_t* group, std::int64_t blocks, const std::int8_t* xq, const float* xs,
                      const std::int32_t* xsum, float* y) {
  constexpr std::size_t kTileBytes = kRowGroup * sizeof(typename Format::Unit);
  constexpr StepValues kValues = Codec<Format>::kGroupDot;
  constexpr std::int32_t kOffset = kValues == StepValues::Indices ? 16 : kValues == StepValues::Plus128 ? 128 : 0;
  F acc[kGroupHalves][2];
  GLRNN_UNROLL
  for (int h = 0; h < kGroupHalves; ++h) acc[h][0] = acc[h][1] = zero();
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::uint8_t* tile = group + b * kTileBytes;
    prefetch_ahead(tile, kTileBytes);
    // And into L1 a few tiles ahead: the page-ahead prefetch stops at L2, whose latency the
    // nibble formats' tiles (288 and 352 bytes) do not cover on their own (docs/kernels.md §3).
    for (std::size_t o = 0; o < kTileBytes; o += 64) prefetch_l1(tile + kL1PrefetchTiles * kTileBytes + o);
    const std::int8_t* x = xq + b * kQuantBlock;
    GLRNN_UNROLL
    for (int h = 0; h < kGroupHalves; ++h) {
      I sums[2] = {set1_i32(-kOffset * xsum[b]), zero_i()};
      for_each_step<Format, kValues>(tile, h, [&](int g, I w) {
        sums[g % 2] = dot_step<kValues>(sums[g % 2], w, broadcast_i32(x + 4 * g));
      });
      const F scales = mul(load(reinterpret_cast<const f16*>(tile) + h * kLanes), set1(xs[b]));
      acc[h][b % 2] = fma(to_floats(add_i32(sums[0], sums[1])), scales, acc[h][b % 2]);
    }
  }
  GLRNN_UNROLL
  for (int h = 0; h < kGroupHalves; ++h) store(y + h * kLanes, add(acc[h][0], acc[h][1]));
}

/// An integer weight matrix as the matrix kernels read it: row groups, then rows.
template <class Format>
struct IntRows {
  using Unit = typename Format::Unit;
  const Unit* units;
  std::int64_t blocks, grouped_rows;

  explicit IntRows(const WeightMatrix& w)
      : units(static_cast<const Unit*>(w.data)), blocks(w.cols / kQuantBlock), grouped_rows(w.grouped_rows()) {}
  const std::uint8_t* tile(std::int64_t row, std::int64_t b) const {
    return reinterpret_cast<const std::uint8_t*>(units + row / kRowGroup * kRowGroup * blocks + b * kRowGroup);
  }
  const Unit* row(std::int64_t r) const { return units + r * blocks; }  // r >= grouped_rows
  /// Which kLanes rows of its group a vector starting at `row` holds (0 where a vector is a group).
  static int half_of(std::int64_t row) { return static_cast<int>(row % kRowGroup) / kLanes; }
};

/// Blocks [b, b + count) (count <= kBlocksPerVector) of rows [row0, row0 + valid) (valid <= kLanes;
/// the rest weight 0) as v[r], as unpack_blocks reads them from rows. From a group, by transposing
/// the steps' vectors (rows x 4 bytes) into rows.
template <class Format, bool kPlus128>
inline void row_vectors(const IntRows<Format>& w, std::int64_t row0, int valid, std::int64_t b, int count, I v[kLanes]) {
  if (row0 + kLanes <= w.grouped_rows) {
    const int half = IntRows<Format>::half_of(row0);
    GLRNN_UNROLL
    for (int j = 0; j < kBlocksPerVector; ++j) {
      if (j < count) {
        for_each_step<Format, kPlus128 ? StepValues::Plus128 : StepValues::Weights>(w.tile(row0, b + j), half,
                                                                                  [&](int g, I step) { v[8 * j + g] = step; });
      } else {
        for (int g = 0; g < 8; ++g) v[8 * j + g] = set1_i8(kPlus128 ? -128 : 0);
      }
    }
    transpose(v);
    return;
  }
  GLRNN_UNROLL
  for (int r = 0; r < kLanes; ++r) {
    // A few blocks ahead along this row: the line a pack reads a few turns from now.
    if (r < valid) prefetch_l2(w.row(row0 + r) + b + 4 * kBlocksPerVector);
    v[r] = r < valid ? unpack_blocks<Format, kPlus128>(w.row(row0 + r) + b, count) : set1_i8(kPlus128 ? -128 : 0);
  }
}

/// The scales of block b of rows [row0, row0 + valid) (valid <= kLanes; the rest 0).
template <class Format>
inline F row_scales(const IntRows<Format>& w, std::int64_t row0, int valid, std::int64_t b) {
  if (row0 + kLanes <= w.grouped_rows) return load(reinterpret_cast<const f16*>(w.tile(row0, b)) + row0 % kRowGroup);
  if constexpr (leads_with_f16_scale(Format::kLayout)) {
    return gather_unit_scales(w.row(row0) + b, static_cast<int>(w.blocks * sizeof(typename Format::Unit)), valid);
  } else {
    float s[kLanes] = {};
    for (int r = 0; r < valid; ++r) s[r] = Format::scale(w.row(row0 + r)[b]);
    return load(s);
  }
}

// ---- quantizing activations ----------------------------------------------------------------

/// x[n] (n a multiple of 32) -> int8 blocks with scale max|x| / 127, rounded to nearest (ties to
/// even, as the portable path's std::nearbyint), the blocks' sums, and optionally int16 copies.
inline void quantize_row(const float* x, std::int64_t n, std::int8_t* q, std::int16_t* q16, float* scale,
                         std::int32_t* sum) {
  constexpr int kVectors = kQuantBlock / kLanes;
  for (std::int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    F v[kVectors];
    F amax = zero();
    GLRNN_UNROLL
    for (int j = 0; j < kVectors; ++j) {
      v[j] = load(xb + j * kLanes);
      amax = max(amax, abs(v[j]));
    }
    const float d = hmax(amax) / 127.0f, inv = d > 0.0f ? 1.0f / d : 0.0f;
    I total = zero_i();
    GLRNN_UNROLL
    for (int j = 0; j < kVectors; ++j) {
      const I ints = round_to_i32(mul(v[j], set1(inv)));
      total = add_i32(total, ints);
      store_i8(q + b * kQuantBlock + j * kLanes, ints);
      if (q16) store_i16(q16 + b * kQuantBlock + j * kLanes, ints);
    }
    scale[b] = d;
    sum[b] = hsum_i32(total);
  }
}

/// out[i] = -128 · (q[4i] + q[4i+1] + q[4i+2] + q[4i+3]) for the whole vectors of n int8 values:
/// the start of each int32 lane of a VNNI dot product whose weights carry + 128. dot_blocks reads
/// them for its groups of kLanes blocks only, so a last half vector is not needed.
/// (A template so that a path without unsigned-by-signed dot products, NEON, never compiles it.)
template <class Vector = I>
inline void lane_offsets(const std::int8_t* q, std::int64_t n, std::int32_t* out) {
  const Vector plus128 = set1_i8(-128);  // 0x80: 128 as the unsigned operand
  for (std::int64_t i = 0; i + 4 * kLanes <= n; i += 4 * kLanes)
    storeu_i(out + i / 4, sub_i32(zero_i(), dot_u8s8(zero_i(), plus128, loadu_i(q + i))));
}

/// Prefetches slice `part` of `parts` of the `bytes` at `first` into L2. A pack reads many rows
/// side by side, more streams than the hardware prefetchers follow; but a panel's rows are one
/// contiguous region, so while one panel is packed and multiplied the next is fetched in order.
inline void prefetch_slice(const void* first, std::size_t bytes, std::int64_t part, std::int64_t parts) {
  GLRNN_KEEP_CALLS();
  const auto* p = static_cast<const std::uint8_t*>(first);
  const std::size_t lo = bytes * static_cast<std::size_t>(part) / static_cast<std::size_t>(parts) / 64 * 64,
                    hi = bytes * static_cast<std::size_t>(part + 1) / static_cast<std::size_t>(parts);
  for (std::size_t b = lo; b < hi; b += 64) prefetch_l2(p + b);
}

// ---- matrix products: packed panels of weights, register tiles of activations ------------------
// Y[M, N] = X[M, K] · W[N, K]^T, N split by the caller. A panel holds kNr rows of W for a slab of
// K, laid out so one vector load gives one K position of all kNr rows; each of kMr rows of X is
// broadcast against it (docs/kernels.md §4).

constexpr int kFloatNr = 2 * kLanes;
constexpr int kFloatMr = kLanes == 16 ? 12 : 6;  // 2·kMr accumulators + 3 fit the register file
constexpr std::int64_t kFloatKc = 256;
constexpr std::size_t kFloatPanelBytes = kFloatKc * kFloatNr * sizeof(float);

/// c[0, cols) = keep · c + the V·kLanes lanes of v, in one rounding (with keep = 1, c + v); keep = 0
/// writes v without reading c.
template <int V>
inline void write_tile_row(float* c, const F* v, std::int64_t cols, float keep) {
  if (cols == V * kLanes) {
    const F k = set1(keep);
    GLRNN_UNROLL
    for (int h = 0; h < V; ++h) store(c + h * kLanes, keep != 0.0f ? fma(k, load(c + h * kLanes), v[h]) : v[h]);
    return;
  }
  alignas(64) float t[V * kLanes];
  GLRNN_UNROLL
  for (int h = 0; h < V; ++h) store(t + h * kLanes, v[h]);
  for (std::int64_t j = 0; j < cols; ++j) c[j] = keep != 0.0f ? std::fma(keep, c[j], t[j]) : t[j];
}

/// c[0, cols) = (accumulate ? c : 0) + the V·kLanes lanes of v.
template <int V>
inline void write_tile_row(float* c, const F* v, std::int64_t cols, bool accumulate) {
  write_tile_row<V>(c, v, cols, accumulate ? 1.0f : 0.0f);
}

inline void store_units(float* p, F v) { store(p, v); }
inline void store_units(float* p, I v) { storeu_i(p, v); }

/// A panel of kFloatNr rows of 4-byte units (float32 weights, or pairs of bf16) by kLanes x kLanes
/// transposes: load(row, k) gives kLanes units of row `row` from depth k on, which covers `step`
/// elements of the depth; rows from `rows` on are 0. Transposed vector j of the step at depth k
/// holds unit j of each of kLanes rows, at panel[(k / step · kLanes + j) · kFloatNr]. kLanes rows
/// across the slab, then the next kLanes (see pack_int_rows).
template <class Vector, class Load>
GLRNN_ALWAYS_INLINE void pack_transposed(std::int64_t rows, std::int64_t depth, std::int64_t step, float* panel,
                                         const Load& load) {
  for (int h = 0; h < 2; ++h) {
    for (std::int64_t k = 0; k < depth; k += step) {
      Vector v[kLanes];
      GLRNN_UNROLL
      for (int r = 0; r < kLanes; ++r) v[r] = h * kLanes + r < rows ? load(h * kLanes + r, k) : Vector{};
      transpose(v);
      GLRNN_UNROLL
      for (int j = 0; j < kLanes; ++j) store_units(panel + (k / step * kLanes + j) * kFloatNr + h * kLanes, v[j]);
    }
  }
}

/// Rows [0, rows) of a row-major matrix of a float format (row r at w + r·ld units), columns
/// [k0, k0 + kc) -> panel[k][kFloatNr] as float32; rows from `rows` on are 0.
template <class Format>
inline void pack_float_rows(const typename Format::Unit* w, std::int64_t ld, std::int64_t rows, std::int64_t k0,
                            std::int64_t kc, float* panel) {
  const std::int64_t whole = kc / kLanes * kLanes;
  pack_transposed<F>(rows, whole, kLanes, panel, [&](std::int64_t row, std::int64_t k) {
    prefetch_l2(w + row * ld + k0 + k + 4 * kLanes);  // as in pack_int_rows
    return load_units<Format>(w + row * ld + k0 + k);
  });
  std::int64_t k = whole;
  for (; k < kc; ++k)
    for (std::int64_t r = 0; r < kFloatNr; ++r) {
      float value = 0.0f;
      if (r < rows) Format::dequantize(w + r * ld + k0 + k, 1, &value);
      panel[k * kFloatNr + r] = value;
    }
}

/// A slab of B as a register tile reads it: step s's kFloatNr units at data + s·stride.
struct PanelSlab {
  const float* data;
  std::int64_t stride;
  std::int64_t steps;
};

/// Columns [0, cols) of rows [k0, k0 + kc) of a row-major float32 matrix laid out [K, N] (row k at
/// b + k·ld) -> the same panel layout: already K-major, so a copy, which only a short last panel
/// needs (whole panels are read in place).
inline void pack_float_cols(const float* b, std::int64_t ld, std::int64_t cols, std::int64_t k0, std::int64_t kc,
                            float* panel) {
  for (std::int64_t k = 0; k < kc; ++k) {
    const float* src = b + (k0 + k) * ld;
    float* dst = panel + k * kFloatNr;
    if (cols == kFloatNr) {
      store(dst, load(src));
      store(dst + kLanes, load(src + kLanes));
    } else {
      for (std::int64_t j = 0; j < kFloatNr; ++j) dst[j] = j < cols ? src[j] : 0.0f;
    }
  }
}

/// What a float panel's register tile multiplies per step of the depth: one float32 activation
/// broadcast against the panel's float32 weights.
struct Float32Step {
  using Activation = float;
  static constexpr std::int64_t kElements = 1;  // of the depth, per step
  /// Where X's element (row, depth k) is: X is [M, K] at stride ldx.
  static const float* at(const float* x, std::int64_t ldx, std::int64_t row, std::int64_t k) { return x + row * ldx + k; }
  static F load_panel(const float* p) { return load(p); }
  static F broadcast(const float* x) { return set1(*x); }
  static F multiply_add(F acc, F x, F w) { return fma(x, w, acc); }
};

/// The same with X given transposed, [K, M] at stride ldx: a tile's broadcasts then read one
/// contiguous run of X per step (a sum of outer products, as a chunk's state update is).
struct TransposedFloat32Step : Float32Step {
  static const float* at(const float* x, std::int64_t ldx, std::int64_t row, std::int64_t k) { return x + k * ldx + row; }
};

/// C[MR, cols] = keep · C + X[MR, slab.steps · Step::kElements] · slab: one register tile (X's
/// elements where Step::at says).
template <int MR, class Step = Float32Step>
inline void float_tile(const typename Step::Activation* x, std::int64_t ldx, const PanelSlab& slab, float* c,
                       std::int64_t ldc, std::int64_t cols, float keep) {
  F acc0[MR], acc1[MR];
  GLRNN_UNROLL
  for (int m = 0; m < MR; ++m) acc0[m] = acc1[m] = zero();
  const float* panel = slab.data;
  for (std::int64_t s = 0; s < slab.steps; ++s, panel += slab.stride) {
    const auto b0 = Step::load_panel(panel), b1 = Step::load_panel(panel + kLanes);
    GLRNN_UNROLL
    for (int m = 0; m < MR; ++m) {
      const auto a = Step::broadcast(Step::at(x, ldx, m, s * Step::kElements));
      acc0[m] = Step::multiply_add(acc0[m], a, b0);
      acc1[m] = Step::multiply_add(acc1[m], a, b1);
    }
  }
  GLRNN_UNROLL
  for (int m = 0; m < MR; ++m) {
    const F pair[2] = {acc0[m], acc1[m]};
    write_tile_row<2>(c + m * ldc, pair, cols, keep);
  }
}

/// tile(std::integral_constant<int, R>{}) with R = rows (1 <= rows <= MR): a register tile's
/// height must be a constant for its accumulators to stay in registers.
template <int MR, class Tile>
GLRNN_ALWAYS_INLINE void with_tile_rows(int rows, const Tile& tile) {
  if constexpr (MR > 1) {
    if (rows < MR) return with_tile_rows<MR - 1>(rows, tile);
  }
  tile(std::integral_constant<int, MR>{});
}

/// Y[0..M)[n_lo, n_hi) = keep · Y + X · B over panels of kFloatNr columns of the result and slabs of up to
/// `slab` of the depth K: pack(n0, cols, k0, kc) returns columns [n0, n0 + cols) of B for depth
/// [k0, k0 + kc) as a PanelSlab (packed into `panel`, or where B already has that layout), whose
/// steps the register tiles take by `Step` from X's rows (X [M, K] at stride ldx).
template <class Step, class Pack>
inline void gemm_panels(std::int64_t n_lo, std::int64_t n_hi, std::int64_t K, std::int64_t slab,
                        const typename Step::Activation* x, std::int64_t ldx, std::int64_t M, float* y, std::int64_t ldy,
                        float keep, const Pack& pack) {
  for (std::int64_t n0 = n_lo; n0 < n_hi; n0 += kFloatNr) {
    const std::int64_t cols = std::min<std::int64_t>(kFloatNr, n_hi - n0);
    for (std::int64_t k0 = 0; k0 < K; k0 += slab) {
      const PanelSlab b = pack(n0, cols, k0, std::min(slab, K - k0));
      for (std::int64_t m0 = 0; m0 < M; m0 += kFloatMr)
        with_tile_rows<kFloatMr>(static_cast<int>(std::min<std::int64_t>(kFloatMr, M - m0)), [&](auto rows) {
          float_tile<decltype(rows)::value, Step>(Step::at(x, ldx, m0, k0), ldx, b, y + m0 * ldy + n0, ldy, cols,
                                                  k0 > 0 ? 1.0f : keep);
        });
    }
  }
}

/// Prefetches slab k0 of the next panel's rows (row n at w + n·ldw units, K long) while this one
/// is packed and multiplied.
template <class Unit>
inline void prefetch_next_panel(const Unit* w, std::int64_t ldw, std::int64_t n0, std::int64_t n_hi, std::int64_t k0,
                                std::int64_t slab, std::int64_t K) {
  const std::int64_t next_rows = std::min<std::int64_t>(kFloatNr, n_hi - n0 - kFloatNr);
  if (next_rows > 0)
    prefetch_slice(w + (n0 + kFloatNr) * ldw, static_cast<std::size_t>(next_rows * ldw) * sizeof(Unit), k0 / slab,
                   (K + slab - 1) / slab);
}

/// Y[0..M)[n_lo, n_hi) = keep · Y + X · B^T for B of `Format` with rows [n_lo, n_hi) at w + n·ldw units
/// (b_rows_are_n) or, for float32 B laid out [K, N], columns [n_lo, n_hi) of rows at w + k·ldw; X
/// as `Step` reads it (Float32Step: [M, K]; TransposedFloat32Step: [K, M]).
template <class Format, class Step = Float32Step>
inline void gemm_float(const typename Format::Unit* w, std::int64_t ldw, bool b_rows_are_n, std::int64_t n_lo,
                       std::int64_t n_hi, std::int64_t K, const float* x, std::int64_t ldx, std::int64_t M, float* y,
                       std::int64_t ldy, float keep, float* panel) {
  gemm_panels<Step>(n_lo, n_hi, K, kFloatKc, x, ldx, M, y, ldy, keep,
                           [&](std::int64_t n0, std::int64_t cols, std::int64_t k0, std::int64_t kc) {
                             if (b_rows_are_n) {
                               prefetch_next_panel(w, ldw, n0, n_hi, k0, kFloatKc, K);
                               pack_float_rows<Format>(w + n0 * ldw, ldw, cols, k0, kc, panel);
                             } else if constexpr (std::is_same_v<typename Format::Unit, float>) {
                               // B [K, N] holds a whole panel's rows as the tiles read them; but
                               // rows a page or more apart each sit on a page of their own, in the
                               // same L1 sets, and are cheaper copied once than re-read per tile.
                               if (cols == kFloatNr && ldw * sizeof(float) < 4096)
                                 return PanelSlab{w + k0 * ldw + n0, ldw, kc};
                               pack_float_cols(w + n0, ldw, cols, k0, kc, panel);
                             }
                             return PanelSlab{panel, kFloatNr, kc};
                           });
}

// Integer panels: per block of 32, kUnits units of 4 bytes (VNNI: dot_u8s8 over 4-byte groups,
// weights + 128 as unsigned bytes) or of 2 int16 (no VNNI: dot_i16 over pairs), each as two
// vectors of kLanes rows, then the kIntNr rows' scales.
constexpr int kIntVectors = kLanes == 16 ? 4 : 2;  // vectors of kLanes rows in a panel
constexpr int kIntNr = kIntVectors * kLanes;
constexpr int kIntMr = 3;  // 2·kMr·kIntVectors accumulators (int and float) + a few fit the registers
constexpr int kUnits = kVnni ? kQuantBlock / 4 : kQuantBlock / 2;
constexpr std::size_t kIntBlockBytes = kUnits * kIntVectors * sizeof(I) + kIntNr * sizeof(float);
constexpr std::int64_t kIntKcBlocks = 8;
constexpr std::size_t kIntPanelBytes = kIntKcBlocks * kIntBlockBytes;

/// Blocks [b0, b0 + nb) of rows [n0, n0 + rows) of an integer matrix -> panel.
template <class Format>
inline void pack_int_rows(const IntRows<Format>& w, std::int64_t n0, std::int64_t rows, std::int64_t b0, std::int64_t nb,
                          std::uint8_t* panel) {
  // kLanes rows across the slab, then the next kLanes: few enough streams through memory for the
  // hardware prefetchers to follow.
  for (int h = 0; h < kIntVectors; ++h) {
    if (h * kLanes >= rows) {  // a short last panel: zero rows and scales
      for (std::int64_t b = 0; b < nb; ++b) {
        for (int u = 0; u < kUnits; ++u) storeu_i(panel + b * kIntBlockBytes + (u * kIntVectors + h) * sizeof(I), zero_i());
        store(reinterpret_cast<float*>(panel + b * kIntBlockBytes + kUnits * kIntVectors * sizeof(I)) + h * kLanes, zero());
      }
      continue;
    }
    const std::int64_t row0 = n0 + h * kLanes;
    const int valid_rows = static_cast<int>(std::min<std::int64_t>(rows - h * kLanes, kLanes));
    if (kVnni && row0 + kLanes <= w.grouped_rows) {
      // A VNNI panel's unit is a step of 4 weights: a group's tile holds the panel's vectors as they are.
      const int half = IntRows<Format>::half_of(row0);
      for (std::int64_t b = 0; b < nb; ++b) {
        std::uint8_t* block = panel + b * kIntBlockBytes;
        for_each_step<Format, StepValues::Plus128>(w.tile(row0, b0 + b), half, [&](int g, I step) {
          storeu_i(block + (g * kIntVectors + h) * sizeof(I), step);
        });
        store(reinterpret_cast<float*>(block + kUnits * kIntVectors * sizeof(I)) + h * kLanes,
              row_scales(w, row0, valid_rows, b0 + b));
      }
      continue;
    }
    for (std::int64_t b = 0; b < nb; b += kBlocksPerVector) {
      const int count = static_cast<int>(std::min<std::int64_t>(kBlocksPerVector, nb - b));
      // VNNI multiplies w + 128 as unsigned bytes; a missing row is weight 0 either way.
      I v[kLanes];
      row_vectors<Format, kVnni>(w, row0, valid_rows, b0 + b, count, v);
      // Output vector j of a transpose holds unit j of the vector's units for kLanes rows; the
      // units of consecutive blocks follow each other.
      const auto store_unit = [&](std::int64_t unit, I value) {
        const std::int64_t block = b + unit / kUnits;
        if (block < nb) storeu_i(panel + block * kIntBlockBytes + ((unit % kUnits) * kIntVectors + h) * sizeof(I), value);
      };
      if constexpr (kVnni) {
        transpose(v);
        GLRNN_UNROLL
        for (int j = 0; j < kLanes; ++j) store_unit(j, v[j]);
      } else {
        I lo[kLanes], hi[kLanes];
        GLRNN_UNROLL
        for (int r = 0; r < kLanes; ++r) widen_i8(v[r], lo[r], hi[r]);
        transpose(lo);
        transpose(hi);
        GLRNN_UNROLL
        for (int j = 0; j < kLanes; ++j) {
          store_unit(j, lo[j]);
          store_unit(kLanes + j, hi[j]);
        }
      }
      for (int j = 0; j < count; ++j)
        store(reinterpret_cast<float*>(panel + (b + j) * kIntBlockBytes + kUnits * kIntVectors * sizeof(I)) + h * kLanes,
              row_scales(w, row0, valid_rows, b0 + b + j));
    }
  }
}

/// Where int_tile reads the weights of block b (from the slab's first), unit u, vector h: a packed panel.
struct PanelWeights {
  const std::uint8_t* panel;
  I unit(std::int64_t b, int u, int h) const { return loadu_i(panel + b * kIntBlockBytes + (u * kIntVectors + h) * sizeof(I)); }
  F scales(std::int64_t b, int h) const {
    return load(reinterpret_cast<const float*>(panel + b * kIntBlockBytes + kUnits * kIntVectors * sizeof(I)) + h * kLanes);
  }
};

/// The same from a whole panel of rows in row groups, read in place: with VNNI a panel's unit is
/// a tile's step (+ 128), so nothing is packed.
template <class Format>
struct GroupWeights {
  static constexpr std::int64_t kTileBytes = kRowGroup * sizeof(typename Format::Unit);
  const std::uint8_t* tiles[kIntVectors];
  int half[kIntVectors];
  GroupWeights(const IntRows<Format>& w, std::int64_t n0, std::int64_t b0) {
    for (int h = 0; h < kIntVectors; ++h) {
      tiles[h] = w.tile(n0 + h * kLanes, b0);
      half[h] = IntRows<Format>::half_of(n0 + h * kLanes);
    }
  }
  I unit(std::int64_t b, int u, int h) const {
    return Codec<Format>::template step<StepValues::Plus128>(tiles[h] + b * kTileBytes, half[h], u);
  }
  F scales(std::int64_t b, int h) const { return load(reinterpret_cast<const f16*>(tiles[h] + b * kTileBytes) + half[h] * kLanes); }
};

/// C[MR, cols] (+)= rows m0.. of X · the weights, blocks [b0, b0 + nb).
template <int MR, class Weights>
inline void int_tile(const QuantizedRows& x, std::int64_t m0, std::int64_t b0, std::int64_t nb, const Weights& weights,
                     float* c, std::int64_t ldc, std::int64_t cols, bool accumulate) {
  constexpr int V = kIntVectors;
  F f[MR][V];
  GLRNN_UNROLL
  for (int m = 0; m < MR; ++m) {
    GLRNN_UNROLL
    for (int h = 0; h < V; ++h) f[m][h] = zero();
  }
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::int64_t block = b0 + b;
    I acc[MR][V];
    GLRNN_UNROLL
    for (int m = 0; m < MR; ++m) {
      // With weights + 128 the sums gain 128 Σx; starting from its negative removes it.
      const I start = kVnni ? set1_i32(-128 * x.row_sum(m0 + m)[block]) : zero_i();
      GLRNN_UNROLL
      for (int h = 0; h < V; ++h) acc[m][h] = start;
    }
    // Unrolled: a loop over the units makes GCC copy every accumulator between registers each turn.
    GLRNN_UNROLL
    for (int u = 0; u < kUnits; ++u) {
      I w[V];
      GLRNN_UNROLL
      for (int h = 0; h < V; ++h) w[h] = weights.unit(b, u, h);
      GLRNN_UNROLL
      for (int m = 0; m < MR; ++m) {
        if constexpr (kVnni) {
          const I xb = broadcast_i32(x.row_q(m0 + m) + block * kQuantBlock + 4 * u);
          GLRNN_UNROLL
          for (int h = 0; h < V; ++h) acc[m][h] = dot_u8s8(acc[m][h], w[h], xb);
        } else {
          const I xb = broadcast_i32(x.row_q16(m0 + m) + block * kQuantBlock + 2 * u);
          GLRNN_UNROLL
          for (int h = 0; h < V; ++h) acc[m][h] = dot_i16(acc[m][h], w[h], xb);
        }
      }
    }
    F sw[V];
    GLRNN_UNROLL
    for (int h = 0; h < V; ++h) sw[h] = weights.scales(b, h);
    GLRNN_UNROLL
    for (int m = 0; m < MR; ++m) {
      const F sx = set1(x.row_scale(m0 + m)[block]);
      GLRNN_UNROLL
      for (int h = 0; h < V; ++h) f[m][h] = fma(to_floats(acc[m][h]), mul(sw[h], sx), f[m][h]);
    }
  }
  GLRNN_UNROLL
  for (int m = 0; m < MR; ++m) write_tile_row<V>(c + m * ldc, f[m], cols, accumulate);
}

/// Prefetches slab `part` of `parts` of the rows [n0, n0 + rows) of an integer matrix into L2: a
/// group's rows are one region, as are rows stored one after another.
template <class Format>
inline void prefetch_rows(const IntRows<Format>& w, std::int64_t n0, std::int64_t rows, std::int64_t part,
                          std::int64_t parts) {
  prefetch_slice(n0 < w.grouped_rows ? static_cast<const void*>(w.tile(n0, 0)) : w.row(n0),
                 static_cast<std::size_t>(rows * w.blocks) * sizeof(typename Format::Unit), part, parts);
}

/// Rows of activations up to which the integer matrix kernel reads row groups in place.
constexpr std::int64_t kInPlaceRows = 32;

/// Y[0..x.rows)[n_lo, n_hi) = X · W^T for W of an integer format.
template <class Format>
inline void gemm_int(const IntRows<Format>& w, std::int64_t n_lo, std::int64_t n_hi, const QuantizedRows& x, float* y,
                     std::int64_t ldy, std::uint8_t* panel) {
  const std::int64_t blocks = w.blocks;
  for (std::int64_t n0 = n_lo; n0 < n_hi; n0 += kIntNr) {
    const std::int64_t cols = std::min<std::int64_t>(kIntNr, n_hi - n0);
    for (std::int64_t b0 = 0; b0 < blocks; b0 += kIntKcBlocks) {
      const std::int64_t nb = std::min(kIntKcBlocks, blocks - b0);
      const std::int64_t next_rows = std::min<std::int64_t>(kIntNr, n_hi - n0 - kIntNr);
      if (next_rows > 0) prefetch_rows(w, n0 + kIntNr, next_rows, b0 / kIntKcBlocks, (blocks + kIntKcBlocks - 1) / kIntKcBlocks);
      const auto tiles = [&](const auto& weights) {
        for (std::int64_t m0 = 0; m0 < x.rows; m0 += kIntMr)
          with_tile_rows<kIntMr>(static_cast<int>(std::min<std::int64_t>(kIntMr, x.rows - m0)), [&](auto rows) {
            int_tile<decltype(rows)::value>(x, m0, b0, nb, weights, y + m0 * ldy + n0, ldy, cols, b0 > 0);
          });
      };
      // In place, a tile of kIntMr rows unpacks the steps itself: for a batch (16 sequences) that
      // beats packing once (RecurrentGemma-2B, q4: a step 10% faster); for a prompt it does not.
      if (kVnni && x.rows <= kInPlaceRows && n0 + kIntNr <= w.grouped_rows) {
        tiles(GroupWeights<Format>(w, n0, b0));
      } else {
        pack_int_rows<Format>(w, n0, cols, b0, nb, panel);
        tiles(PanelWeights{panel});
      }
    }
  }
}

// ---- this path's entries in the kernel tables (kernels/kernels.hpp) -------------------------

/// The integer formats' activations: quantized, with int16 copies for the matrix kernel where it
/// multiplies int16 pairs (kInt16Copies) and, for decode, the lane offsets the VNNI kernels start
/// from (QuantizedRows).
template <class Format, bool kInt16Copies>
inline void quantize_activations(const MatIn& x, ActivationRows& act, Scratch& scratch) {
  LaneOffsets offsets = nullptr;
  if constexpr (kVnni && leads_with_f16_scale(Format::kLayout)) offsets = &lane_offsets<>;
  act.q = quantize_rows(x, &quantize_row, kInt16Copies && x.rows() > 1, offsets, scratch);
}

template <class Format>
inline FormatKernels format_kernels() {
  using Unit = typename Format::Unit;
  FormatKernels kernels{};
  ProductKernels& k = kernels.products;
  if constexpr (Format::kActivations == Activations::Float32) {
    k.matvec = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y) {
      const Unit* base = static_cast<const Unit*>(w.data);
      for (std::int64_t r = lo; r < hi; ++r) y[r] = dot_float<Format>(base + r * w.cols, x.x, w.cols);
    };
    k.gemm = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y,
                std::int64_t ldy, void* work) {
      gemm_float<Format>(static_cast<const Unit*>(w.data), w.cols, true, lo, hi, w.cols, x.x, x.ldx, x.rows, y, ldy,
                         /*keep=*/0.0f, static_cast<float*>(work));
    };
    k.work_bytes = [](std::int64_t) { return kFloatPanelBytes; };
    k.rows_per_panel = kFloatNr;
  } else {
    k.matvec = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y) {
      const IntRows<Format> rows(w);
      const std::int8_t* xq = x.q.row_q(0);
      const float* xs = x.q.row_scale(0);
      std::int64_t r = lo;  // a group's first row where rows [lo, ...) are in groups
      if constexpr (groups_rows(Format::kLayout))
        for (; r < std::min(hi, rows.grouped_rows); r += kRowGroup)
          dot_group<Format>(rows.tile(r, 0), rows.blocks, xq, xs, x.q.row_sum(0), y + r);
      for (; r < hi; ++r) y[r] = dot_blocks<Format>(rows.row(r), xq, xs, x.q.lane_offset, rows.blocks);
    };
    k.gemm = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y,
                std::int64_t ldy, void* work) {
      gemm_int<Format>(IntRows<Format>(w), lo, hi, x.q, y, ldy, static_cast<std::uint8_t*>(work));
    };
    k.work_bytes = [](std::int64_t) { return kIntPanelBytes; };
    k.rows_per_panel = kIntNr;
    k.prepare = &quantize_activations<Format, !kVnni>;
  }
  return kernels;
}

// ---- the path's own kernels, and its table entry ----------------------------------------------

#if GLRNN_SIMD_I8MM
#include "glrnn/kernels/gemm_i8mm-inl.hpp"
#endif
#if GLRNN_SIMD_BF16
#include "glrnn/kernels/bf16_dot-inl.hpp"
#endif
#if GLRNN_SIMD_AMX
#include "glrnn/kernels/gemm_amx-inl.hpp"
#endif

inline PathKernels path_kernels() {
  PathKernels k{};
  k.quantize_row = &quantize_row;
  k.gemm_f32 = [](const float* a, std::int64_t lda, bool a_transposed, const float* b, std::int64_t ldb,
                  bool b_rows_are_n, float* c, std::int64_t ldc, std::int64_t M, std::int64_t K, std::int64_t n_lo,
                  std::int64_t n_hi, float keep, void* work) {
    float* panel = static_cast<float*>(work);
    if (a_transposed) {
      gemm_float<F32Format, TransposedFloat32Step>(b, ldb, b_rows_are_n, n_lo, n_hi, K, a, lda, M, c, ldc, keep, panel);
    } else {
      gemm_float<F32Format>(b, ldb, b_rows_are_n, n_lo, n_hi, K, a, lda, M, c, ldc, keep, panel);
    }
  };
  k.gemm_f32_work_bytes = [](std::int64_t) { return kFloatPanelBytes; };
#if GLRNN_SIMD_AMX
  k.gemm_rounded = &gemm_amx_rounded;
  k.gemm_rounded_work_bytes = &amx_rounded_work_bytes;
#endif
  k.apply = &apply_row;
  k.log_add_exp = &log_add_exp_row;
  k.decayed_dot = &decayed_dot_row;
  return k;
}

/// `Format`'s entry in the kernel table for this path (kernels/path_code-inl.hpp).
template <class Format>
inline FormatKernels path_format_kernels() {
#if GLRNN_SIMD_I8MM
  return format_kernels_mmla<Format>();
#elif GLRNN_SIMD_AMX
  return format_kernels_amx<Format>();
#elif GLRNN_SIMD_BF16
  return format_kernels_bf16_dot<Format>();
#else
  return format_kernels<Format>();
#endif
}
