#pragma once
// Linear layer y = W x + b, with W stored [out, in] in any weight format.

#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/kernels/kernels.hpp"

namespace glrnn {

struct LinearWeights {
  WeightMatrix weight;           // [out, in]
  TensorView<const float> bias;  // [out], or empty for no bias
};

class Linear {
 public:
  Linear() = default;
  /// `name` only labels shape errors.
  Linear(std::int64_t in, std::int64_t out, const LinearWeights& w, const std::string& name) : w_(w) {
    check_shape(w.weight.shape(), {out, in}, name + ": weight");
    if (!w.bias.empty()) check_shape(w.bias.shape, {out}, name + ": bias");
  }

  std::int64_t in_features() const { return w_.weight.cols; }
  std::int64_t out_features() const { return w_.weight.rows; }
  const LinearWeights& weights() const { return w_; }

  /// Y[T, out] = X[T, in] W^T + b.
  void forward(const MatIn& x, MatOut y, Scratch& scratch) const {
    kernels::matmul(w_.weight, x, y, scratch);
    if (!w_.bias.empty() && !scratch.measuring())
      y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(w_.bias.data, out_features());
  }

 private:
  LinearWeights w_;
};

}  // namespace glrnn
