#pragma once
// The portable kernel path: plain C++ for any CPU, what runs where no x86 path does (and what a
// test can force everywhere). Independent accumulators let a compiler vectorise it without
// -ffast-math; each weight row is unpacked once and used for every row of activations.

#include <algorithm>  // std::max, std::min
#include <cmath>      // std::fabs, std::nearbyint
#include <cstdint>    // std::int8_t, std::int32_t, std::int64_t
#include <cstring>    // std::memcpy

#include "glrnn/formats/format.hpp"
#include "glrnn/formats/registry.hpp"

namespace glrnn::kernels::portable {

constexpr int kLanes = 16;

inline float dot_f32(const float* w, const float* x, std::int64_t n) {
  float acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += w[i + j] * x[i + j];
  float sum = 0.0f;
  for (float a : acc) sum += a;
  for (; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

/// Σ over blocks of (int32 Σ q_w q_x) · scale_w · scale_x, with the blocks' weights given unpacked.
inline float dot_i8(const std::int8_t* w, const float* w_scale, const std::int8_t* xq, const float* x_scale,
                    std::int64_t blocks) {
  float sum = 0.0f;
  for (std::int64_t b = 0; b < blocks; ++b) {
    std::int32_t s = 0;
    for (std::int64_t i = 0; i < kQuantBlock; ++i) s += w[b * kQuantBlock + i] * xq[b * kQuantBlock + i];
    sum += w_scale[b] * x_scale[b] * static_cast<float>(s);
  }
  return sum;
}

/// x[n] (n a multiple of 32) -> int8 blocks, scale max|x| / 127, rounded to nearest, ties to even.
inline void quantize_row(const float* x, std::int64_t n, std::int8_t* q, std::int16_t* q16, float* scale,
                         std::int32_t* sum) {
  for (std::int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0.0f;
    for (std::int64_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f, inv = d > 0.0f ? 1.0f / d : 0.0f;
    std::int32_t total = 0;
    for (std::int64_t i = 0; i < kQuantBlock; ++i) {
      const auto v = static_cast<std::int32_t>(std::nearbyint(xb[i] * inv));
      total += v;
      q[b * kQuantBlock + i] = static_cast<std::int8_t>(v);
      if (q16) q16[b * kQuantBlock + i] = static_cast<std::int16_t>(v);
    }
    scale[b] = d;
    sum[b] = total;
  }
}

/// Bytes of work space one call of a format's kernels needs for rows of `cols` weights: the row
/// unpacked (float32, or int8 values and the block scales).
template <class Format>
std::size_t row_space_bytes(std::int64_t cols) {
  if constexpr (Format::kActivations == Activations::Float32) return static_cast<std::size_t>(cols) * sizeof(float);
  else return static_cast<std::size_t>(cols) + static_cast<std::size_t>(cols / kQuantBlock) * sizeof(float);
}

/// Unit b of row r of an integer matrix, in row groups or not (formats/row_groups.hpp).
template <class Format>
typename Format::Unit weight_unit(const WeightMatrix& w, std::int64_t r, std::int64_t b) {
  return grouped_unit<Format>(static_cast<const std::byte*>(w.data), w.grouped_rows(), w.cols / kQuantBlock, r, b);
}

/// Unpacks row r of an integer matrix: int8 values to q, block scales to s.
template <class Format>
void unpack_row(const WeightMatrix& w, std::int64_t r, std::int8_t* q, float* s) {
  for (std::int64_t b = 0; b < w.cols / kQuantBlock; ++b) {
    const typename Format::Unit unit = weight_unit<Format>(w, r, b);
    Format::unpack(unit, q + b * kQuantBlock);
    s[b] = Format::scale(unit);
  }
}

/// C[M, N) = keep · C + A · B^T (B rows are the N outputs, ldb apart) or A · B (B is [K, N]), for
/// the columns [n_lo, n_hi); A is [M, K], or [K, M] where a_transposed (only with B [K, N]); keep =
/// 0: C is not read.
inline void gemm_f32(const float* a, std::int64_t lda, bool a_transposed, const float* b, std::int64_t ldb,
                     bool b_rows_are_n, float* c, std::int64_t ldc, std::int64_t M, std::int64_t K, std::int64_t n_lo,
                     std::int64_t n_hi, float keep) {
  for (std::int64_t m = 0; m < M; ++m) {
    float* cm = c + m * ldc;
    if (b_rows_are_n) {
      for (std::int64_t n = n_lo; n < n_hi; ++n) cm[n] = (keep != 0.0f ? keep * cm[n] : 0.0f) + dot_f32(b + n * ldb, a + m * lda, K);
    } else {
      for (std::int64_t n = n_lo; n < n_hi; ++n) cm[n] = keep != 0.0f ? keep * cm[n] : 0.0f;
      for (std::int64_t k = 0; k < K; ++k) {
        const float akm = a_transposed ? a[k * lda + m] : a[m * lda + k];
        const float* bk = b + k * ldb;
        for (std::int64_t n = n_lo; n < n_hi; ++n) cm[n] += akm * bk[n];
      }
    }
  }
}

}  // namespace glrnn::kernels::portable
