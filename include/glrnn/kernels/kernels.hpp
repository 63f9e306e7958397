#pragma once
// The products of glrnn, with the instruction set chosen at run time (core/cpu.hpp). For every
// weight format and every kernel path there is one table entry (docs/kernels.md): a matrix-vector
// kernel for one row of activations (decode: bound by reading the weights once) and a packed-panel
// matrix kernel for several (prompts and batches: bound by arithmetic). The integer formats
// multiply activations quantized once per product. matmul() splits the work between threads;
// product() runs the float32 products that are not with weights (HGRN2's chunks, attention).

#include <algorithm>    // std::min, std::max
#include <array>        // std::array
#include <cmath>        // std::exp
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t
#include <cstring>      // std::memcpy
#include <type_traits>  // std::is_same_v

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/cpu.hpp"
#include "glrnn/core/math.hpp"
#include "glrnn/core/simd.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/formats/registry.hpp"
#include "glrnn/kernels/portable.hpp"

namespace glrnn::kernels {

/// Rows of activations as the kernels take them: float32; quantized for the integer formats; for
/// bf16 weights in the bf16-activation mode, rounded to bf16 and padded with zeros to a multiple
/// of 32 (the widest vector of pairs); on the amx path, as tiles of bf16 planes that sum to the
/// activations (kernels/gemm_amx-inl.hpp).
struct ActivationRows {
  const float* x = nullptr;  // [rows, cols] at stride ldx
  std::int64_t ldx = 0, rows = 0;
  QuantizedRows q;
  const bf16* xb = nullptr;  // [rows, cols rounded up to 32] at stride ldxb, or null
  std::int64_t ldxb = 0;
  int xb_planes = 1;                  // the amx path's planes
  const std::int8_t* q_tiles = nullptr;  // the amx path's quantized rows as tiles, or null
};

/// A weight format's products with one kind of activations on one path.
struct ProductKernels {
  /// Fills what matvec and gemm read of the activations beyond the float32 rows (quantized rows
  /// and whatever extras this path's kernels use, bf16 rows), in `scratch`; null: nothing.
  void (*prepare)(const MatIn& x, ActivationRows& act, Scratch& scratch) = nullptr;
  /// y[r] = W.row(r) · x.row(0) for r in [lo, hi).
  void (*matvec)(const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y) = nullptr;
  /// y[m·ldy + r] = W.row(r) · x.row(m) for every row m of x and r in [lo, hi); `work` holds
  /// work_bytes(cols) bytes of this thread's own.
  void (*gemm)(const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y,
               std::int64_t ldy, void* work) = nullptr;
  std::size_t (*work_bytes)(std::int64_t cols) = nullptr;
  std::int64_t rows_per_panel = 1;  // gemm's unit of rows: threads split a product into these

  bool available() const { return matvec != nullptr; }
};

/// One weight format's kernels on one path.
struct FormatKernels {
  ProductKernels products;  // with the activations the format multiplies (formats/format.hpp)
  /// With the activations rounded to bf16, for matrices marked WeightMatrix::bf16_activations:
  /// bf16 weights on paths with bf16 dot products (docs/kernels.md §9); empty elsewhere.
  ProductKernels bf16_activations;
};

/// A path's kernels that do not depend on a weight format.
struct PathKernels {
  /// One row of activations to int8 blocks (QuantizedRows), q16 where not null.
  void (*quantize_row)(const float* x, std::int64_t n, std::int8_t* q, std::int16_t* q16, float* scale,
                       std::int32_t* sum) = nullptr;
  /// C[0..M)[n_lo, n_hi) = keep · C + A · B^T (B [N, K], b_rows_are_n) or A · B (B [K, N]); A is
  /// [M, K], or [K, M] where a_transposed (only with B [K, N]); keep = 0: C is not read.
  void (*gemm_f32)(const float* a, std::int64_t lda, bool a_transposed, const float* b, std::int64_t ldb,
                   bool b_rows_are_n, float* c, std::int64_t ldc, std::int64_t M, std::int64_t K, std::int64_t n_lo,
                   std::int64_t n_hi, float keep, void* work) = nullptr;
  std::size_t (*gemm_f32_work_bytes)(std::int64_t K) = nullptr;
  /// gemm_f32's product with A and B rounded to bf16 (Precision::Bf16), on paths that multiply
  /// bf16 in tiles (amx); null elsewhere. Its work memory depends on A's rows too.
  void (*gemm_rounded)(const float* a, std::int64_t lda, bool a_transposed, const float* b, std::int64_t ldb,
                       bool b_rows_are_n, float* c, std::int64_t ldc, std::int64_t M, std::int64_t K,
                       std::int64_t n_lo, std::int64_t n_hi, float keep, void* work) = nullptr;
  std::size_t (*gemm_rounded_work_bytes)(std::int64_t M, std::int64_t K) = nullptr;
  /// y[i] = f(x[i]) and y[i] = log(e^a[i] + e^b[i]) for i < n (kernels/elementwise.hpp).
  void (*apply)(Elementwise f, const float* x, float* y, std::int64_t n) = nullptr;
  void (*log_add_exp)(const float* a, const float* b, float* y, std::int64_t n) = nullptr;
  /// Σ a[i] · b[i] · e^(p[i] - q[i]) for i < n (kernels/elementwise.hpp).
  float (*decayed_dot)(const float* a, const float* b, const float* p, const float* q, std::int64_t n) = nullptr;
};

/// One row of activations to int8 blocks (PathKernels::quantize_row), and the lane offsets of one
/// quantized row (QuantizedRows::lane_offset).
using QuantizeRow = void (*)(const float* x, std::int64_t n, std::int8_t* q, std::int16_t* q16, float* scale,
                             std::int32_t* sum);
using LaneOffsets = void (*)(const std::int8_t* q, std::int64_t n, std::int32_t* out);

/// The rows of x quantized to int8 blocks in `scratch` (valid while the caller's Frame lasts), with
/// int16 copies if `with_q16` and, for one row, its lane offsets if `lane_offsets` is given (see
/// QuantizedRows): the integer formats' ProductKernels::prepare, each path asking for the extras
/// its own kernels read.
inline QuantizedRows quantize_rows(const MatIn& x, QuantizeRow quantize, bool with_q16, LaneOffsets lane_offsets,
                                   Scratch& scratch) {
  const std::int64_t rows = x.rows(), cols = x.cols(), blocks = cols / kQuantBlock;
  QuantizedRows q;
  q.rows = rows;
  q.cols = cols;
  q.q_stride = cols;
  q.block_stride = blocks;
  std::int8_t* values = scratch.array<std::int8_t>(static_cast<std::size_t>(rows * cols));
  std::int16_t* values16 = with_q16 ? scratch.array<std::int16_t>(static_cast<std::size_t>(rows * cols)) : nullptr;
  float* scales = scratch.array<float>(static_cast<std::size_t>(rows * blocks));
  std::int32_t* sums = scratch.array<std::int32_t>(static_cast<std::size_t>(rows * blocks));
  std::int32_t* offsets =
      lane_offsets != nullptr && rows == 1 ? scratch.array<std::int32_t>(static_cast<std::size_t>(cols / 4)) : nullptr;
  q.q = values;
  q.q16 = values16;
  q.scale = scales;
  q.sum = sums;
  q.lane_offset = offsets;
  if (scratch.measuring()) return q;
  parallel_for(0, rows, cols * 4, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r)
      quantize(x.row(r).data(), cols, values + r * cols, values16 ? values16 + r * cols : nullptr, scales + r * blocks,
               sums + r * blocks);
  });
  if (offsets) lane_offsets(values, cols, offsets);
  return q;
}

/// The rows of x rounded to bf16 in `scratch`, each padded with zeros to a multiple of 32, into
/// act.xb at stride act.ldxb: the bf16-activation products' ProductKernels::prepare.
inline void bf16_rows(const MatIn& x, ActivationRows& act, Scratch& scratch) {
  const std::int64_t rows = x.rows(), cols = x.cols(), ld = (cols + 31) / 32 * 32;
  bf16* out = scratch.array<bf16>(static_cast<std::size_t>(rows * ld));
  act.xb = out;
  act.ldxb = ld;
  if (scratch.measuring()) return;
  parallel_for(0, rows, ld * 2, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const float* row = x.row(r).data();
      for (std::int64_t i = 0; i < ld; ++i) out[r * ld + i] = i < cols ? to_bf16(row[i]) : bf16{0};
    }
  });
}

namespace portable {

/// Σ w[i] x[i] for any float format, dequantizing a chunk at a time.
template <class Format>
float dot_units(const typename Format::Unit* w, const float* x, std::int64_t n) {
  if constexpr (std::is_same_v<typename Format::Unit, float>) {
    return dot_f32(w, x, n);
  } else {
    constexpr std::int64_t kChunk = 256;
    float row[kChunk];
    float sum = 0.0f;
    for (std::int64_t i = 0; i < n; i += kChunk) {
      const std::int64_t len = std::min(kChunk, n - i);
      Format::dequantize(w + i, len, row);
      sum += dot_f32(row, x + i, len);
    }
    return sum;
  }
}

template <class Format>
FormatKernels path_format_kernels() {
  using Unit = typename Format::Unit;
  FormatKernels kernels{};
  ProductKernels& k = kernels.products;
  k.work_bytes = &row_space_bytes<Format>;
  if constexpr (Format::kActivations == Activations::Float32) {
    k.matvec = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y) {
      for (std::int64_t r = lo; r < hi; ++r) y[r] = dot_units<Format>(static_cast<const Unit*>(w.data) + r * w.cols, x.x, w.cols);
    };
    k.gemm = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y,
                std::int64_t ldy, void* work) {
      float* row = static_cast<float*>(work);
      for (std::int64_t r = lo; r < hi; ++r) {
        Format::dequantize(static_cast<const Unit*>(w.data) + r * w.cols, w.cols, row);
        for (std::int64_t m = 0; m < x.rows; ++m) y[m * ldy + r] = dot_f32(row, x.x + m * x.ldx, w.cols);
      }
    };
  } else {
    k.prepare = [](const MatIn& x, ActivationRows& act, Scratch& scratch) {
      act.q = quantize_rows(x, &quantize_row, false, nullptr, scratch);
    };
    k.matvec = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y) {
      const std::int64_t blocks = w.cols / kQuantBlock;
      std::int8_t q[kQuantBlock];
      for (std::int64_t r = lo; r < hi; ++r) {
        float sum = 0.0f;
        for (std::int64_t b = 0; b < blocks; ++b) {
          const Unit unit = weight_unit<Format>(w, r, b);
          Format::unpack(unit, q);
          const float s = Format::scale(unit);
          sum += dot_i8(q, &s, x.q.row_q(0) + b * kQuantBlock, x.q.row_scale(0) + b, 1);
        }
        y[r] = sum;
      }
    };
    k.gemm = [](const WeightMatrix& w, const ActivationRows& x, std::int64_t lo, std::int64_t hi, float* y,
                std::int64_t ldy, void* work) {
      const std::int64_t blocks = w.cols / kQuantBlock;
      auto* q = static_cast<std::int8_t*>(work);
      float* s = reinterpret_cast<float*>(q + w.cols);
      for (std::int64_t r = lo; r < hi; ++r) {
        unpack_row<Format>(w, r, q, s);
        for (std::int64_t m = 0; m < x.rows; ++m) y[m * ldy + r] = dot_i8(q, s, x.q.row_q(m), x.q.row_scale(m), blocks);
      }
    };
  }
  return kernels;
}

inline PathKernels path_kernels() {
  PathKernels k{};
  k.quantize_row = &quantize_row;
  k.gemm_f32 = [](const float* a, std::int64_t lda, bool a_transposed, const float* b, std::int64_t ldb,
                  bool b_rows_are_n, float* c, std::int64_t ldc, std::int64_t M, std::int64_t K, std::int64_t n_lo,
                  std::int64_t n_hi, float keep, void*) {
    gemm_f32(a, lda, a_transposed, b, ldb, b_rows_are_n, c, ldc, M, K, n_lo, n_hi, keep);
  };
  k.gemm_f32_work_bytes = [](std::int64_t) { return std::size_t{0}; };
  // The scalar reference itself (core/math.hpp).
  k.apply = [](Elementwise f, const float* x, float* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = glrnn::apply(f, x[i]);
  };
  k.log_add_exp = [](const float* a, const float* b, float* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = glrnn::log_add_exp(a[i], b[i]);
  };
  k.decayed_dot = [](const float* a, const float* b, const float* p, const float* q, std::int64_t n) {
    float sum = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) sum += a[i] * b[i] * std::exp(p[i] - q[i]);
    return sum;
  };
  return k;
}

}  // namespace portable
}  // namespace glrnn::kernels

// PathCode<path> says whether this architecture compiled `path` and gives its table entries: the
// portable kernels above everywhere, and for each SIMD path kernels-inl.hpp compiled in that
// path's target region, against that path's primitives.
namespace glrnn::kernels::detail {
template <KernelPath>
struct PathCode {
  static constexpr bool kCompiled = false;
};
}  // namespace glrnn::kernels::detail

#define GLRNN_PATH Portable
#define GLRNN_PATH_NAMESPACE portable
#include "glrnn/kernels/path_code-inl.hpp"
#undef GLRNN_PATH
#undef GLRNN_PATH_NAMESPACE

#define GLRNN_EACH_PATH_SCOPE kernels
#define GLRNN_EACH_PATH_TEXT "glrnn/kernels/kernels-inl.hpp"
#define GLRNN_EACH_PATH_AFTER "glrnn/kernels/path_code-inl.hpp"
#include "glrnn/core/each_simd_path.hpp"

namespace glrnn::kernels {

namespace detail {
constexpr std::size_t kPaths = kKernelPathCount;

/// `Format`'s kernels on `path`: empty where this architecture has no such path.
template <class Format, KernelPath path>
FormatKernels format_kernels_on() {
  if constexpr (PathCode<path>::kCompiled) return PathCode<path>::template format<Format>();
  else return {};
}
template <KernelPath path>
PathKernels path_kernels_on() {
  if constexpr (PathCode<path>::kCompiled) return PathCode<path>::path_wide();
  else return {};
}

template <class Format>
std::array<FormatKernels, kPaths> format_kernels_per_path() {
  return {
#define GLRNN_PATH_ENTRY(path, name) format_kernels_on<Format, KernelPath::path>(),
      GLRNN_KERNEL_PATHS(GLRNN_PATH_ENTRY)
#undef GLRNN_PATH_ENTRY
  };
}

/// Every format's kernels on every path. A template of nothing, so that a program can compile the
/// kernels in one translation unit of its choice (glrnn/instantiations.hpp).
template <class = void>
const std::array<std::array<FormatKernels, kPaths>, kWeightTypeCount>& format_kernel_table() {
  static const std::array<std::array<FormatKernels, kPaths>, kWeightTypeCount> table = {
#define GLRNN_FORMAT_KERNELS(value, Format) format_kernels_per_path<Format>(),
      GLRNN_WEIGHT_FORMATS(GLRNN_FORMAT_KERNELS)
#undef GLRNN_FORMAT_KERNELS
  };
  return table;
}

template <class = void>
const std::array<PathKernels, kPaths>& path_kernel_table() {
  static const std::array<PathKernels, kPaths> table = {
#define GLRNN_PATH_ENTRY(path, name) path_kernels_on<KernelPath::path>(),
      GLRNN_KERNEL_PATHS(GLRNN_PATH_ENTRY)
#undef GLRNN_PATH_ENTRY
  };
  return table;
}

#if defined(GLRNN_EXTERN_INSTANTIATIONS)
extern template const std::array<std::array<FormatKernels, kPaths>, kWeightTypeCount>& format_kernel_table<void>();
extern template const std::array<PathKernels, kPaths>& path_kernel_table<void>();
#endif
}  // namespace detail

/// The kernels of `type` on `path` (a path the CPU supports: see cpu_supports).
inline const FormatKernels& format_kernels(WeightType type, KernelPath path) {
  return detail::format_kernel_table()[static_cast<std::size_t>(type)][static_cast<std::size_t>(path)];
}

/// Whether `path` has the products of the bf16-activation mode (LoadOptions::bf16_activations).
inline bool has_bf16_activation_products(KernelPath path) {
  return format_kernels(WeightType::BF16, path).bf16_activations.available();
}

inline const PathKernels& path_kernels(KernelPath path) {
  return detail::path_kernel_table()[static_cast<std::size_t>(path)];
}

/// Y[T, out] = X[T, in] · W[out, in]^T: one row of X (decode) takes the matrix-vector kernel,
/// several the packed-panel kernel; rows of W are split between threads.
inline void matmul(const WeightMatrix& w, const MatIn& x, MatOut y, Scratch& scratch) {
  GLRNN_CHECK(x.cols() == w.cols && y.cols() == w.rows && y.rows() == x.rows(), ShapeError,
              "matmul: [" + std::to_string(x.rows()) + ", " + std::to_string(x.cols()) + "] times [" +
                  std::to_string(w.rows) + ", " + std::to_string(w.cols) + "]^T into [" + std::to_string(y.rows()) +
                  ", " + std::to_string(y.cols()) + "]");
  const KernelPath path = kernel_path();
  const FormatKernels& kernels = format_kernels(w.type, path);
  const ProductKernels& k = w.bf16_activations ? kernels.bf16_activations : kernels.products;
  GLRNN_CHECK(k.available(), ConfigError,
              "bf16 activations need bf16 weights and the " + std::string(kernel_path_name(KernelPath::Avx512Bf16)) +
                  " kernel path (a CPU with AVX-512 BF16); this product is " + std::string(weight_type_name(w.type)) +
                  " on " + std::string(kernel_path_name(path)));
  const std::int64_t M = x.rows(), N = w.rows, K = w.cols;
  Scratch::Frame frame(scratch);
  ActivationRows act{x.data(), x.outerStride(), M, {}};
  if (k.prepare) k.prepare(x, act, scratch);
  if (M == 1) {
    if (scratch.measuring()) return;
    float* out = y.data();
    // A thread takes whole row groups (formats/row_groups.hpp).
    const std::int64_t unit = w.order == RowOrder::Groups ? kRowGroup : 1;
    parallel_for(0, (N + unit - 1) / unit, K * unit,
                 [&](std::int64_t lo, std::int64_t hi) { k.matvec(w, act, lo * unit, std::min(N, hi * unit), out); });
    return;
  }
  const std::int64_t panels = (N + k.rows_per_panel - 1) / k.rows_per_panel;
  const std::size_t work = (k.work_bytes(K) + Scratch::kAlign - 1) / Scratch::kAlign * Scratch::kAlign;
  // Work space for as many threads as the machine has, so a later set_num_threads still fits.
  const int threads = std::max(num_threads(), glrnn::detail::hardware_threads());
  std::byte* space = scratch.array<std::byte>(work * static_cast<std::size_t>(threads));
  if (scratch.measuring()) return;
  float* out = y.data();
  const std::int64_t ldy = y.outerStride();
  parallel_chunks(0, panels, M * k.rows_per_panel * K, std::min(num_threads(), threads),
                  [&](int thread, std::int64_t lo, std::int64_t hi) {
                    k.gemm(w, act, lo * k.rows_per_panel, std::min(N, hi * k.rows_per_panel), out, ldy,
                           space + work * static_cast<std::size_t>(thread));
                  });
}

namespace detail {
inline void check_product_shapes(const MatIn& a, const MatIn& b, bool b_transposed, const MatOut& c) {
  GLRNN_CHECK((b_transposed ? b.cols() : b.rows()) == a.cols() && c.rows() == a.rows() &&
                  c.cols() == (b_transposed ? b.rows() : b.cols()),
              ShapeError, "product: shapes do not match");
}
}  // namespace detail

/// What a product between activations multiplies.
enum class Precision {
  Float32,  // the float32 values
  /// Both sides rounded to bf16 (to nearest even, subnormals as zero), each product exact and the
  /// sums in float32: the bf16-activation mode's chunk products, as fla's chunk kernels multiply a
  /// bf16 model's values. On paths that multiply bf16 in tiles (amx); float32 elsewhere.
  Bf16,
};

/// Whether products at Precision::Bf16 round on `path` (elsewhere they multiply float32).
inline bool rounds_bf16_products(KernelPath path) { return path_kernels(path).gemm_rounded != nullptr; }

/// Bytes of work memory a product() or transposed_product() with M rows of the result and inner
/// dimension K needs at `precision`.
inline std::size_t product_work_bytes(std::int64_t M, std::int64_t K, Precision precision = Precision::Float32) {
  const PathKernels& k = path_kernels(kernel_path());
  const std::size_t f32 = k.gemm_f32_work_bytes(K);
  return precision == Precision::Bf16 && k.gemm_rounded ? std::max(f32, k.gemm_rounded_work_bytes(M, K)) : f32;
}

namespace detail {
inline auto product_kernel(Precision precision) {
  const PathKernels& k = path_kernels(kernel_path());
  return precision == Precision::Bf16 && k.gemm_rounded ? k.gemm_rounded : k.gemm_f32;
}
}  // namespace detail

/// C[M, N] (+)= A[M, K] · B^T for B [N, K] (b_transposed), or A · B for B [K, N]: products
/// between activations, on the calling thread, with product_work_bytes(M, K, precision) bytes of
/// work memory at `work` (so that threads can each run their own).
inline void product(const MatIn& a, const MatIn& b, bool b_transposed, MatOut c, bool accumulate, std::byte* work,
                    Precision precision = Precision::Float32) {
  const std::int64_t M = a.rows(), K = a.cols(), N = b_transposed ? b.rows() : b.cols();
  detail::check_product_shapes(a, b, b_transposed, c);
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum
    if (!accumulate) c.setZero();
    return;
  }
  detail::product_kernel(precision)(a.data(), a.outerStride(), false, b.data(), b.outerStride(), b_transposed,
                                    c.data(), c.outerStride(), M, K, 0, N, accumulate ? 1.0f : 0.0f, work);
}

/// C[M, N] = keep · C + A^T · B for A [K, M] and B [K, N], with A read where it is: the sum over k
/// of the outer products of row k of A and row k of B, as a chunk's state update is (its keys' and
/// values' rows; keep: the state's decay over the chunk, or 1), in one pass over C; keep = 0
/// overwrites C without reading it. On the calling thread, with product_work_bytes(M, K,
/// precision) bytes of work memory at `work`.
inline void transposed_product(const MatIn& a, const MatIn& b, MatOut c, float keep, std::byte* work,
                               Precision precision = Precision::Float32) {
  const std::int64_t M = a.cols(), K = a.rows(), N = b.cols();
  GLRNN_CHECK(b.rows() == K && c.rows() == M && c.cols() == N, ShapeError, "transposed_product: shapes do not match");
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum
    if (keep == 0.0f) c.setZero();
    else c *= keep;
    return;
  }
  detail::product_kernel(precision)(a.data(), a.outerStride(), true, b.data(), b.outerStride(), false, c.data(),
                                    c.outerStride(), M, K, 0, N, keep, work);
}

/// The same, with the work memory from `scratch` (nothing is computed on a measuring arena).
inline void product(const MatIn& a, const MatIn& b, bool b_transposed, MatOut c, bool accumulate, Scratch& scratch) {
  detail::check_product_shapes(a, b, b_transposed, c);
  Scratch::Frame frame(scratch);
  std::byte* work = scratch.array<std::byte>(product_work_bytes(a.rows(), a.cols()));
  if (scratch.measuring()) return;
  product(a, b, b_transposed, c, accumulate, work);
}

}  // namespace glrnn::kernels
