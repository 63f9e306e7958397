#pragma once
// Products with stored weights, per storage type, computing in float32. A weight is a [out, in]
// row-major TensorView (PyTorch nn.Linear layout). Decode reads each weight once per token (row
// dot products, rows split over threads); prefill widens tiles of rows and uses Eigen's GEMM.

#include <algorithm>    // std::min
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t
#include <type_traits>  // std::is_same_v

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/dot.hpp"
#include "glrnn/core/dtype.hpp"
#include "glrnn/core/quant.hpp"
#include "glrnn/core/tensor.hpp"
#include "glrnn/core/threading.hpp"

namespace glrnn::kernels {

/// Widens n stored elements to float (n a multiple of 32 for the block formats).
template <class T>
inline void widen(const T* src, std::int64_t n, float* dst) {
  if constexpr (is_block_format_v<T>) {
    for (std::int64_t b = 0; b < n / kQuantBlock; ++b) dequantize_block(src[b], dst + b * kQuantBlock);
  } else {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = to_float(src[i]);
  }
}

namespace detail {
// Rows of W widened per GEMM tile in `matmul`: each tile's product packs X again, so tiles are
// large (512 rows measured ~7% faster than 128 at the 2B geometry) yet stay in the last-level cache.
constexpr std::int64_t kTileRows = 512;
// Up to this many rows of X (a decode batch, a short prompt), each weight row is dotted with every
// row of X while it sits in L1, so the weights are read from memory once; widening tiles for a
// GEMM moves several times the bytes (5x slower at two rows).
constexpr std::int64_t kSmallBatchRows = 16;
}  // namespace detail

/// Scratch floats `matmul` needs for this weight.
template <class T>
std::size_t matmul_scratch_floats(const TensorView<const T>& w) {
  if constexpr (std::is_same_v<T, float>) return 0;
  const std::size_t tile = Scratch::floats_for(std::min(detail::kTileRows, w.rows()), w.row_size());
  if constexpr (!is_block_format_v<T>) return tile;
  return std::max(tile, Scratch::floats_for(detail::kSmallBatchRows, QuantizedActivations::floats_for(w.row_size())));
}

/// Y[b, r] = W.row(r) · X.row(b) for the rows of X, each weight row read once for all of them.
/// The block formats first quantize the rows of X (see QuantizedActivations).
template <class T>
void dot_rows(const TensorView<const T>& w, const MatIn& x, MatOut y, Scratch& scratch) {
  const std::int64_t rows = w.rows(), cols = w.row_size(), batch = x.rows();
  Scratch::Frame frame(scratch);
  if constexpr (is_block_format_v<T>) {
    GLRNN_CHECK(batch <= detail::kSmallBatchRows, Error, "dot_rows takes at most 16 rows of activations");
    const std::int64_t per_row = QuantizedActivations::floats_for(cols);
    MatMap space = scratch.matrix(batch, per_row);
    QuantizedActivations xq[detail::kSmallBatchRows];
    for (std::int64_t b = 0; b < batch; ++b) {
      xq[b] = QuantizedActivations::in(space.row(b).data(), cols);
      quantize_activations(x.row(b).data(), cols, xq[b]);
    }
    parallel_for(0, rows, cols * batch / 4, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t r = lo; r < hi; ++r)
        for (std::int64_t b = 0; b < batch; ++b) y(b, r) = dot(w.row(r), xq[b], cols / kQuantBlock);
    });
  } else {
    parallel_for(0, rows, cols * batch, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t r = lo; r < hi; ++r)
        for (std::int64_t b = 0; b < batch; ++b) y(b, r) = dot(w.row(r), x.row(b).data(), cols);
    });
  }
}

/// Y[T, out] = X[T, in] · W[out, in]^T. Up to 16 rows of X (decode, batched decode, short prompts)
/// read each weight row once for all of them; longer inputs use a GEMM on widened tiles.
template <class T>
void matmul(const TensorView<const T>& w, const MatIn& x, MatOut y, Scratch& scratch) {
  const std::int64_t rows = w.rows(), cols = w.row_size();
  if (x.rows() <= detail::kSmallBatchRows) {
    dot_rows(w, x, y, scratch);
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
