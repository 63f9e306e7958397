#pragma once
// Products with stored weights, per storage type, computing in float32. A weight is a [out, in]
// row-major TensorView (PyTorch nn.Linear layout). Decode reads each weight once per token
// (matvec, rows split over threads); prefill widens tiles of rows and uses Eigen's GEMM.

#include <algorithm>    // std::min
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t
#include <type_traits>  // std::is_same_v

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/dtype.hpp"
#include "glrnn/core/tensor.hpp"
#include "glrnn/core/threading.hpp"

namespace glrnn::kernels {

/// Widens n stored elements to float.
template <class T>
inline void widen(const T* src, std::int64_t n, float* dst) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = to_float(src[i]);
}

namespace detail {
/// Independent accumulators let the compiler vectorise the reduction without -ffast-math.
template <class T>
inline float dot(const T* w, const float* x, std::int64_t n) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += to_float(w[i + j]) * x[i + j];
  float sum = 0.0f;
  for (; i < n; ++i) sum += to_float(w[i]) * x[i];
  for (float a : acc) sum += a;
  return sum;
}
// Rows of W widened per GEMM tile in `matmul`: large enough for an efficient GEMM, small enough to
// stay in cache.
constexpr std::int64_t kTileRows = 128;
// Up to this many rows of X (a decode batch, a short prompt), each weight row is dotted with every
// row of X while it sits in L1, so the weights are read from memory once; widening tiles for a
// GEMM moves several times the bytes (5x slower at two rows). The dot widens again per row of X:
// a register-blocked kernel is the next step for larger batches.
constexpr std::int64_t kSmallBatchRows = 16;
}  // namespace detail

/// y[out] = W[out, in] · x[in].
template <class T>
void matvec(const TensorView<const T>& w, const float* x, float* y) {
  const std::int64_t rows = w.rows(), cols = w.row_size();
  parallel_for(0, rows, cols, [&](std::int64_t lo, std::int64_t hi) {
    if constexpr (std::is_same_v<T, float>) {
      Eigen::Map<const RowMatrixXf> block(w.row(lo), hi - lo, cols);
      Eigen::Map<Eigen::VectorXf>(y + lo, hi - lo).noalias() = block * Eigen::Map<const Eigen::VectorXf>(x, cols);
    } else {
      for (std::int64_t r = lo; r < hi; ++r) y[r] = detail::dot(w.row(r), x, cols);
    }
  });
}

/// Scratch floats `matmul` needs for this weight.
template <class T>
std::size_t matmul_scratch_floats(const TensorView<const T>& w) {
  if constexpr (std::is_same_v<T, float>) return 0;
  return Scratch::floats_for(std::min(detail::kTileRows, w.rows()), w.row_size());
}

/// Y[T, out] = X[T, in] · W[out, in]^T. One row of X takes the matvec path and a few rows the
/// small-batch path, so decode, batched decode and prefill share this entry point.
template <class T>
void matmul(const TensorView<const T>& w, const MatIn& x, MatOut y, Scratch& scratch) {
  const std::int64_t rows = w.rows(), cols = w.row_size();
  if (x.rows() == 1) {
    matvec(w, x.data(), y.data());
    return;
  }
  if (x.rows() <= detail::kSmallBatchRows) {
    parallel_for(0, rows, cols * x.rows(), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t r = lo; r < hi; ++r)
        for (Eigen::Index b = 0; b < x.rows(); ++b) y(b, r) = detail::dot(w.row(r), x.row(b).data(), cols);
    });
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    y.noalias() = x * Eigen::Map<const RowMatrixXf>(w.data, rows, cols).transpose();
  } else {
    Scratch::Frame frame(scratch);
    MatMap tile = scratch.matrix(std::min(detail::kTileRows, rows), cols);
    for (std::int64_t r0 = 0; r0 < rows; r0 += detail::kTileRows) {
      const std::int64_t n = std::min(detail::kTileRows, rows - r0);
      parallel_for(0, n, cols, [&](std::int64_t lo, std::int64_t hi) {
        widen(w.row(r0 + lo), (hi - lo) * cols, tile.row(lo).data());
      });
      y.middleCols(r0, n).noalias() = x * tile.topRows(n).transpose();
    }
  }
}

}  // namespace glrnn::kernels
