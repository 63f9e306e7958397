// The integer matrix kernel of the i8mm path (Armv8.6's int8 matrix multiply, `smmla`): included
// at the end of kernels-inl.hpp on paths with GLRNN_SIMD_I8MM, whose other kernels those paths
// keep. No include guard and no includes. docs/kernels.md §7 describes it.
//
// One `smmla` multiplies a 2 x 8 block of activations by an 8 x 2 block of weights into a 2 x 2
// tile of int32 sums: a[i] · b[j] at lane 2i + j, with a the two activation rows' 8 bytes and b
// the two weight rows' 8 bytes, each pair in one register. A panel holds kMmlaNr weight rows as
// kMmlaNr / 2 such pairs for each 8-byte step of the depth; a tile is kMmlaMr activation rows
// (pairs loaded from two rows at once) against the whole panel.

constexpr int kMmlaNr = 8;  // weight rows per panel: 4 pairs
constexpr int kMmlaMr = 4;  // activation rows per tile: 2 pairs; 8 int32 and 8 float accumulators
constexpr int kMmlaSteps = kQuantBlock / 8;
constexpr std::size_t kMmlaBlockBytes = kMmlaNr * kQuantBlock + kMmlaNr * sizeof(float);
constexpr std::int64_t kMmlaKcBlocks = 8;
constexpr std::size_t kMmlaPanelBytes = kMmlaKcBlocks * kMmlaBlockBytes;

/// Blocks [b0, b0 + nb) of rows [n0, n0 + rows) of an integer matrix -> panel: per block, step s
/// and pair p, 16 bytes (row 2p's 8 weights of the step, then row 2p + 1's), then the kMmlaNr
/// rows' scales. Rows from `rows` on are weight 0 with scale 0.
template <class Format>
inline void pack_mmla_rows(const IntRows<Format>& w, std::int64_t n0, std::int64_t rows, std::int64_t b0, std::int64_t nb,
                           std::uint8_t* panel) {
  static_assert(kMmlaNr == kLanes && kBlocksPerVector == 1, "a panel's rows are one vector of rows");
  for (std::int64_t b = 0; b < nb; ++b) {
    std::uint8_t* out = panel + b * kMmlaBlockBytes;
    I v[kLanes];
    row_vectors<Format, false>(w, n0, static_cast<int>(rows), b0 + b, 1, v);
    store(reinterpret_cast<float*>(out + kMmlaNr * kQuantBlock), row_scales(w, n0, static_cast<int>(rows), b0 + b));
    for (int r = 0; r < kMmlaNr; ++r) {
      alignas(32) std::int8_t q[kQuantBlock];
      storeu_i(q, v[r]);
      for (int s = 0; s < kMmlaSteps; ++s) std::memcpy(out + (s * kMmlaNr + r) * 8, q + s * 8, 8);
    }
  }
}

/// C[rows (<= kMmlaMr), cols] (+)= rows m0.. of X · panel, blocks [b0, b0 + nb).
inline void mmla_tile(const QuantizedRows& x, std::int64_t m0, int rows, std::int64_t b0, std::int64_t nb,
                      const std::uint8_t* panel, float* c, std::int64_t ldc, std::int64_t cols, bool accumulate) {
  constexpr int P = kMmlaMr / 2, Q = kMmlaNr / 2;
  // A missing last row reads its partner's values; its results are not stored.
  const std::int8_t* xq[kMmlaMr];
  const float* xs[kMmlaMr];
  for (int m = 0; m < kMmlaMr; ++m) {
    const std::int64_t row = m0 + std::min(m, rows - 1);
    xq[m] = x.row_q(row);
    xs[m] = x.row_scale(row);
  }
  float32x4_t f[P][Q];
  GLRNN_UNROLL
  for (int p = 0; p < P; ++p) {
    GLRNN_UNROLL
    for (int q = 0; q < Q; ++q) f[p][q] = vdupq_n_f32(0.0f);
  }
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::uint8_t* block = panel + b * kMmlaBlockBytes;
    const std::int64_t k = (b0 + b) * kQuantBlock;
    int32x4_t acc[P][Q];
    GLRNN_UNROLL
    for (int p = 0; p < P; ++p) {
      GLRNN_UNROLL
      for (int q = 0; q < Q; ++q) acc[p][q] = vdupq_n_s32(0);
    }
    GLRNN_UNROLL
    for (int s = 0; s < kMmlaSteps; ++s) {
      int8x16_t a[P], wv[Q];
      GLRNN_UNROLL
      for (int p = 0; p < P; ++p) a[p] = vcombine_s8(vld1_s8(xq[2 * p] + k + 8 * s), vld1_s8(xq[2 * p + 1] + k + 8 * s));
      GLRNN_UNROLL
      for (int q = 0; q < Q; ++q) wv[q] = vld1q_s8(reinterpret_cast<const std::int8_t*>(block) + (s * Q + q) * 16);
      GLRNN_UNROLL
      for (int p = 0; p < P; ++p) {
        GLRNN_UNROLL
        for (int q = 0; q < Q; ++q) acc[p][q] = vmmlaq_s32(acc[p][q], a[p], wv[q]);
      }
    }
    // Lane 2i + j of a tile is activation row 2p + i times weight row 2q + j.
    const float* sw = reinterpret_cast<const float*>(block + kMmlaNr * kQuantBlock);
    const std::int64_t blk = b0 + b;
    GLRNN_UNROLL
    for (int p = 0; p < P; ++p) {
      const float32x4_t sx = vcombine_f32(vdup_n_f32(xs[2 * p][blk]), vdup_n_f32(xs[2 * p + 1][blk]));
      GLRNN_UNROLL
      for (int q = 0; q < Q; ++q) {
        const float32x2_t pair = vld1_f32(sw + 2 * q);
        f[p][q] = vfmaq_f32(f[p][q], vcvtq_f32_s32(acc[p][q]), vmulq_f32(sx, vcombine_f32(pair, pair)));
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    for (int i = 0; i < 2; ++i) {
      if (2 * p + i >= rows) continue;
      float row[kMmlaNr];
      for (int q = 0; q < Q; ++q) vst1_f32(row + 2 * q, i == 0 ? vget_low_f32(f[p][q]) : vget_high_f32(f[p][q]));
      float* out = c + (2 * p + i) * ldc;
      for (std::int64_t j = 0; j < cols; ++j) out[j] = accumulate ? out[j] + row[j] : row[j];
    }
  }
}

/// Y[0..x.rows)[n_lo, n_hi) = X · W^T for W of an integer format, `blocks` blocks per row.
template <class Format>
inline void gemm_mmla(const IntRows<Format>& w, std::int64_t n_lo, std::int64_t n_hi, const QuantizedRows& x, float* y,
                      std::int64_t ldy, std::uint8_t* panel) {
  const std::int64_t blocks = w.blocks;
  for (std::int64_t n0 = n_lo; n0 < n_hi; n0 += kMmlaNr) {
    const std::int64_t cols = std::min<std::int64_t>(kMmlaNr, n_hi - n0);
    for (std::int64_t b0 = 0; b0 < blocks; b0 += kMmlaKcBlocks) {
      const std::int64_t nb = std::min(kMmlaKcBlocks, blocks - b0);
      pack_mmla_rows<Format>(w, n0, cols, b0, nb, panel);
      for (std::int64_t m0 = 0; m0 < x.rows; m0 += kMmlaMr)
        mmla_tile(x, m0, static_cast<int>(std::min<std::int64_t>(kMmlaMr, x.rows - m0)), b0, nb, panel, y + m0 * ldy + n0,
                  ldy, cols, b0 > 0);
    }
  }
}

/// This path's table entry: kernels-inl.hpp's, with the integer formats' matrix kernel replaced.
template <class Format>
inline FormatKernels format_kernels_mmla() {
  FormatKernels kernels = format_kernels<Format>();
  if constexpr (Format::kActivations == Activations::Int8Blocks) {
    ProductKernels& k = kernels.products;
    k.gemm = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y,
                std::int64_t ldy, void* work) {
      gemm_mmla<Format>(IntRows<Format>(w), lo, hi, x.q, y, ldy, static_cast<std::uint8_t*>(work));
    };
    k.work_bytes = [](std::int64_t) { return kMmlaPanelBytes; };
    k.rows_per_panel = kMmlaNr;
    k.prepare = &quantize_activations<Format, false>;
  }
  return kernels;
}
