// The products of the amx path (AMX: Sapphire Rapids and later): prompts and batches in tile
// registers, for bf16 weights in both activation modes and for the integer formats. Included at
// the end of kernels-inl.hpp on paths with GLRNN_SIMD_AMX, after bf16_dot-inl.hpp, whose decode
// kernels and panels it keeps. No include guard and no includes. docs/kernels.md §10 describes it.
//
// bf16: one tile product (tdpbf16ps) adds a 16 x 32 block of bf16 activations times a 32 x 16
// block of bf16 weights to a 16 x 16 tile of float32 sums: every product of two bf16 is exact in
// float32, and each is added with float32 rounding, as an FMA chain adds them. The weights' block
// is the bf16 panel's layout (pack_bf16_pairs): row p holds pair p of 16 weight rows. Eight tiles
// hold a 32 x 32 block of results (C: tiles 0-3), 16 activation rows each of two row blocks (A: 4,
// 5) and 16 weight rows each of two column blocks (B: 6, 7).
//
// The activations come as bf16 planes: one, the activations rounded (the bf16-activation mode),
// or three whose sum is each float32 activation exactly (8 + 8 + 8 bits of its 24-bit
// significand), so that three tile products give the float32 products of the exact mode: every
// product exact, the sums in float32 (only their order differs from the FMA kernels').

constexpr int kAmxRows = 16;                 // rows of a tile
constexpr std::int64_t kAmxStep = 32;        // bf16 of the depth per tile product
constexpr std::int64_t kAmxBlock = 2 * kAmxRows;  // rows and columns of a block of results
static_assert(kFloatNr == kAmxBlock && kBf16Step == kAmxStep, "a bf16 panel is two column blocks of B tiles");

/// bf16 planes of exactly split float32 activations (ActivationRows::xb_planes).
constexpr int kExactPlanes = 3;

/// The tile registers' shapes, loaded by ldtilecfg (palette 1).
struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {};
  std::uint8_t rows[16] = {};
};

/// Configures this thread's tiles for products of A rows of `a_row_bytes` (the depth of one tile
/// product) with B tiles of a_row_bytes / 4 rows: C 0-3 16 rows of 16 32-bit sums, A 4-5 16 rows,
/// B 6-7 64 bytes a row. A thread's tile state lasts until release_tiles.
inline void configure_tiles(std::uint16_t a_row_bytes) {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.bytes_per_row[t] = t == 4 || t == 5 ? a_row_bytes : 64;
    config.rows[t] = static_cast<std::uint8_t>(t >= 6 ? a_row_bytes / 4 : kAmxRows);
  }
  __asm__ volatile("ldtilecfg %0" ::"m"(config));
}
/// Returns the tiles to their initial state, so the thread's saved state stays small.
inline void release_tiles() { __asm__ volatile("tilerelease" ::: "memory"); }

// The tile instructions as assembly (no compiler flag, the same for GCC and clang). Loads and
// stores clobber memory so that the compiler keeps them after the stores that fill their source.
template <int kTile>
inline void tile_load(const void* p, std::int64_t stride_bytes) {
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(p), "r"(stride_bytes), "i"(kTile) : "memory");
}
template <int kTile>
inline void tile_store(void* p, std::int64_t stride_bytes) {
  __asm__ volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(p), "r"(stride_bytes), "i"(kTile) : "memory");
}
template <int kTile>
inline void tile_zero() {
  __asm__ volatile("tilezero %%tmm%c0" ::"i"(kTile));
}
/// C += A · B in tiles: pairs of bf16 into float32 sums.
template <int kC, int kA, int kB>
inline void tile_dot_bf16() {
  __asm__ volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(kC), "i"(kA), "i"(kB));
}
/// C += A · B in tiles: fours of signed bytes into int32 sums (exact).
template <int kC, int kA, int kB>
inline void tile_dot_i8() {
  __asm__ volatile("tdpbssd %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(kC), "i"(kA), "i"(kB));
}

/// The nearest bf16 of 16 floats, ties to even, NaN kept (to_bf16's integer rounding).
inline __m256i round_to_bf16(F x) {
  const I u = _mm512_castps_si512(x);
  const I rounded = _mm512_srli_epi32(
      _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)))),
      16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  return _mm512_cvtepi32_epi16(_mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
}

/// The float32 values of 16 bf16.
inline F bf16_to_floats(__m256i b) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)); }

/// Elements of one activation tile: 16 rows of kAmxStep bf16.
constexpr std::int64_t kAmxTileElements = kAmxRows * kAmxStep;

/// The rows of x as kPlanes bf16 planes in `scratch`: plane 0 the rows rounded to bf16, each later
/// plane the rounding of what the earlier ones leave (0 where a value is not finite). They are
/// laid out as the tiles gemm_amx loads, each 1 KiB in one piece: for each 16 rows (the last
/// padded with zero rows), each kAmxStep of the depth (the last padded with zeros), each plane,
/// the 16 rows' kAmxStep bf16. (Rows at their own stride would put a tile's 16 lines in one L1
/// set wherever the stride is a multiple of 4 KiB.) ActivationRows::xb, with ldxb the padded depth.
template <int kPlanes>
inline void bf16_planes(const MatIn& x, ActivationRows& act, Scratch& scratch) {
  const std::int64_t rows = x.rows(), cols = x.cols(), steps = (cols + kAmxStep - 1) / kAmxStep;
  const std::int64_t row_blocks = (rows + kAmxRows - 1) / kAmxRows;
  bf16* out = scratch.array<bf16>(static_cast<std::size_t>(row_blocks * steps * kPlanes * kAmxTileElements));
  act.xb = out;
  act.ldxb = steps * kAmxStep;
  act.xb_planes = kPlanes;
  if (scratch.measuring()) return;
  parallel_for(0, row_blocks * kAmxRows, steps * kAmxStep * 2 * kPlanes, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const float* row = r < rows ? x.row(r).data() : nullptr;
      bf16* tiles = out + r / kAmxRows * steps * kPlanes * kAmxTileElements + r % kAmxRows * kAmxStep;
      for (std::int64_t k = 0; k < steps * kAmxStep; k += kLanes) {
        const std::int64_t valid = row ? std::clamp<std::int64_t>(cols - k, 0, kLanes) : 0;
        F rest = valid > 0 ? _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << valid) - 1), row + k) : zero();
        bf16* at = tiles + k / kAmxStep * kPlanes * kAmxTileElements + k % kAmxStep;
        GLRNN_UNROLL
        for (int p = 0; p < kPlanes; ++p) {
          const __m256i b = round_to_bf16(rest);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(at + p * kAmxTileElements), b);
          if (p + 1 < kPlanes) {
            const F taken = bf16_to_floats(b);
            const __mmask16 finite = _mm512_cmp_ps_mask(abs(taken), set1(INFINITY), _CMP_LT_OQ);
            rest = _mm512_maskz_sub_ps(finite, rest, taken);
          }
        }
      }
    }
  });
}

/// Rows [0, rows) and columns [0, cols) of y (stride ldy) = keep · y + tiles 0-3, a block of
/// results (tiles 0-1 where rows <= kAmxRows), through `block` (kAmxBlock x kAmxBlock floats).
/// Each slab of the depth starts from zero tiles and is added to y in float32, so the sums go in
/// slabs as the float kernels' do (one chain over the whole depth would be less accurate).
inline void add_result_tiles(float* y, std::int64_t ldy, std::int64_t rows, std::int64_t cols, float keep,
                             float* block) {
  constexpr std::int64_t kStride = kAmxBlock * sizeof(float);
  tile_store<0>(block, kStride);
  tile_store<1>(block + kAmxRows, kStride);
  if (rows > kAmxRows) {
    tile_store<2>(block + kAmxRows * kAmxBlock, kStride);
    tile_store<3>(block + kAmxRows * kAmxBlock + kAmxRows, kStride);
  }
  for (std::int64_t m = 0; m < rows; ++m) {
    const F row[2] = {load(block + m * kAmxBlock), load(block + m * kAmxBlock + kLanes)};
    write_tile_row<2>(y + m * ldy, row, cols, keep);
  }
}

/// Tiles 0-3, a block of results, set to zero.
inline void zero_result_tiles() {
  tile_zero<0>();
  tile_zero<1>();
  tile_zero<2>();
  tile_zero<3>();
}

/// Tiles 0-3 += activations times the panel's `steps` steps: `a` the first of the tiles of a
/// block's first 16 rows at this slab (bf16_planes), `next_rows` elements before those of the
/// next 16 (where `two_row_blocks`).
inline void multiply_block(const bf16* a, std::int64_t next_rows, int planes, bool two_row_blocks, const float* panel,
                           std::int64_t steps) {
  constexpr std::int64_t kTileStride = kAmxStep * sizeof(bf16), kPanelStride = kFloatNr * sizeof(float);
  for (std::int64_t s = 0; s < steps; ++s) {
    const float* b = panel + s * (kAmxStep / 2) * kFloatNr;
    tile_load<6>(b, kPanelStride);
    tile_load<7>(b + kAmxRows, kPanelStride);
    for (int p = 0; p < planes; ++p) {
      const bf16* tile = a + (s * planes + p) * kAmxTileElements;
      tile_load<4>(tile, kTileStride);
      tile_dot_bf16<0, 4, 6>();
      tile_dot_bf16<1, 4, 7>();
      if (two_row_blocks) {
        tile_load<5>(tile + next_rows, kTileStride);
        tile_dot_bf16<2, 5, 6>();
        tile_dot_bf16<3, 5, 7>();
      }
    }
  }
}

/// Bytes of gemm_amx's work memory: a panel, and a block of results.
constexpr std::size_t kAmxWorkBytes = kFloatPanelBytes + kAmxBlock * kAmxBlock * sizeof(float);

/// Y[0..M)[n_lo, n_hi) = X · W^T for bf16 W with rows at w + n·ldw (K long) and X the sum of
/// act's bf16 planes. The depth goes in slabs: each slab's panels are multiplied with every row
/// block while the slab of activations stays in cache, and the results are added up in Y.
inline void gemm_amx(const bf16* w, std::int64_t ldw, std::int64_t n_lo, std::int64_t n_hi, std::int64_t K,
                     const ActivationRows& x, float* y, std::int64_t ldy, void* work) {
  auto* panel = static_cast<float*>(work);
  float* block = panel + kFloatPanelBytes / sizeof(float);
  configure_tiles(kAmxStep * sizeof(bf16));
  for (std::int64_t k0 = 0; k0 < K; k0 += kBf16Kc) {
    const std::int64_t kc = std::min(kBf16Kc, K - k0), steps = (kc + kAmxStep - 1) / kAmxStep;
    for (std::int64_t n0 = n_lo; n0 < n_hi; n0 += kFloatNr) {
      const std::int64_t cols = std::min<std::int64_t>(kFloatNr, n_hi - n0);
      prefetch_next_panel(w, ldw, n0, n_hi, k0, kBf16Kc, K);
      pack_bf16_pairs(w + n0 * ldw, ldw, cols, k0, kc, K, panel);
      for (std::int64_t m0 = 0; m0 < x.rows; m0 += kAmxBlock) {
        const std::int64_t rows = std::min(kAmxBlock, x.rows - m0);
        zero_result_tiles();
        const std::int64_t row_tiles = x.ldxb / kAmxStep * x.xb_planes * kAmxTileElements;  // 16 rows' tiles
        multiply_block(x.xb + m0 / kAmxRows * row_tiles + k0 / kAmxStep * x.xb_planes * kAmxTileElements, row_tiles,
                       x.xb_planes, rows > kAmxRows, panel, steps);
        add_result_tiles(y + m0 * ldy + n0, ldy, rows, cols, k0 > 0 ? 1.0f : 0.0f, block);
      }
    }
  }
  release_tiles();
}

// ---- float32 matrices rounded to bf16 -----------------------------------------------------------
// The products between activations of the bf16-activation mode (the delta rule's chunk, docs/
// delta_net.md §2): both sides rounded to bf16 (vcvtne2ps2bf16: to nearest even, subnormals as
// zero) as they are copied into tiles, each product of two bf16 exact in float32 and the sums in
// float32 over the whole depth, as fla's chunk kernels multiply a bf16 model's values.

/// 16 x 16 bf16 pairs of float32 X (row i at x + i·ldx; rows from `rows` and columns from `cols`
/// on read as zero), rounded. by_rows: v[i] is row i's first 32 values, pairs of adjacent columns
/// (a tile row of A [M, K], or of B given [N, K] once transposed); otherwise v[i] pairs rows 2i
/// and 2i + 1 over the first 16 columns (a tile row of B [K, N], or of A given [K, M] once
/// transposed). `transposed` then swaps the 16 x 16 pairs.
inline void rounded_pairs(const float* x, std::int64_t ldx, std::int64_t rows, std::int64_t cols, bool by_rows,
                          bool transposed, I v[kLanes]) {
  const auto valid = [](std::int64_t n) {
    return static_cast<__mmask16>(n >= kLanes ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1u);
  };
  const auto row = [&](std::int64_t i, std::int64_t from) {
    return i < rows ? _mm512_maskz_loadu_ps(valid(cols - from), x + i * ldx + from) : zero();
  };
  // vcvtne2ps2bf16 puts its second operand's 16 values in the low half; vpermw interleaves halves.
  const I interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                        5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  GLRNN_UNROLL
  for (int i = 0; i < kLanes; ++i) {
    if (by_rows) {
      v[i] = (I)_mm512_cvtne2ps_pbh(row(i, kLanes), row(i, 0));
    } else {
      v[i] = _mm512_permutexvar_epi16(interleave, (I)_mm512_cvtne2ps_pbh(row(2 * i + 1, 0), row(2 * i, 0)));
    }
  }
  if (transposed) transpose(v);
}

/// Tiles of A rounded (A [M, K] at stride lda, or given transposed, [K, M]): for each 16 rows, each
/// kAmxStep of the depth, 16 rows of kAmxStep bf16, zero past M and K.
inline void pack_rounded_rows(const float* a, std::int64_t lda, bool a_transposed, std::int64_t M, std::int64_t K,
                              bf16* tiles) {
  const std::int64_t steps = (K + kAmxStep - 1) / kAmxStep;
  for (std::int64_t m0 = 0; m0 < M; m0 += kAmxRows)
    for (std::int64_t k0 = 0; k0 < K; k0 += kAmxStep) {
      I v[kLanes];
      if (a_transposed) rounded_pairs(a + k0 * lda + m0, lda, K - k0, M - m0, false, true, v);
      else rounded_pairs(a + m0 * lda + k0, lda, M - m0, K - k0, true, false, v);
      bf16* tile = tiles + (m0 / kAmxRows * steps + k0 / kAmxStep) * kAmxTileElements;
      GLRNN_UNROLL
      for (int r = 0; r < kLanes; ++r) storeu_i(tile + r * kAmxStep, v[r]);
    }
}

/// Columns [n0, n0 + cols) of B rounded, as two B tiles per kAmxStep of the depth (the bf16
/// panel's layout: row p holds pair p of kAmxBlock columns), zero past cols and K. B is [K, N] at
/// stride ldb, or given [N, K] (b_rows_are_n).
inline void pack_rounded_panel(const float* b, std::int64_t ldb, bool b_rows_are_n, std::int64_t n0, std::int64_t cols,
                               std::int64_t K, float* panel) {
  for (std::int64_t k0 = 0; k0 < K; k0 += kAmxStep)
    for (std::int64_t h = 0; h < kAmxBlock; h += kLanes) {
      I v[kLanes];
      if (b_rows_are_n) rounded_pairs(b + (n0 + h) * ldb + k0, ldb, cols - h, K - k0, true, true, v);
      else rounded_pairs(b + k0 * ldb + n0 + h, ldb, K - k0, cols - h, false, false, v);
      float* rows = panel + k0 / 2 * kAmxBlock + h;
      GLRNN_UNROLL
      for (int p = 0; p < kLanes; ++p) storeu_i(rows + p * kAmxBlock, v[p]);
    }
}

/// Tiles 0-3 (0-1 without a second row block) loaded from (kStore: stored to) the 32 x 32 floats
/// of C at `at`, rows ldc floats apart.
template <bool kStore>
inline void result_tiles_at(float* at, std::int64_t ldc, bool two_row_blocks) {
  const std::int64_t stride = ldc * static_cast<std::int64_t>(sizeof(float));
  const auto move = [&](auto tile, float* p) {
    if constexpr (kStore) tile_store<decltype(tile)::value>(p, stride);
    else tile_load<decltype(tile)::value>(p, stride);
  };
  move(std::integral_constant<int, 0>{}, at);
  move(std::integral_constant<int, 1>{}, at + kAmxRows);
  if (two_row_blocks) {
    move(std::integral_constant<int, 2>{}, at + kAmxRows * ldc);
    move(std::integral_constant<int, 3>{}, at + kAmxRows * ldc + kAmxRows);
  }
}

/// Bytes of gemm_amx_rounded's work memory: A's tiles, a panel and a block of results.
inline std::size_t amx_rounded_work_bytes(std::int64_t M, std::int64_t K) {
  const std::int64_t steps = (K + kAmxStep - 1) / kAmxStep, row_blocks = (M + kAmxRows - 1) / kAmxRows;
  return static_cast<std::size_t>(row_blocks * steps * kAmxTileElements) * sizeof(bf16) +
         static_cast<std::size_t>(steps * kAmxStep * kAmxBlock) * sizeof(bf16) + kAmxBlock * kAmxBlock * sizeof(float);
}

/// PathKernels::gemm_rounded: C[0..M)[n_lo, n_hi) = keep · C + round(A) · round(B), the arguments
/// as gemm_f32's. Blocks of whole tiles with keep 0 or 1 go between C and the tile registers
/// directly; any other block through the block of results.
inline void gemm_amx_rounded(const float* a, std::int64_t lda, bool a_transposed, const float* b, std::int64_t ldb,
                             bool b_rows_are_n, float* c, std::int64_t ldc, std::int64_t M, std::int64_t K,
                             std::int64_t n_lo, std::int64_t n_hi, float keep, void* work) {
  const std::int64_t steps = (K + kAmxStep - 1) / kAmxStep, row_tiles = steps * kAmxTileElements;
  auto* a_tiles = static_cast<bf16*>(work);
  auto* panel = reinterpret_cast<float*>(a_tiles + (M + kAmxRows - 1) / kAmxRows * row_tiles);
  auto* block = reinterpret_cast<float*>(panel + steps * kAmxStep / 2 * kAmxBlock);
  pack_rounded_rows(a, lda, a_transposed, M, K, a_tiles);
  configure_tiles(kAmxStep * sizeof(bf16));
  for (std::int64_t n0 = n_lo; n0 < n_hi; n0 += kAmxBlock) {
    const std::int64_t cols = std::min<std::int64_t>(kAmxBlock, n_hi - n0);
    pack_rounded_panel(b, ldb, b_rows_are_n, n0, cols, K, panel);
    for (std::int64_t m0 = 0; m0 < M; m0 += kAmxBlock) {
      const std::int64_t rows = std::min(kAmxBlock, M - m0);
      const bool two_row_blocks = rows > kAmxRows;
      const bool direct = cols == kAmxBlock && rows % kAmxRows == 0 && (keep == 0.0f || keep == 1.0f);
      float* at = c + m0 * ldc + n0;
      if (direct && keep == 1.0f) result_tiles_at<false>(at, ldc, two_row_blocks);
      else zero_result_tiles();
      multiply_block(a_tiles + m0 / kAmxRows * row_tiles, row_tiles, 1, two_row_blocks, panel, steps);
      if (direct) result_tiles_at<true>(at, ldc, two_row_blocks);
      else add_result_tiles(at, ldc, rows, cols, keep, block);
    }
  }
  release_tiles();
}

// ---- integer formats: int8 tiles, one block of the depth per tile product ------------------------
// The block sums of the integer formats (formats/format.hpp) are exact in int32 whatever the
// order, so one tile product per block of 32 (16 activation rows by 32 bytes, times 8 rows of 4
// bytes of 16 weight rows: a row group's block as it is stored, once unpacked) gives them, and
// each block's 32 x 32 sums are then scaled by both scales and added in float32, as the VNNI
// kernels do.

constexpr std::int64_t kAmxIntTileBytes = kAmxRows * kQuantBlock;  // 16 rows (or 8 rows of 4 x 16) of a block

/// Where ActivationRows::q_tiles puts block b of activation rows [16·j, 16·j + 16).
inline std::int64_t activation_tile_offset(std::int64_t row_block, std::int64_t b, std::int64_t blocks) {
  return (row_block * blocks + b) * kAmxIntTileBytes;
}

/// The integer formats' activations on this path: quantized as on avx512vnni and, for several
/// rows, copied into tiles of 16 rows by one block (the last rows zero): ActivationRows::q_tiles.
template <class Format>
inline void quantize_activation_tiles(const MatIn& x, ActivationRows& act, Scratch& scratch) {
  quantize_activations<Format, false>(x, act, scratch);
  if (x.rows() == 1) return;
  const std::int64_t rows = x.rows(), blocks = x.cols() / kQuantBlock, row_blocks = (rows + kAmxRows - 1) / kAmxRows;
  std::int8_t* tiles = scratch.array<std::int8_t>(static_cast<std::size_t>(row_blocks * blocks * kAmxIntTileBytes));
  act.q_tiles = tiles;
  if (scratch.measuring()) return;
  parallel_for(0, row_blocks * kAmxRows, blocks * kQuantBlock, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r)
      for (std::int64_t b = 0; b < blocks; ++b) {
        std::int8_t* to = tiles + activation_tile_offset(r / kAmxRows, b, blocks) + r % kAmxRows * kQuantBlock;
        if (r < rows) std::memcpy(to, act.q.row_q(r) + b * kQuantBlock, kQuantBlock);
        else std::memset(to, 0, kQuantBlock);
      }
  });
}

/// An integer panel: for each block, two B tiles (16 weight rows each, unpacked to bytes) and the
/// 32 rows' scales.
struct IntPanel {
  std::int8_t* tiles;
  float* scales;
  static std::size_t bytes(std::int64_t blocks) {
    return static_cast<std::size_t>(blocks) * (2 * kAmxIntTileBytes + kAmxBlock * sizeof(float));
  }
  IntPanel(void* at, std::int64_t blocks)
      : tiles(static_cast<std::int8_t*>(at)), scales(reinterpret_cast<float*>(tiles + blocks * 2 * kAmxIntTileBytes)) {}

  /// Block b of the kAmxBlock rows from n0 (rows from `rows` on weight 0), unpacked.
  template <class Format>
  void unpack(const IntRows<Format>& w, std::int64_t n0, std::int64_t rows, std::int64_t b) const {
    for (int j = 0; j < 2; ++j) {
      std::int8_t* to = tiles + (2 * b + j) * kAmxIntTileBytes;
      float* scale = scales + b * kAmxBlock + j * kAmxRows;
      if (j * kAmxRows >= rows) {
        std::memset(to, 0, kAmxIntTileBytes);
        store(scale, zero());
        continue;
      }
      const std::uint8_t* tile = w.tile(n0 + j * kAmxRows, b);
      prefetch_ahead(tile, sizeof(typename Format::Unit) * kRowGroup);
      for_each_step<Format, StepValues::Weights>(tile, 0, [&](int g, I step) { storeu_i(to + g * 64, step); });
      store(scale, load(reinterpret_cast<const f16*>(tile)));
    }
  }
};

/// Bytes of gemm_amx_int's work memory for a depth of K: two panels (the one being multiplied
/// and the next), two blocks of int32 sums and a block of float32 results.
inline std::size_t amx_int_work_bytes(std::int64_t K) {
  return 2 * IntPanel::bytes(K / kQuantBlock) + 3 * kAmxBlock * kAmxBlock * sizeof(float);
}

/// Y[0..M)[n_lo, n_hi) = X · W^T for W of an integer format: panels of kAmxBlock rows in row
/// groups in tiles; any rows after the groups by the VNNI kernel. The work is pipelined so that
/// the tile unit, the vector units and the loads from memory overlap: block b's sums are scaled
/// while block b + 1's tile products run, and while a panel's first row block is multiplied the
/// next panel is unpacked, which is where the weights are read from memory.
template <class Format>
inline void gemm_amx_int(const IntRows<Format>& w, std::int64_t n_lo, std::int64_t n_hi, const ActivationRows& x,
                         float* y, std::int64_t ldy, void* work) {
  const std::int64_t blocks = w.blocks, M = x.rows;
  const IntPanel panels[2] = {IntPanel(work, blocks),
                              IntPanel(static_cast<std::byte*>(work) + IntPanel::bytes(blocks), blocks)};
  auto* sums = reinterpret_cast<std::int32_t*>(static_cast<std::byte*>(work) + 2 * IntPanel::bytes(blocks));
  float* results = reinterpret_cast<float*>(sums + 2 * kAmxBlock * kAmxBlock);
  const std::int64_t tiled_end = std::max(n_lo, std::min(n_hi, w.grouped_rows / kAmxBlock * kAmxBlock));
  configure_tiles(kQuantBlock);
  for (std::int64_t b = 0; b < blocks && n_lo < tiled_end; ++b) panels[0].unpack(w, n_lo, tiled_end - n_lo, b);
  for (std::int64_t n0 = n_lo, turn = 0; n0 < tiled_end; n0 += kAmxBlock, ++turn) {
    const IntPanel& panel = panels[turn % 2];
    const IntPanel& next = panels[(turn + 1) % 2];
    const std::int64_t cols = std::min<std::int64_t>(kAmxBlock, tiled_end - n0), next_rows = tiled_end - n0 - kAmxBlock;
    for (std::int64_t m0 = 0; m0 < M; m0 += kAmxBlock) {
      const std::int64_t rows = std::min(kAmxBlock, M - m0);
      const bool two_row_blocks = rows > kAmxRows;
      for (std::int64_t i = 0; i < rows * kAmxBlock; i += kLanes) store(results + i, zero());
      const auto scale_block = [&](std::int64_t b) {
        const std::int32_t* s = sums + b % 2 * kAmxBlock * kAmxBlock;
        const F scale_lo = load(panel.scales + b * kAmxBlock), scale_hi = load(panel.scales + b * kAmxBlock + kLanes);
        for (std::int64_t m = 0; m < rows; ++m) {
          const F sx = set1(x.q.row_scale(m0 + m)[b]);
          float* r = results + m * kAmxBlock;
          store(r, fma(to_floats(loadu_i(s + m * kAmxBlock)), mul(scale_lo, sx), load(r)));
          store(r + kLanes, fma(to_floats(loadu_i(s + m * kAmxBlock + kLanes)), mul(scale_hi, sx), load(r + kLanes)));
        }
      };
      for (std::int64_t b = 0; b < blocks; ++b) {
        constexpr std::int64_t kStride = kAmxBlock * sizeof(std::int32_t);
        std::int32_t* s = sums + b % 2 * kAmxBlock * kAmxBlock;
        const std::int8_t* a = x.q_tiles + activation_tile_offset(m0 / kAmxRows, b, blocks);
        tile_zero<0>();
        tile_zero<1>();
        tile_load<4>(a, kQuantBlock);
        tile_load<6>(panel.tiles + 2 * b * kAmxIntTileBytes, 64);
        tile_load<7>(panel.tiles + (2 * b + 1) * kAmxIntTileBytes, 64);
        tile_dot_i8<0, 4, 6>();
        tile_dot_i8<1, 4, 7>();
        if (two_row_blocks) {
          tile_zero<2>();
          tile_zero<3>();
          tile_load<5>(a + blocks * kAmxIntTileBytes, kQuantBlock);
          tile_dot_i8<2, 5, 6>();
          tile_dot_i8<3, 5, 7>();
        }
        if (b > 0) scale_block(b - 1);
        if (m0 == 0 && next_rows > 0) next.unpack(w, n0 + kAmxBlock, next_rows, b);
        tile_store<0>(s, kStride);
        tile_store<1>(s + kAmxRows, kStride);
        if (two_row_blocks) {
          tile_store<2>(s + kAmxRows * kAmxBlock, kStride);
          tile_store<3>(s + kAmxRows * kAmxBlock + kAmxRows, kStride);
        }
      }
      scale_block(blocks - 1);
      for (std::int64_t m = 0; m < rows; ++m) {
        const F row[2] = {load(results + m * kAmxBlock), load(results + m * kAmxBlock + kLanes)};
        write_tile_row<2>(y + (m0 + m) * ldy + n0, row, cols, false);
      }
    }
  }
  release_tiles();
  if (tiled_end < n_hi) gemm_int<Format>(w, tiled_end, n_hi, x.q, y, ldy, static_cast<std::uint8_t*>(work));
}

/// This path's kernels: avx512bf16's, with bf16 weights' prompts and batches in tiles.
template <class Format>
inline FormatKernels format_kernels_amx() {
  FormatKernels kernels = format_kernels_bf16_dot<Format>();
  if constexpr (groups_rows(Format::kLayout)) {
    ProductKernels& k = kernels.products;
    k.prepare = &quantize_activation_tiles<Format>;
    k.gemm = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y,
                std::int64_t ldy, void* work) { gemm_amx_int<Format>(IntRows<Format>(w), lo, hi, x, y, ldy, work); };
    k.work_bytes = [](std::int64_t K) { return std::max(amx_int_work_bytes(K), kIntPanelBytes); };
  }
  if constexpr (Format::kLayout == UnitLayout::Bfloat16) {
    constexpr auto gemm = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y,
                             std::int64_t ldy, void* work) {
      gemm_amx(static_cast<const bf16*>(w.data), w.cols, lo, hi, w.cols, x, y, ldy, work);
    };
    constexpr auto work_bytes = [](std::int64_t) { return kAmxWorkBytes; };
    // Decode keeps the float32 kernel; the exact planes are made only for several rows.
    ProductKernels& exact = kernels.products;
    exact.prepare = [](const MatIn& x, ActivationRows& act, Scratch& scratch) {
      if (x.rows() > 1) bf16_planes<kExactPlanes>(x, act, scratch);
    };
    exact.gemm = gemm;
    exact.work_bytes = work_bytes;
    exact.rows_per_panel = kFloatNr;
    ProductKernels& rounded = kernels.bf16_activations;
    rounded.prepare = [](const MatIn& x, ActivationRows& act, Scratch& scratch) {
      if (x.rows() > 1) bf16_planes<1>(x, act, scratch);
      else bf16_rows(x, act, scratch);  // the row that decode's kernel reads
    };
    rounded.gemm = gemm;
    rounded.work_bytes = work_bytes;
  }
  return kernels;
}
