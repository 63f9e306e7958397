#pragma once
// Token embedding: row lookup widened to float32, times a fixed scale.

#include <cstdint>  // std::int32_t, std::int64_t

#include "glrnn/core/kernels.hpp"

namespace glrnn {

template <class T>
class Embedding {
 public:
  Embedding() = default;
  /// table [vocab, hidden]; scale multiplies every looked-up row.
  Embedding(const TensorView<const T>& table, float scale) : table_(table), scale_(scale) {}

  std::int64_t vocab_size() const { return table_.rows(); }
  std::int64_t hidden() const { return table_.row_size(); }
  float scale() const { return scale_; }
  const TensorView<const T>& table() const { return table_; }

  /// out[hidden] = table[token] * scale. The caller has checked 0 <= token < vocab_size().
  void lookup(std::int32_t token, float* out) const {
    kernels::widen(table_.row(token), hidden(), out);
    Eigen::Map<Eigen::VectorXf>(out, hidden()) *= scale_;
  }

 private:
  TensorView<const T> table_;  // [vocab, hidden]
  float scale_ = 1.0f;
};

}  // namespace glrnn
