#pragma once
// Token embedding: row lookup widened to float32, times a fixed scale.

#include <cstdint>  // std::int32_t, std::int64_t

#include "glrnn/core/buffer.hpp"
#include "glrnn/formats/registry.hpp"

namespace glrnn {

class Embedding {
 public:
  Embedding() = default;
  /// table [vocab, hidden] in any weight format; scale multiplies every looked-up row.
  Embedding(const WeightMatrix& table, float scale) : table_(table), scale_(scale) {}

  std::int64_t vocab_size() const { return table_.rows; }
  std::int64_t hidden() const { return table_.cols; }
  float scale() const { return scale_; }
  const WeightMatrix& table() const { return table_; }

  /// out[hidden] = table[token] * scale. The caller has checked 0 <= token < vocab_size().
  void lookup(std::int32_t token, float* out) const {
    table_.dequantize_row(token, out);
    Eigen::Map<Eigen::VectorXf>(out, hidden()) *= scale_;
  }

 private:
  WeightMatrix table_;  // [vocab, hidden]
  float scale_ = 1.0f;
};

}  // namespace glrnn
