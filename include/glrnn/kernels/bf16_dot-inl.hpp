// The products of the bf16-activation mode (LoadOptions::bf16_activations, docs/kernels.md §9):
// bf16 weights times activations rounded to bf16, by an instruction that multiplies pairs of bf16
// and adds both products to a float32 lane (dot_bf16; AVX-512 BF16's vdpbf16ps). Included at the
// end of kernels-inl.hpp on paths with GLRNN_SIMD_BF16, whose other kernels those paths keep. No
// include guard and no includes.
//
// The activations come as bf16 rows padded with zeros to a multiple of kBf16Step. Decode takes a
// row of weights against them directly (one horizontal sum per row). Prompts pack kFloatNr rows
// of weights into a panel of pairs, pair p of every row side by side (a transpose of 32-bit
// units), and float_tile steps through it by Bf16PairStep: one activation pair broadcast against
// two vectors of rows where the float panel takes one float, twice the products per instruction.

constexpr std::int64_t kBf16Step = 2 * kLanes;  // bf16 elements per vector
constexpr std::int64_t kBf16Kc = 2 * kFloatKc;  // a panel's depth: the bytes of a float panel
static_assert(kBf16Kc / 2 * kFloatNr * sizeof(float) == kFloatPanelBytes, "a panel of pairs fills a float panel's bytes");

/// kBf16Step bf16 from p as pairs, zero past `valid` (a row's end is never read past).
inline I load_bf16_pairs(const bf16* p, std::int64_t valid) {
  if (valid >= kBf16Step) return loadu_i(p);
  alignas(64) bf16 t[kBf16Step] = {};
  std::memcpy(t, p, static_cast<std::size_t>(std::max<std::int64_t>(valid, 0)) * sizeof(bf16));
  return loadu_i(t);
}

/// Σ w[i]·x[i] for i < n: a row of bf16 weights against bf16 activations that are padded with
/// zeros to a multiple of kBf16Step; four accumulators, prefetching as dot_float does.
inline float dot_bf16_row(const bf16* w, const bf16* x, std::int64_t n) {
  F acc[4] = {zero(), zero(), zero(), zero()};
  std::int64_t i = 0;
  for (; i + 4 * kBf16Step <= n; i += 4 * kBf16Step) {
    prefetch_ahead(w + i, 4 * kBf16Step * sizeof(bf16));
    GLRNN_UNROLL
    for (int k = 0; k < 4; ++k) acc[k] = dot_bf16(acc[k], loadu_i(w + i + k * kBf16Step), loadu_i(x + i + k * kBf16Step));
  }
  for (; i < n; i += kBf16Step) acc[0] = dot_bf16(acc[0], load_bf16_pairs(w + i, n - i), loadu_i(x + i));
  return hsum(add(add(acc[0], acc[1]), add(acc[2], acc[3])));
}

/// Rows [0, rows) of bf16 weights (row r at w + r·ld, K long), depth [k0, k0 + kc) ->
/// panel[pair][kFloatNr] as pairs, kc rounded up to kBf16Step; rows from `rows` on and depth from
/// K on are 0.
inline void pack_bf16_pairs(const bf16* w, std::int64_t ld, std::int64_t rows, std::int64_t k0, std::int64_t kc,
                            std::int64_t K, float* panel) {
  pack_transposed<I>(rows, kc, kBf16Step, panel, [&](std::int64_t row, std::int64_t k) {
    prefetch_l2(w + row * ld + k0 + k + 2 * kBf16Step);  // as in pack_float_rows
    return load_bf16_pairs(w + row * ld + k0 + k, K - k0 - k);
  });
}

/// The bf16 panel's tile step: a pair of bf16 activations broadcast against the panel's pairs.
struct Bf16PairStep {
  using Activation = bf16;
  static constexpr std::int64_t kElements = 2;
  static const bf16* at(const bf16* x, std::int64_t ldx, std::int64_t row, std::int64_t k) { return x + row * ldx + k; }
  static I load_panel(const float* p) { return loadu_i(p); }
  static I broadcast(const bf16* x) { return broadcast_i32(x); }
  static F multiply_add(F acc, I x, I w) { return dot_bf16(acc, x, w); }
};

/// Y[0..M)[n_lo, n_hi) = X · W^T for bf16 W with rows at w + n·ldw (K long) and X [M, K] in bf16
/// at stride ldx, padded with zeros to a multiple of kBf16Step.
inline void gemm_bf16(const bf16* w, std::int64_t ldw, std::int64_t n_lo, std::int64_t n_hi, std::int64_t K,
                      const bf16* x, std::int64_t ldx, std::int64_t M, float* y, std::int64_t ldy, float* panel) {
  gemm_panels<Bf16PairStep>(n_lo, n_hi, K, kBf16Kc, x, ldx, M, y, ldy, /*keep=*/0.0f,
                            [&](std::int64_t n0, std::int64_t cols, std::int64_t k0, std::int64_t kc) {
                              prefetch_next_panel(w, ldw, n0, n_hi, k0, kBf16Kc, K);
                              pack_bf16_pairs(w + n0 * ldw, ldw, cols, k0, kc, K, panel);
                              return PanelSlab{panel, kFloatNr, (kc + kBf16Step - 1) / kBf16Step * kBf16Step / 2};  // pairs
                            });
}

/// This path's kernels: kernels-inl.hpp's, and for bf16 weights the bf16-activation products.
template <class Format>
inline FormatKernels format_kernels_bf16_dot() {
  FormatKernels kernels = format_kernels<Format>();
  if constexpr (Format::kLayout == UnitLayout::Bfloat16) {
    ProductKernels& k = kernels.bf16_activations;
    k.prepare = &bf16_rows;
    k.matvec = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y) {
      const bf16* base = static_cast<const bf16*>(w.data);
      for (std::int64_t r = lo; r < hi; ++r) y[r] = dot_bf16_row(base + r * w.cols, x.xb, w.cols);
    };
    k.gemm = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y,
                     std::int64_t ldy, void* work) {
      gemm_bf16(static_cast<const bf16*>(w.data), w.cols, lo, hi, w.cols, x.xb, x.ldxb, x.rows, y, ldy,
                static_cast<float*>(work));
    };
    k.work_bytes = [](std::int64_t) { return kFloatPanelBytes; };
    k.rows_per_panel = kFloatNr;
  }
  return kernels;
}
